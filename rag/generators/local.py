"""`local` backend: a GGUF chat model run in-process on the CPU through xllamacpp (llama.cpp).

Why xllamacpp and not llama-cpp-python: it exposes llama.cpp's own server (slots, prompt cache, OpenAI
request shapes) in-process, and installs as a prebuilt wheel in seconds; `make install` then rebuilds it for
the machine's CPU once (scripts/install-llama-native.sh: about 1.4x faster prompts with AVX-512, cached per
CPU, and the prebuilt wheel stays if the build fails). One model instance is kept per
process (keyed by file and settings) and generations are serialised by a lock; llama.cpp reuses the cached
prompt prefix automatically, which is why the prompt puts the fixed instructions first.
Cancelling: the binding only lets us stop from its per-chunk callback, so a stream asks llama.cpp for
prompt-progress chunks (`return_progress`), which arrive after every batch of the prompt; the callback then
sees a cancel during a long prompt too, not only at the first token. The batch size (RAG_LLM_BATCH) bounds
how long that takes.
Not covered: prompt wording (rag/prompt.py) and which file to load (model_files.py).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.errors import BackendError, ModelMissingError
from rag.confidence import TOP_LOGPROBS
from rag.config import Config
from rag.generators import GenerationRequest
from rag.generators.model_files import resolve_model_path


@dataclass(frozen=True)
class _Key:
    path: str
    n_ctx: int
    threads: int
    batch: int


class _Loaded:
    """One loaded model and the lock that serialises work on it (generation and judging share it)."""

    def __init__(self, server: Any, key: _Key) -> None:
        self.server = server
        self.key = key
        self.lock = threading.Lock()

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """One non-streamed chat completion (OpenAI request and response shapes); BackendError on failure."""
        try:
            with self.lock:
                result = self.server.handle_chat_completions({**body, "stream": False})
        except Exception as err:  # the binding raises ValueError/RuntimeError on bad requests
            raise BackendError(f"The local model failed: {err}") from err
        if not isinstance(result, dict) or "error" in result:
            said = result.get("error") if isinstance(result, dict) else result
            raise BackendError(f"The local model failed: {said}")
        return result


_models: dict[_Key, _Loaded] = {}
_models_lock = threading.Lock()
_DONE = object()


def _threads(config: Config) -> int:
    return config.llm_threads if config.llm_threads > 0 else max(1, os.cpu_count() or 1)


def model_for(config: Config, llm_model: str | None = None) -> _Loaded:
    """The loaded model for `llm_model` (default: config.llm_model), assembling and loading it if needed."""
    path = resolve_model_path(config.llm_model if llm_model is None else llm_model, config.cache_dir)
    return load_model(path, config.llm_ctx, _threads(config), config.llm_batch)


def load_model(path: Path, n_ctx: int, threads: int, batch: int) -> _Loaded:
    """Load (or reuse) the model at `path`, prompts processed `batch` tokens at a time; ModelMissingError
    when llama.cpp cannot read it."""
    key = _Key(str(path), n_ctx, threads, batch)
    with _models_lock:
        if key in _models:
            return _models[key]
        try:
            import xllamacpp as xl
        except ImportError as err:  # pragma: no cover - a dependency of the project
            raise BackendError("The local backend needs xllamacpp. Run `pip install xllamacpp`.") from err
        params = xl.CommonParams()
        params.model.path = str(path)
        params.n_ctx = n_ctx
        params.n_predict = 512
        # llama.cpp looks at cancellations only between batches: a smaller batch lets a prompt be abandoned
        # sooner, at some cost in prompt speed (RAG_LLM_BATCH, measured by scripts/bench_batch.py).
        params.n_batch = params.n_ubatch = max(1, batch)
        # Two slots: one keeps the answer prompt's cached prefix, the other the judge's (rag/judge.py), so
        # neither evicts the other's system prompt between questions.
        params.n_parallel = 2
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.sampling.temp = 0.0
        # The server default only; every request sets RAG_LLM_REPEAT_PENALTY (1.0: no loop in 128 tuning
        # questions, longest draft 187 characters; answers are capped at ANSWER_TOKENS anyway).
        params.sampling.penalty_repeat = 1.0
        params.verbosity = -1  # llama.cpp's logs would drown the CLI output
        try:
            server = xl.Server(params)
        except Exception as err:
            raise ModelMissingError(
                f"Could not load the model {path} ({err}). Check that it is a valid GGUF file, or unset "
                "RAG_LLM_MODEL to use the default."
            ) from err
        loaded = _Loaded(server, key)
        _models[key] = loaded
        return loaded


def is_loaded(config: Config) -> bool:
    """Whether a model for this config is already in memory (cheap; never loads)."""
    return any(
        k.n_ctx == config.llm_ctx and k.threads == _threads(config) and k.batch == config.llm_batch
        for k in _models
    )


class LocalGenerator:
    """Streams chat completions from the in-process model. The model loads on first use or `warm_up()`."""

    name = "local"

    def __init__(self, config: Config) -> None:
        self.config = config
        self._model: _Loaded | None = None

    @property
    def ready(self) -> bool:
        return self._model is not None

    def warm_up(self) -> None:
        """Assemble/verify the model file and load it."""
        if self._model is None:
            self._model = model_for(self.config)

    def prime(self, messages: Sequence[dict[str, str]]) -> None:
        """Run `messages` for one token so llama.cpp caches their prefix (the fixed instructions and worked
        examples, ~750 tokens): without it the first question after start-up pays ~15 s more of prompt
        processing before its first token."""
        request = GenerationRequest(messages=tuple(messages), question="", passages=(), max_tokens=1)
        for _ in self.stream(request):
            pass

    @property
    def address(self) -> str:
        """The loopback OpenAI-compatible endpoint llama.cpp serves for this model (used by tests)."""
        self.warm_up()
        assert self._model is not None
        return str(self._model.server.listening_address)

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        self.warm_up()
        model = self._model
        assert model is not None
        body: dict[str, Any] = {
            "messages": list(request.messages),
            "stream": True,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "repeat_penalty": self.config.llm_repeat_penalty,
            "return_progress": True,  # a callback per prompt batch, so a cancel is seen before the 1st token
        }
        if request.stop:
            body["stop"] = list(request.stop)
        log = request.token_log
        if log is not None:  # costs one softmax per token; the verifier reads the model's own doubt from it
            body["logprobs"] = True
            body["top_logprobs"] = TOP_LOGPROBS
        pieces: queue.Queue[object] = queue.Queue()
        closed = threading.Event()  # our consumer stopped reading

        def on_chunk(chunk: Any) -> bool:
            if isinstance(chunk, dict):
                if "error" in chunk:
                    pieces.put(BackendError(f"The local model failed: {chunk['error']}"))
                    return True
                if "prompt_progress" not in chunk:  # progress chunks carry no answer text
                    for choice in chunk.get("choices") or ():
                        text = (choice.get("delta") or {}).get("content")
                        if log is not None and choice.get("logprobs"):
                            log.add_openai(choice["logprobs"])
                        if text:
                            pieces.put(text)
            return closed.is_set() or request.is_cancelled()  # returning True stops generation

        def work() -> None:
            try:
                with model.lock:
                    model.server.handle_chat_completions(body, on_chunk)
            except Exception as err:  # the binding raises ValueError/RuntimeError on bad requests
                pieces.put(BackendError(f"The local model failed: {err}"))
            finally:
                pieces.put(_DONE)

        worker = threading.Thread(target=work, name="rag-local-llm", daemon=True)
        worker.start()
        try:
            # No timeout on purpose: after a cancel this waits for llama.cpp's next callback (the end of the
            # batch or token in flight), so a generation slot is held as long as the model would not notice.
            while True:
                item = pieces.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                if request.is_cancelled():
                    continue  # nobody reads the answer any more; drain until llama.cpp has stopped
                yield str(item)
        finally:
            closed.set()  # the consumer stopped early: stop the model at the next token
