"""The HTTP API as a FastAPI router over a `Pipeline`: ask (JSON or streamed), search, health, feedback.

Shapes are the CLI's: `answer_to_json` for answers, `hit_to_json` for passages. The stream is
Server-Sent Events (`event: sources|token|final|error`), or NDJSON with `?format=ndjson`.
Errors are JSON `{"error": <type>, "detail": <message>}`: 400 bad question, 413 too long,
503 backend or index unavailable, 500 anything else (logged, never a stack trace).
Generations share one `GenerationGate` with the chat page: beyond `Config.concurrency` they queue.
Auth, CORS and frame headers are the server's job (`ui.server`), not the router's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from rag.errors import (
    BackendError,
    ConfigError,
    IndexCorruptError,
    IndexMissingError,
    ModelMissingError,
    QueryError,
    RagError,
)
from rag.records import Final, Sources, Token, Turn, answer_to_json, hit_to_json
from ui.chat import PipelineLike
from ui.documents_api import build_documents_router
from ui.feedback import record_feedback
from ui.gate import GenerationGate, GenerationTimeout, QueueFull
from ui.runs import ClientGone, Run

log = logging.getLogger("ui.api")

MAX_HISTORY_MESSAGES = 50
# Health figures that describe the corpus: shown only to callers the server has authorised.
CORPUS_DETAILS = ("documents", "chunks", "embed_model", "backends")
FEEDBACK_TEXT_MAX = 8000  # characters per free-text field of a vote; a vote is not a document store


class Message(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class AskRequest(BaseModel):
    question: str = Field(description="The question to answer from the documents.")
    history: list[Message] = Field(default_factory=list, description="Earlier turns, oldest first.")
    k: int | None = Field(default=None, ge=1, le=50, description="Passages to retrieve (default Config.k).")
    backend: str | None = Field(
        default=None, description="local | openai | extractive (default Config.backend)."
    )

    model_config = {"json_schema_extra": {"examples": [{"question": "Who leads Microsoft AI?"}]}}


class SearchRequest(BaseModel):
    query: str
    k: int | None = Field(default=None, ge=1, le=50)


class FeedbackRequest(BaseModel):
    vote: Literal["up", "down"]
    question: str = Field(default="", max_length=FEEDBACK_TEXT_MAX)
    answer: str = Field(default="", max_length=FEEDBACK_TEXT_MAX)
    citations: list[dict[str, Any]] = Field(default_factory=list, max_length=20)
    backend: str = Field(default="", max_length=40)
    comment: str = Field(default="", max_length=4000)


class ApiError(Exception):
    """An error with its HTTP status, turned into JSON by `error_response`."""

    def __init__(self, status: int, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail


def status_for(err: RagError) -> int:
    """HTTP status of a pipeline error. Example: status_for(BackendError("down")) -> 503."""
    if isinstance(err, QueryError | ConfigError):
        return 400
    if isinstance(err, BackendError | IndexMissingError | IndexCorruptError | ModelMissingError):
        return 503
    return 500


def error_response(err: Exception) -> JSONResponse:
    if isinstance(err, QueueFull):
        return JSONResponse(
            {"error": "Busy", "detail": str(err)},
            status_code=503,
            headers={"Retry-After": str(err.retry_after)},
        )
    if isinstance(err, GenerationTimeout):
        return JSONResponse({"error": "Timeout", "detail": str(err)}, status_code=504)
    if isinstance(err, ApiError):
        return JSONResponse({"error": err.kind, "detail": err.detail}, status_code=err.status)
    if isinstance(err, RagError):
        return JSONResponse({"error": type(err).__name__, "detail": str(err)}, status_code=status_for(err))
    log.exception("API request failed", exc_info=err)
    return JSONResponse({"error": "InternalError", "detail": "Internal error; it has been logged."}, 500)


def client_backends(cfg: Any) -> list[str]:
    """Backends a client may ask for. Example: RAG_CLIENT_BACKENDS="" and backend=local -> ['local']."""
    names = [n.strip() for n in str(getattr(cfg, "client_backends", "") or "").split(",") if n.strip()]
    default = str(getattr(cfg, "backend", "local"))
    return list(dict.fromkeys([default, *names]))


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _ndjson(event: str, data: dict[str, Any]) -> str:
    return json.dumps({"event": event, "data": data}, ensure_ascii=False) + "\n"


def build_router(pipeline: PipelineLike, gate: GenerationGate | None = None) -> APIRouter:
    """Routes under /api for `pipeline`; `gate` is shared with the chat page when both are served."""
    cfg = pipeline.config
    gate = gate or GenerationGate.from_config(cfg)
    max_chars = int(getattr(cfg, "max_question_chars", 2000))
    timeout_s = float(getattr(cfg, "generation_timeout", 120.0))
    allowed = client_backends(cfg)
    router = APIRouter(prefix="/api", tags=["rag"])

    def check_question(text: str, what: str = "question") -> None:
        if not text.strip():
            raise ApiError(400, "QueryError", f"The {what} is empty; send some text.")
        if len(text) > max_chars:
            raise ApiError(
                413,
                "QuestionTooLong",
                f"The {what} is {len(text):,} characters long; the limit is {max_chars:,} "
                "(RAG_MAX_QUESTION_CHARS). Shorten it.",
            )

    def check_backend(name: str | None) -> str | None:
        """The operator decides which backends clients may pick (RAG_CLIENT_BACKENDS)."""
        if name is None or name == getattr(cfg, "backend", None):
            return name
        if name not in allowed:
            raise ApiError(
                400,
                "BackendNotAllowed",
                f"Backend {name!r} is not offered by this server; choose one of: {', '.join(allowed)} "
                "(operators: RAG_CLIENT_BACKENDS).",
            )
        return name

    def turns_of(req: AskRequest) -> list[Turn]:
        if len(req.history) > MAX_HISTORY_MESSAGES:
            raise ApiError(
                413, "HistoryTooLong", f"At most {MAX_HISTORY_MESSAGES} history messages are accepted."
            )
        for m in req.history:
            if len(m.content) > 4 * max_chars:
                raise ApiError(413, "HistoryTooLong", "A history message is too long; send shorter turns.")
        return [Turn(role=m.role, content=m.content) for m in req.history]

    @router.get("/health", summary="Ready to answer? (corpus figures only for authorised callers)")
    def health(request: Request) -> JSONResponse:
        try:
            info = dict(pipeline.health())
        except Exception as err:  # health must answer, even when the pipeline is broken
            log.warning("health check failed: %s", err)
            return JSONResponse({"status": "error", "detail": "The index or pipeline is unavailable."}, 503)
        stuck = gate.stuck()
        info["status"] = "degraded" if stuck or not info.get("index_loaded", True) else "ok"
        info["generations"] = {**gate.stats(), "stuck": stuck}
        if not request.scope.get("state", {}).get("authorized", True):
            info = {k: v for k, v in info.items() if k not in CORPUS_DETAILS}
        return JSONResponse(info, status_code=200 if info["status"] == "ok" else 503)

    def start(req: AskRequest) -> Run:
        """Validate and admit `req` (QueueFull when its lane is full); the run starts when iterated."""
        check_question(req.question)
        turns = turns_of(req)
        backend = check_backend(req.backend)
        ticket = gate.ticket(backend)
        return Run(
            lambda cancelled: pipeline.stream(
                req.question, history=turns, k=req.k, backend=backend, cancelled=cancelled
            ),
            gate,
            ticket,
            timeout_s,
        )

    @router.post("/ask", summary="Answer a question with cited passages (the `rag ask --json` shape)")
    async def ask(req: AskRequest, request: Request) -> Response:
        try:
            run = start(req)
            async for ev in run.events(request.receive):
                if isinstance(ev, Final):
                    return JSONResponse(answer_to_json(ev.answer))
            raise RuntimeError("the pipeline stream ended without a Final event")
        except ClientGone:
            return Response(status_code=499)  # nobody reads it; uvicorn drops it
        except Exception as err:
            return error_response(err)

    @router.post(
        "/ask/stream",
        summary="Streamed answer: Server-Sent Events sources, token*, final (or NDJSON with ?format=ndjson)",
    )
    async def ask_stream(req: AskRequest, request: Request, format: Literal["sse", "ndjson"] = "sse"):
        try:
            run = start(req)
        except Exception as err:
            return error_response(err)
        fmt = _ndjson if format == "ndjson" else _sse

        async def body() -> AsyncIterator[str]:
            try:
                async for ev in run.events(request.receive):
                    if isinstance(ev, Sources):
                        yield fmt(
                            "sources",
                            {
                                "standalone_question": ev.standalone_question or req.question,
                                "retrieved": [hit_to_json(h, i + 1) for i, h in enumerate(ev.hits)],
                            },
                        )
                    elif isinstance(ev, Token):
                        yield fmt("token", {"text": ev.text})
                    elif isinstance(ev, Final):
                        yield fmt("final", answer_to_json(ev.answer))
                        return
            except ClientGone:
                return
            except RagError as err:
                yield fmt("error", {"error": type(err).__name__, "detail": str(err)})
            except Exception:
                log.exception("streamed answer failed")
                yield fmt(
                    "error", {"error": "InternalError", "detail": "Internal error; it has been logged."}
                )

        media = "application/x-ndjson" if format == "ndjson" else "text/event-stream"
        return StreamingResponse(
            body(), media_type=media, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    @router.post("/search", summary="Retrieve passages (the `rag search --json` item shape)")
    def search(req: SearchRequest) -> JSONResponse:
        try:
            check_question(req.query, "query")
            hits = pipeline.search(req.query, k=req.k)
            return JSONResponse(
                {"query": req.query, "results": [hit_to_json(h, i + 1) for i, h in enumerate(hits)]}
            )
        except Exception as err:
            return error_response(err)

    @router.post("/feedback", summary="Record a thumbs up/down on an answer")
    def feedback(req: FeedbackRequest) -> JSONResponse:
        path = Path(getattr(cfg, "feedback_path", ".rag/feedback.jsonl"))
        if len(json.dumps(req.citations, ensure_ascii=False)) > FEEDBACK_TEXT_MAX * 2:
            return error_response(ApiError(413, "FeedbackTooLarge", "Send at most the answer's citations."))
        cap = int(getattr(cfg, "feedback_max_bytes", 50_000_000))
        if path.exists() and path.stat().st_size > cap:
            return error_response(
                ApiError(507, "FeedbackFull", "The feedback file is full; operators: archive it or raise "
                         "RAG_FEEDBACK_MAX_BYTES.")
            )
        rec = record_feedback(
            path,
            vote=req.vote,
            question=req.question,
            answer=req.answer,
            citations=req.citations,
            backend=req.backend,
            origin="api",
            comment=req.comment,
        )
        # Not echoed back: a client gets no amplification and no view of what the file holds.
        return JSONResponse({"ok": True, "recorded": {"ts": rec["ts"], "vote": rec["vote"]}})

    router.include_router(build_documents_router(pipeline))  # the chat page's full-document view
    return router
