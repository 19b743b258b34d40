"""Documents from the browser: checked, indexed next to the corpus, answered from without a restart.

Real index (FAISS, docstore, manifest) and real server; the keyword embedder keeps it fast.
"""

from __future__ import annotations

import httpx
import pytest
from fakes_ui import ServerThread

from index.builder import build_index
from index.fake import HashingEmbedder
from rag.config import Config
from rag.pipeline import Pipeline
from rag.retriever import open_retriever
from ui.server import build_server
from ui.uploads import check_content, safe_name

pytestmark = pytest.mark.integration


def make_pipeline(tmp_path, **cfg) -> Pipeline:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "seed.txt").write_text("Seed notes\n\nThe seed budget is 12 florins for the garden.\n")
    config = Config.from_env(
        {}, index_dir=str(tmp_path / "ix"), corpus=str(corpus), backend="extractive", **cfg
    )
    emb = HashingEmbedder()
    build_index([corpus], config.index_dir, emb, progress=False)
    return Pipeline(config, open_retriever(config, embedder=emb))


def sources(url: str, query: str) -> list[str]:
    r = httpx.post(url + "/api/search", json={"query": query}, timeout=30)
    return [h["source"] for h in r.json()["results"]]


def test_upload_then_search_list_and_remove(tmp_path):
    pipe = make_pipeline(tmp_path)
    with ServerThread(build_server(pipe, env={})) as url:
        doc = b"# Zebra report\n\nThe zebra budget is 77 crowns for the stripes.\n"
        r = httpx.post(url + "/api/documents", files={"file": ("../zebra.md", doc)}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["documents"] == 2 and r.json()["uploads"] == [{"name": "zebra.md", "bytes": len(doc)}]
        assert "zebra.md" in sources(url, "zebra budget stripes")  # the running server, no restart
        assert "seed.txt" in sources(url, "seed budget garden")  # the corpus is kept
        assert httpx.get(url + "/api/documents").json()["uploads"][0]["name"] == "zebra.md"
        bad = [
            ("tool.exe", b"MZ\x90\x00"),
            ("junk.txt", b"\x7fELF\x02\x01\x00\x00binary"),
            ("fake.pdf", b"not a pdf"),
            ("big.txt", b"x" * (21 * 1024 * 1024)),
        ]
        for name, data in bad:
            r = httpx.post(url + "/api/documents", files={"file": (name, data)}, timeout=60)
            # over the size limit: ours (400) or, first, the server's API body limit (413)
            assert r.status_code in ((400, 413) if name == "big.txt" else (400,)), (name, r.text)
            assert r.json()["detail"]
        assert httpx.delete(url + "/api/documents/zebra.md", timeout=60).json()["documents"] == 1
        assert "zebra.md" not in sources(url, "zebra budget stripes")


@pytest.mark.parametrize("mode, headers, status", [("off", {}, 403), ("signed-in", {}, 403)])
def test_uploads_can_be_switched_off_or_limited(tmp_path, mode, headers, status):
    pipe = make_pipeline(tmp_path, uploads=mode)
    with ServerThread(build_server(pipe, env={})) as url:
        r = httpx.post(url + "/api/documents", files={"file": ("a.md", b"hello")}, headers=headers)
        assert r.status_code == status and "RAG_UPLOADS" in r.json()["detail"]


def test_signed_in_uploads_with_the_token(tmp_path):
    pipe = make_pipeline(tmp_path, uploads="signed-in")
    with ServerThread(build_server(pipe, env={}, auth_token="s3cret")) as url:
        auth = {"Authorization": "Bearer s3cret"}
        r = httpx.post(
            url + "/api/documents", files={"file": ("a.md", b"alpha beta")}, headers=auth, timeout=60
        )
        assert r.status_code == 200, r.text


def test_a_document_over_the_api_body_limit_but_within_the_upload_limit_is_accepted(tmp_path):
    """POST /api/documents is held to RAG_UPLOAD_MAX_MB, not to the 512 KB limit of JSON bodies."""
    pipe = make_pipeline(tmp_path, upload_max_mb=2)
    with ServerThread(build_server(pipe, env={})) as url:
        words = b"The heron survey counted herons on the lake shore every morning. "
        doc = b"# Heron survey\n\n" + words * (1_500_000 // len(words))  # 1.5 MB, three times 512 KB
        r = httpx.post(url + "/api/documents", files={"file": ("heron.md", doc)}, timeout=120)
        assert r.status_code == 200, r.text
        assert "heron.md" in sources(url, "heron survey lake shore")
        over = b"x " * (1_300_000)  # 2.6 MB: over RAG_UPLOAD_MAX_MB=2, refused while it is read
        r = httpx.post(url + "/api/documents", files={"file": ("over.txt", over)}, timeout=60)
        assert r.status_code == 413 and r.json()["error"] == "RequestTooLarge"
        assert httpx.post(url + "/api/search", json={"query": "x" * 600_000}).status_code == 413


def test_uploads_count_against_the_rate_limit(tmp_path):
    pipe = make_pipeline(tmp_path, rate_limit="2/minute")
    with ServerThread(build_server(pipe, env={})) as url:
        codes = [
            httpx.post(url + "/api/documents", files={"file": (f"n{i}.md", b"note")}, timeout=60).status_code
            for i in range(3)
        ]
        assert codes[:2] == [200, 200] and codes[2] == 429


def test_size_limit_is_the_setting(tmp_path):
    from ui.uploads import Uploads

    up = Uploads(make_pipeline(tmp_path, upload_max_mb=1))
    with pytest.raises(Exception, match="the limit is 1 MB"):
        up.add("a.txt", b"x" * (1024 * 1024 + 1))
    assert up.add("a.txt", b"x " * 1000)["documents"] == 2


@pytest.mark.unit
def test_names_and_content_checks():
    assert safe_name("../../etc/x y?.md") == "x y_.md"
    with pytest.raises(Exception, match="not a file type"):
        safe_name("run.sh")
    with pytest.raises(Exception, match="not a readable"):
        check_content("a.txt", b"\xff\xfe\x00")
    check_content("a.docx", b"PK\x03\x04rest")
