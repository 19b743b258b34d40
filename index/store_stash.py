"""Vectors embedded by an indexing run that has not committed yet, kept so a crashed run resumes.

`build_index` adds each embedded batch to the stash (`<index_dir>/.embed-stash/<model>/part-*.npz`,
numpy's own format without pickle) and clears it after the store committed. A re-run after a crash or
Ctrl-C reads the stash first and embeds only what is missing. Parts are written to a temp file and
renamed, so a crash mid-write loses at most that batch. Leaves out sharing a stash between machines.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from index.records import content_hash


class EmbedStash:
    """Uncommitted vectors of one embedding model under an index folder."""

    def __init__(self, index_dir: str | Path, embed_model: str) -> None:
        self.folder = Path(index_dir) / ".embed-stash" / content_hash(embed_model)
        self._parts = len(list(self.folder.glob("part-*.npz"))) if self.folder.exists() else 0

    def load(self, wanted: set[str]) -> dict[str, np.ndarray]:
        """Stashed vectors whose embed key is in `wanted` (unreadable parts are skipped)."""
        out: dict[str, np.ndarray] = {}
        if not self.folder.exists():
            return out
        for part in sorted(self.folder.glob("part-*.npz")):
            try:
                with np.load(part, allow_pickle=False) as data:
                    keys, vecs = data["keys"], data["vectors"]
            except (OSError, ValueError, KeyError):
                continue
            for key, vec in zip(keys.tolist(), vecs, strict=False):
                if key in wanted:
                    out[key] = vec
        return out

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        if not len(keys):
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self._parts += 1
        final = self.folder / f"part-{os.getpid()}-{self._parts:06d}.npz"
        tmp = final.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(list(keys)), vectors=np.asarray(vectors, dtype=np.float32))
        os.replace(tmp, final)

    def clear(self) -> None:
        shutil.rmtree(self.folder.parent, ignore_errors=True)
