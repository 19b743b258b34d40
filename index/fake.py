"""A deterministic keyword embedder for unit tests: hashed bag of keyword tokens, no model, no network.

Texts that share words get similar vectors, so retrieval tests behave sensibly. It is registered as
"fake-hash" in `index.embedder.EMBEDDERS`, so tests pick it through the same path as the real model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from index.tokens import keyword_tokens


class HashingEmbedder:
    """Feature hashing of keyword tokens into `dim` buckets, L2-normalised."""

    def __init__(self, dim: int = 256, name: str = "fake-hash") -> None:
        self.name = name
        self._dim = dim
        self.calls = 0  # texts embedded so far, for tests of incremental indexing

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += len(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for tok in keyword_tokens(text):
                h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
                out[row, h % self._dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm:
                out[row] /= norm
            else:
                out[row, 0] = 1.0
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]
