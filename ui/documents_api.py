"""`GET /api/document`: one indexed document, a page at a time, for the full-document view.

Source cards carry only a window around the passage; the full text is fetched when the reader opens it,
in pages of `PAGE_CHARS`, as JSON text (the page script puts it into the page with `textContent`, so a
document's markup is never parsed). Only documents in the index are served, by their source name.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ui.chat import PipelineLike

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


def build_documents_router(pipeline: PipelineLike) -> APIRouter:
    router = APIRouter()

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
