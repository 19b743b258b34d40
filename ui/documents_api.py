"""`GET /api/document`: one indexed document, a page at a time, for the full-document view; and
`/api/documents`: list, upload, re-index and remove documents added from the browser (`ui.uploads`).

Source cards carry only a window around the passage; the full text is fetched when the reader opens it,
in pages of `PAGE_CHARS`, as JSON text (the page script puts it into the page with `textContent`, so a
document's markup is never parsed). Only documents in the index are served, by their source name.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, UploadFile
from fastapi.responses import JSONResponse

from rag.errors import RagError
from ui.chat import PipelineLike
from ui.uploads import Uploads

PAGE_CHARS = 20_000


def page_of(text: str, page: int | None, at: int) -> dict[str, int | str]:
    """Page `page` of `text` (default: the page holding offset `at`).

    Example: page_of("abc", None, 1) -> {"page": 0, "pages": 1, "offset": 0, "text": "abc"}
    """
    pages = max(1, -(-len(text) // PAGE_CHARS))
    if page is None:
        page = min(pages - 1, max(0, at) // PAGE_CHARS)
    page = min(max(0, page), pages - 1)
    offset = page * PAGE_CHARS
    return {"page": page, "pages": pages, "offset": offset, "text": text[offset : offset + PAGE_CHARS]}


def signed_in(headers: Any, cookies: Any) -> bool:
    """The request carries credentials (the server's guard has checked them when auth is configured)."""
    return bool(headers.get("authorization") or cookies.get("rag_token"))


def build_documents_router(pipeline: PipelineLike, uploads: Uploads | None = None) -> APIRouter:
    router = APIRouter()
    up = uploads or Uploads(pipeline)

    def refused(request: Request) -> JSONResponse | None:
        why = up.allowed(signed_in(request.headers, request.cookies))
        return JSONResponse({"error": "UploadsDisabled", "detail": why}, status_code=403) if why else None

    def failed(err: Exception) -> JSONResponse:
        return JSONResponse({"error": type(err).__name__, "detail": str(err)}, status_code=400)

    @router.get("/documents", summary="Documents uploaded from the browser")
    def list_documents(request: Request) -> JSONResponse:
        return refused(request) or JSONResponse({"uploads": up.list()})

    @router.post("/documents", summary="Upload one document (multipart field `file`) and re-index")
    async def upload(request: Request, file: UploadFile) -> JSONResponse:
        if (no := refused(request)) is not None:
            return no
        data = await file.read(up.max_bytes + 1)  # never more than the limit in memory
        try:
            from starlette.concurrency import run_in_threadpool

            report = await run_in_threadpool(up.add, file.filename or "", data)
        except RagError as err:
            return failed(err)
        return JSONResponse(report)

    @router.delete("/documents/{name}", summary="Remove an uploaded document and re-index")
    def remove(name: str, request: Request) -> JSONResponse:
        if (no := refused(request)) is not None:
            return no
        try:
            return JSONResponse(up.remove(name))
        except RagError as err:
            return failed(err)

    @router.post("/documents/reindex", summary="Re-index the corpus and the uploads")
    def reindex(request: Request) -> JSONResponse:
        return refused(request) or JSONResponse(up.reindex())

    @router.get("/document", summary="One indexed document, paged (full-document view)")
    def document(source: str, page: int | None = None, at: int = 0) -> JSONResponse:
        doc = pipeline.document(source) if source else None
        if doc is None:
            return JSONResponse(
                {"error": "NotFound", "detail": f"No indexed document {source[:200]!r}."}, status_code=404
            )
        body = {
            "source": doc.source,
            "title": doc.title,
            "length": len(doc.text),
            **page_of(doc.text, page, at),
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    return router
