"""Incremental indexing: only new or changed text is embedded; deleted files leave; failures are reported."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from index.builder import build_index
from index.errors import UnreadableFileError
from index.fake import HashingEmbedder
from index.store import IndexStore

pytestmark = pytest.mark.unit


@pytest.fixture
def corpus(tmp_path: Path, seeds_dir: Path) -> Path:
    folder = tmp_path / "corpus"
    shutil.copytree(seeds_dir, folder)
    return folder


def test_cold_then_no_change(corpus: Path, tmp_path: Path) -> None:
    emb = HashingEmbedder()
    first = build_index([corpus], tmp_path / "ix", emb, progress=False)
    assert first.documents == 5 and first.chunks > 10
    assert first.added == emb.calls == first.chunks and first.reused == 0 and first.removed == 0
    manifest = (tmp_path / "ix" / "manifest.json").read_text()
    second = build_index([corpus], tmp_path / "ix", emb, progress=False)
    assert (second.added, second.removed, second.reused) == (0, 0, first.chunks)
    assert emb.calls == first.chunks  # nothing embedded again
    assert (tmp_path / "ix" / "manifest.json").read_text() == manifest  # nothing rewritten
    assert "Indexed 5 documents" in second.summary() and "0 failures" in second.summary()


def test_add_change_delete(corpus: Path, tmp_path: Path) -> None:
    ix = tmp_path / "ix"
    first = build_index([corpus], ix, HashingEmbedder(), progress=False)
    (corpus / "new.md").write_text("# Falcons\n\nFalcons fly fast. They hunt birds.\n")
    target = corpus / "004_a29f32fd67d13242.txt"
    text = target.read_text()
    target.write_text(text.replace("Mustafa Suleyman", "Mustafa S."))
    (corpus / "003_05a5782cf9efb8ba.txt").unlink()
    emb = HashingEmbedder()
    report = build_index([corpus], ix, emb, progress=False)
    store = IndexStore.load(ix)
    assert set(store.documents) == {
        "000_cd01c28a230eedd7.txt",
        "001_036fcbc895211d4a.txt",
        "002_de2749689d788333.txt",
        "004_a29f32fd67d13242.txt",
        "new.md",
    }
    assert (report.docs_added, report.docs_changed, report.docs_removed) == (1, 1, 1)
    assert report.added == emb.calls
    assert 0 < report.added < first.chunks // 2  # only the new file and changed chunks
    assert report.removed > 0
    assert report.reused + report.added == report.chunks == len(store.chunks)
    assert all("Mustafa Suleyman" not in c.text for c in store.chunks if c.source.startswith("004"))
    assert not any(c.source.startswith("003") for c in store.chunks)


def test_identical_content_is_embedded_once(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    body = "Shared Title\nThe same paragraph, word for word, in two places.\n"
    (folder / "a" / "copy.txt").write_text(body)
    (folder / "b" / "copy.txt").write_text(body)
    emb = HashingEmbedder()
    report = build_index([folder], tmp_path / "ix", emb, progress=False)
    assert report.chunks == 2 and emb.calls == 1
    assert {c.source for c in IndexStore.load(tmp_path / "ix").chunks} == {"a/copy.txt", "b/copy.txt"}


def test_touched_but_unchanged_file_reuses_everything(corpus: Path, tmp_path: Path) -> None:
    build_index([corpus], tmp_path / "ix", HashingEmbedder(), progress=False)
    f = corpus / "000_cd01c28a230eedd7.txt"
    os.utime(f, (f.stat().st_atime + 10, f.stat().st_mtime + 10))
    emb = HashingEmbedder()
    report = build_index([corpus], tmp_path / "ix", emb, progress=False)
    assert emb.calls == 0 and report.added == 0


def test_new_chunk_settings_rechunk_but_reuse_vectors(corpus: Path, tmp_path: Path) -> None:
    first = build_index([corpus], tmp_path / "ix", HashingEmbedder(), progress=False)
    emb = HashingEmbedder()
    report = build_index([corpus], tmp_path / "ix", emb, chunk_tokens=120, chunk_overlap=20, progress=False)
    assert report.chunks > first.chunks and emb.calls == report.added
    assert IndexStore.load(tmp_path / "ix").manifest["chunk_tokens"] == 120


def test_another_model_rebuilds(corpus: Path, tmp_path: Path) -> None:
    build_index([corpus], tmp_path / "ix", HashingEmbedder(), progress=False)
    emb = HashingEmbedder(dim=64, name="fake-64")
    report = build_index([corpus], tmp_path / "ix", emb, progress=False)
    assert report.reused == 0 and emb.calls == report.chunks
    assert IndexStore.load(tmp_path / "ix", embedder_name="fake-64", dim=64).dim == 64


def test_unreadable_files_are_reported_and_the_rest_indexed(corpus: Path, tmp_path: Path) -> None:
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    (corpus / "empty.md").write_text("\n")
    report = build_index([corpus], tmp_path / "ix", HashingEmbedder(), progress=False)
    assert report.documents == 5
    names = sorted(Path(p).name for p, _ in report.failures)
    assert names == ["broken.pdf", "empty.md"]
    assert "2 failures" in report.summary()


def test_nothing_readable_raises(tmp_path: Path) -> None:
    (tmp_path / "bad.pdf").write_bytes(b"nope")
    with pytest.raises(UnreadableFileError, match="No readable documents"):
        build_index([tmp_path], tmp_path / "ix", HashingEmbedder(), progress=False)


def test_damaged_previous_index_is_rebuilt(corpus: Path, tmp_path: Path) -> None:
    ix = tmp_path / "ix"
    build_index([corpus], ix, HashingEmbedder(), progress=False)
    (ix / "manifest.json").write_text("{broken")
    report = build_index([corpus], ix, HashingEmbedder(), progress=False)
    assert report.reused == 0 and IndexStore.load(ix).chunks


def test_mixed_formats_index_with_exact_offsets(tmp_path: Path) -> None:
    from tests.test_index_loaders import HTML, write_docx, write_pdf

    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "page.html").write_text(HTML)
    write_pdf(folder / "report.pdf", ["Annual report 2023", "Profit was $7 million."])
    write_docx(folder / "memo.docx", "Board memo", ["We approved the plan."])
    (folder / "notes.md").write_text("# Notes\n\nFalcons are fast.\n")
    report = build_index([folder], tmp_path / "ix", HashingEmbedder(), progress=False)
    assert report.documents == 4 and not report.failures
    store = IndexStore.load(tmp_path / "ix")
    for c in store.chunks:
        assert store.documents[c.source].text[c.start : c.end] == c.text
    assert {c.source for c in store.chunks} == {"page.html", "report.pdf", "memo.docx", "notes.md"}


def test_new_chunker_version_rechunks_and_reuses_vectors(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_index([corpus], tmp_path / "ix", HashingEmbedder(), progress=False)
    import index.builder

    monkeypatch.setattr(index.builder, "CHUNKER_VERSION", 99)
    emb = HashingEmbedder()
    report = build_index([corpus], tmp_path / "ix", emb, progress=False)
    assert emb.calls == 0 and report.added == 0
    assert IndexStore.load(tmp_path / "ix").manifest["chunker"] == 99


def test_a_new_reader_version_re_reads_unchanged_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    wrapped = ("Requests for more than three days go to the line manager of the team, who then approves\n"
               "or declines them within five working days of the date on which they were first received.\n")
    (folder / "leave.md").write_text(wrapped)
    import index.builder
    import index.loaders

    build_index([folder], tmp_path / "ix", HashingEmbedder(), progress=False)
    assert "approves\nor" in IndexStore.load(tmp_path / "ix").documents["leave.md"].text
    newer = index.loaders._READERS[".md"]  # a reader whose text changed: lines joined
    monkeypatch.setitem(index.loaders._READERS, ".md", lambda p: (newer(p)[0].replace("s\nor", "s or"), ""))
    build_index([folder], tmp_path / "ix", HashingEmbedder(), progress=False)  # same reader: not re-read
    assert "approves\nor" in IndexStore.load(tmp_path / "ix").documents["leave.md"].text
    monkeypatch.setattr(index.builder, "READER_VERSION", 99)
    build_index([folder], tmp_path / "ix", HashingEmbedder(), progress=False)
    store = IndexStore.load(tmp_path / "ix")
    assert "approves or declines" in store.documents["leave.md"].text and store.manifest["reader"] == 99
