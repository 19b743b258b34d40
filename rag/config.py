"""One frozen configuration, filled from `RAG_*` environment variables and then CLI flags.

Every field `foo_bar` is read from `RAG_FOO_BAR`; a CLI flag `--foo-bar` of the same name overrides it.
Secrets (API keys, access tokens) are *not* fields: backends and the server read them when they are built.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, get_type_hints

from index.errors import ConfigError


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "rag-chat")


@dataclass(frozen=True)
class Config:
    # --- indexing
    index_dir: str = ".rag"  # where the FAISS index, docstore and manifest live
    corpus: str = "seeds"  # default folder(s) for `rag index`, separated by os.pathsep
    embed_model: str = ""  # local folder or model name; "" = the packaged all-MiniLM-L6-v2
    embed_batch: int = 16
    chunk_tokens: int = 200  # MiniLM truncates past 256 word pieces, so stay well below
    chunk_overlap: int = 40  # tokens carried over from the previous chunk
    # --- retrieval
    k: int = 5  # passages returned by search / given to the generator at most
    fetch_k: int = 30  # candidates each retriever (dense, BM25) contributes before fusion
    # --- the prompt: how much of the passages the model reads. Prompt length dominates first-token time on
    # a CPU (~40-100 prompt tokens/s on 2 cores), so these trade latency for the answer being in view.
    prompt_passages: int = 3  # passages excerpted for the model (the sources panel still shows all k)
    prompt_chars: int = 800  # characters of excerpt text over all passages (~200 tokens)
    # --- generation
    backend: str = "local"  # local | openai | extractive
    llm_model: str = ""  # local: packaged model name or GGUF path ("" = qwen2.5-coder-1.5b); openai: a name
    llm_base_url: str = ""  # openai-compatible endpoint, e.g. http://127.0.0.1:8080/v1
    llm_threads: int = 0  # 0 = all cores
    llm_ctx: int = 4096
    # local: prompt tokens per llama.cpp batch (the judge's prompts too). llama.cpp sees a cancel only between
    # batches, and its default (2048) is the whole prompt. 64 tokens take ~1.6 s on 2 cores; measured side by
    # side on an idle machine (scripts/bench_answer.py, 15 questions), first token p50 was 1.08x the 512-token
    # batch's at 64 and 1.24x at 32, so 64 is the default: a cancel waits at most one batch.
    llm_batch: int = 64
    max_tokens: int = 256
    # local: llama.cpp's repeat penalty over the last 64 tokens, the prompt's end included (the question and
    # the last source), so above 1.0 it also pushes the model off the words it should copy from a source.
    # 1.0 (off) against 1.1 on the tuning halves, side by side: answer accuracy 0.61/0.65/0.53 against
    # 0.61/0.59/0.53 (seeds/handbook/pydocs), unanswerable declined unchanged (README, evaluation).
    llm_repeat_penalty: float = 1.0
    temperature: float = 0.0
    llm_timeout: float = 120.0  # openai backend: total seconds per generation (connect + first token + all)
    cache_dir: str = dataclasses.field(default_factory=_default_cache_dir)
    # --- limits and serving
    max_question_chars: int = 2000
    max_history_turns: int = 6
    host: str = "127.0.0.1"
    port: int = 7860
    allowed_origins: str = ""  # comma-separated origins allowed to embed / call the API ("" = same origin)
    concurrency: int = 1  # generations at once; others queue
    feedback_path: str = ".rag/feedback.jsonl"
    # --- answering: verification (rag/verifier.py). The thresholds are calibrated by scripts/calibrate.py on
    # the tuning halves of every corpus in eval/datasets; its output is eval/calibration.json.
    judge: str = "auto"  # auto (the local model when the backend runs it, else lexical) | local | lexical
    judge_model: str = ""  # the judge's GGUF ("" = the same model as the generator, loaded once)
    min_support: float = 0.45  # judge score a sentence needs from the passage it cites (local model judge)
    min_relevance: float = 0.1  # best dense similarity below this = off-topic, declined before generation
    # a draft whose first token gave the decline marker more probability than this is declined (model_unsure);
    # 1.0 = never. Read from the model's own log-probabilities (rag/confidence.py), local backend only.
    max_decline: float = 1.0
    # When a draft fails verification, continue the model's most likely other reading once (a few tokens from
    # the cached prompt) and verify that, held to second_min_support (rag/confidence.py::alternative_prefix).
    second_draft: bool = False
    second_min_support: float = 0.45
    min_lexical_support: float = 0.6  # the same for the lexical judge (no model; a baseline, not calibrated)
    extractive_min_score: float = 0.3  # extractive backend: sentence score needed to be proposed at all
    # --- store and scale-out (issue 10; see docs/scaling.md)
    store: str = "faiss"  # faiss (index folder RAG_INDEX_DIR) | postgres (RAG_DATABASE_URL)
    database_url: str = ""  # e.g. postgresql://rag@db.internal/rag; the password may come from PGPASSWORD
    pg_ef_search: int = 100  # pgvector HNSW candidates per dense search (higher: better recall, slower)
    pg_keyword_rank: str = "ts_rank_idf"  # ts_rank_idf (IDF-weighted, bounded) | ts_rank | ts_rank_cd
    pg_keyword_budget: int = 5000  # rows ts_rank_idf ranks per query at most (docs/scaling.md)
    ann_threshold: int = 200_000  # FAISS: chunks above which an approximate (HNSW) index replaces exact
    embed_url: str = ""  # OpenAI-compatible /v1/embeddings endpoint; "" = embed in-process
    embed_timeout: float = 60.0
    # --- hardening (issue 11): admission, limits, operator choices
    cpu_slots: int = 8  # extractive answers at once (retrieval + sentence scoring; no model)
    remote_slots: int = 32  # answers parked on OpenAI-compatible servers at once (not serialised)
    queue_max: int = 16  # callers waiting per lane beyond its slots; more get 503 + Retry-After
    generation_timeout: float = 120.0  # total deadline per answer: queue + connect + first token + all
    client_backends: str = ""  # extra backends clients may pick, comma-separated ("" = only `backend`)
    max_body_bytes: int = 524288  # request bodies, counted while read (chunked or not)
    max_upload_bytes: int = 10_000_000  # Gradio's own upload route (max_file_size)
    rate_limit: str = "60/minute"  # per client address on ask/search/feedback ("off" = none); `limits` syntax
    auth_rate_limit: str = "20/minute"  # failed sign-ins per client address
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (uvicorn's forwarded_allow_ips):
    # comma-separated addresses or networks, "*" = any peer, "none" = no proxy (the TCP peer is the client).
    trusted_proxies: str = "127.0.0.1,::1"
    feedback_max_bytes: int = 50_000_000  # the feedback file stops growing past this
    max_file_bytes: int = 50_000_000  # ingestion: files larger than this are skipped with an error
    max_unpacked_bytes: int = 200_000_000  # ingestion: decompressed size of a .docx (zip) or extracted text
    max_pdf_pages: int = 2000  # ingestion: PDFs with more pages are skipped with an error
    file_timeout: float = 60.0  # ingestion: seconds per file before it is skipped with an error
    # chat page (issue 9): documents uploaded from the browser
    uploads: str = "on"  # on | off | signed-in (only requests that carry the server's credentials)
    upload_max_mb: int = 20  # per file
    uploads_dir: str = ""  # default: <index_dir>/uploads, indexed alongside the corpus
    # --- command line (issue 10): `rag ask` / `rag search` through a running `rag serve` (rag/discovery.py)
    server_url: str = ""  # its base URL; "" = the one <index_dir>/serve.json names, if up; off = never

    def __post_init__(self) -> None:
        for name in ("prompt_passages", "prompt_chars"):
            value = getattr(self, name)
            if value < 1:
                raise ConfigError(f"RAG_{name.upper()}={value} must be at least 1; fix or unset it.")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Build from `RAG_*` variables, then `overrides` (CLI flags; None values are ignored).

        Example: Config.from_env({"RAG_K": "3"}).k -> 3
        """
        env = os.environ if env is None else env
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("RAG_" + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _coerce(f.name, raw, hints[f.name])
        for name, value in overrides.items():
            if value is None:
                continue
            if name not in hints:
                raise ConfigError(f"Unknown setting {name!r}. Valid settings: {', '.join(sorted(hints))}.")
            values[name] = _coerce(name, value, hints[name]) if isinstance(value, str) else value
        return cls(**values)

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def index_path(self) -> Path:
        return Path(self.index_dir)

    @property
    def corpus_paths(self) -> list[Path]:
        return [Path(p) for p in self.corpus.split(os.pathsep) if p]


def _coerce(name: str, raw: Any, typ: Any) -> Any:
    try:
        if typ is bool:
            return str(raw).strip().lower() in {"1", "true", "yes", "on"}
        if typ is int:
            return int(raw)
        if typ is float:
            return float(raw)
        return str(raw)
    except ValueError as err:
        msg = f"RAG_{name.upper()}={raw!r} is not a valid {typ.__name__}; fix or unset it."
        raise ConfigError(msg) from err
