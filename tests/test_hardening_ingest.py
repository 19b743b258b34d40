"""Hostile files in the indexed folder: each is one clear failure line, the rest is still indexed.

Generated small (limits set low), so this stays quick: a .docx zip bomb, an over-size text file, an ELF
binary renamed .txt, a symlink to /etc/passwd, an unreadable subfolder, an invalid-UTF-8 file name, a
PDF over the page limit, a parser that would run too long.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from index.errors import UnreadableFileError
from index.loaders import LoadLimits, load_file, load_paths, use_limits

pytestmark = pytest.mark.unit
LOW = LoadLimits(max_file_bytes=200_000, max_unpacked_bytes=1_000_000, max_pdf_pages=2, file_timeout=20)


def docx_bomb(path: Path, unpacked: int) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document>" + " " * unpacked + "</w:document>")


def pdf_with_pages(path: Path, pages: int) -> None:
    from pypdf import PdfWriter

    w = PdfWriter()
    for _ in range(pages):
        w.add_blank_page(100, 100)
    with path.open("wb") as fh:
        w.write(fh)


@pytest.fixture()
def hostile(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "good.txt").write_text("Microsoft invested $650 million in Inflection.\n")
    docx_bomb(root / "bomb.docx", 5_000_000)
    (root / "huge.txt").write_text("word " * 60_000)
    (root / "elf.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 40)
    (root / "passwd.txt").symlink_to("/etc/passwd")
    (root / "inside.md").symlink_to(root / "good.txt")
    pdf_with_pages(root / "long.pdf", 5)
    locked = root / "locked"
    locked.mkdir()
    (locked / "secret.txt").write_text("hidden\n")
    locked.chmod(0)
    os.close(os.open(os.fsencode(root) + b"/bad\xffname.txt", os.O_CREAT | os.O_WRONLY, 0o644))
    yield root
    locked.chmod(0o755)


def test_hostile_folder_indexes_the_good_file_and_names_each_failure(hostile: Path) -> None:
    with use_limits(LOW):
        docs, failures = load_paths([hostile])
    readable = {"good.txt"} | ({"locked/secret.txt"} if os.geteuid() == 0 else set())  # root reads anything
    assert {d.source for d in docs} == readable
    reasons = {Path(p).name: r for p, r in failures}
    assert "RAG_MAX_UNPACKED_BYTES" in reasons["bomb.docx"]
    assert "RAG_MAX_FILE_BYTES" in reasons["huge.txt"]
    assert "binary" in reasons["elf.txt"]
    assert "outside the folder" in reasons["passwd.txt"]
    assert "RAG_MAX_PDF_PAGES" in reasons["long.pdf"]
    assert "bad\ufffdname.txt" in reasons and "UTF-8" in reasons["bad\ufffdname.txt"]
    if os.geteuid() != 0:  # root reads any folder
        assert "cannot read this folder" in reasons["locked"]
    assert all("\n" not in r for r in reasons.values())
    assert not any("root:" in d.text for d in docs)


def test_a_parser_over_the_time_limit_is_stopped(tmp_path: Path, monkeypatch) -> None:
    import time

    import index.loaders as loaders

    def slow(path: Path) -> tuple[str, str]:
        time.sleep(30)
        return "never", ""

    monkeypatch.setitem(loaders._READERS, ".html", slow)
    f = tmp_path / "slow.html"
    f.write_text("<p>x</p>")
    t0 = time.monotonic()
    with (
        use_limits(LoadLimits(file_timeout=0.5)),
        pytest.raises(UnreadableFileError, match="RAG_FILE_TIMEOUT"),
    ):
        load_file(f, tmp_path)
    assert time.monotonic() - t0 < 25  # the child was killed, not waited for


def test_cp1252_text_is_still_text(tmp_path: Path) -> None:
    f = tmp_path / "old.txt"
    f.write_bytes(b"Caf\xe9 cr\xe8me, na\xefve r\xe9sum\xe9 \x93quoted\x94.\n")
    assert "Café" in load_file(f, tmp_path).text


@pytest.mark.integration
def test_rag_index_exits_nonzero_with_a_summary_when_files_fail(hostile: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RAG_MAX_FILE_BYTES": "200000",
        "RAG_MAX_UNPACKED_BYTES": "1000000",
        "RAG_MAX_PDF_PAGES": "2",
        "RAG_INDEX_DIR": str(tmp_path / "idx"),
    }
    run = subprocess.run(
        [sys.executable, "-m", "rag", "index", str(hostile)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr and "could not be indexed" in run.stderr
    assert f"Indexed {2 if os.geteuid() == 0 else 1} documents" in run.stdout
    again = subprocess.run(
        [sys.executable, "-m", "rag", "index", "--keep-going", str(hostile)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    search = subprocess.run(
        [sys.executable, "-m", "rag", "search", "root"], env=env, capture_output=True, text=True, timeout=300
    )
    assert search.returncode == 0 and "/bin/" not in search.stdout  # /etc/passwd was not indexed
