"""Generator backends: one small Protocol that streams text, chosen by name from a plain dict.

`local` runs a GGUF model in-process (xllamacpp), `openai` talks to any OpenAI-compatible chat endpoint,
`extractive` answers with sentences from the passages and needs no model. Tests register scripted fakes in
`GENERATORS` exactly like the real backends. Not covered here: prompt wording (rag/prompt.py) and
verification (rag/verifier.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from index.errors import ConfigError
from index.records import Hit
from rag.confidence import TokenLog

if TYPE_CHECKING:
    from rag.config import Config


@dataclass(frozen=True)
class GenerationRequest:
    """Everything a backend may use: chat `messages` for LLMs, `question` + `passages` for extractive ones.

    `passages[i]` is the passage shown to the model as `[i + 1]`. `cancelled` is set by the caller when
    nobody waits for the answer any more (a client that left, a deadline that passed): a backend stops as
    soon as it can, even before its first token, and ends its stream quietly. A backend that can read its
    tokens' log-probabilities records them into `token_log` when one is given.
    """

    messages: tuple[dict[str, str], ...]
    question: str
    passages: tuple[Hit, ...]
    max_tokens: int = 256
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    # Optional helpers the pipeline passes along (e.g. the retriever's embedder for extractive scoring).
    extras: dict[str, Any] = field(default_factory=dict, compare=False)
    cancelled: threading.Event | None = field(default=None, compare=False)
    # Filled with each token's log-probability by backends that can (rag/confidence.py); None = not wanted.
    token_log: TokenLog | None = field(default=None, compare=False)

    def is_cancelled(self) -> bool:
        return self.cancelled is not None and self.cancelled.is_set()


@runtime_checkable
class Generator(Protocol):
    name: str

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        """Yield pieces of the answer text as they are produced; raise BackendError when the backend fails."""
        ...


GeneratorFactory = Callable[["Config"], Generator]


def _local(config: Config) -> Generator:
    from rag.generators.local import LocalGenerator

    return LocalGenerator(config)


def _openai(config: Config) -> Generator:
    from rag.generators.openai_compat import OpenAIGenerator

    return OpenAIGenerator(config)


def _extractive(config: Config) -> Generator:
    from rag.generators.extractive import ExtractiveGenerator

    return ExtractiveGenerator(config)


# Imports happen inside the factories so `import rag.generators` stays cheap and backend-free.
GENERATORS: dict[str, GeneratorFactory] = {
    "local": _local,
    "openai": _openai,
    "extractive": _extractive,
}


def build_generator(name: str, config: Config) -> Generator:
    """Build the backend called `name`; ConfigError listing the valid names otherwise.

    Example: build_generator("extractive", config).name -> 'extractive'
    """
    factory = GENERATORS.get(name)
    if factory is None:
        raise ConfigError(f"Unknown backend {name!r}. Valid backends: {', '.join(GENERATORS)}.")
    return factory(config)


def collect(chunks: Sequence[str] | Iterator[str]) -> str:
    """Join streamed pieces into one string."""
    return "".join(chunks)


__all__ = ["GENERATORS", "GenerationRequest", "Generator", "GeneratorFactory", "build_generator", "collect"]
