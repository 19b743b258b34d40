"""The chunks of a loaded index, held as columns; a `Chunk` record is made only when one is asked for.

Opening an index used to build one `Chunk` per row, each with its own copy of its text sliced out of the
document: at 300k chunks that was about 3 s of a 9 s start and a second copy of the corpus text in memory.
Serving needs a handful of chunks per question (the hits) and the ids of all of them (to map FAISS ids to
rows), so the table keeps the ids, the document of each row and the character offsets, and slices the
text from the document when a chunk is read. Offsets are checked once, when the table is made, so a
damaged docstore fails at load time (IndexCorruptError), never at query time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np

from index.records import Chunk, Document


class ChunkTable(Sequence[Chunk]):
    """Row i is `Chunk(ids[i], doc.id, doc.source, doc.title, doc.text[starts[i]:ends[i]], ...)` where
    doc = docs[doc_rows[i]]. Compares equal to any sequence of the same chunks.

    Example: ChunkTable(["c1"], [doc], np.array([0]), np.array([0]), np.array([4]))[0].text -> doc.text[:4]
    """

    def __init__(
        self, ids: list[str], docs: Sequence[Document], doc_rows: Any, starts: Any, ends: Any
    ) -> None:
        self.ids = ids
        self.docs = list(docs)
        self.doc_rows = _ints(doc_rows, "doc")
        self.starts = _ints(starts, "start")
        self.ends = _ints(ends, "end")
        n = len(ids)
        if not (len(self.doc_rows) == len(self.starts) == len(self.ends) == n):
            raise ValueError(f"chunk columns of different lengths ({n} ids)")
        if not all(isinstance(i, str) for i in ids):
            raise ValueError("a chunk id is not a string")
        for d in self.docs:
            if not all(isinstance(v, str) for v in (d.id, d.source, d.title, d.text)):
                raise ValueError(f"document {d.source!r} has a field of the wrong type")
        if n:
            if self.doc_rows.min() < 0 or self.doc_rows.max() >= len(self.docs):
                raise ValueError("a chunk points at no document")
            lengths = np.fromiter((len(d.text) for d in self.docs), np.int64, len(self.docs))
            if (self.starts < 0).any() or (self.ends < self.starts).any() or (
                self.ends > lengths[self.doc_rows]
            ).any():
                raise ValueError("a chunk's offsets lie outside its document")

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, i: int) -> Chunk: ...

    @overload
    def __getitem__(self, i: slice) -> list[Chunk]: ...

    def __getitem__(self, i: int | slice) -> Chunk | list[Chunk]:
        if isinstance(i, slice):
            return [self._make(j) for j in range(*i.indices(len(self)))]
        j = int(i)
        if j < 0:
            j += len(self)
        if not 0 <= j < len(self):
            raise IndexError(i)
        return self._make(j)

    def __iter__(self) -> Iterator[Chunk]:
        return (self._make(j) for j in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # mutable-sequence semantics, like list

    def sources(self) -> list[str]:
        """The source of each row, without making the chunks."""
        names = [d.source for d in self.docs]
        return [names[r] for r in self.doc_rows.tolist()]

    def rows_of(self, source: str) -> list[int]:
        """The rows of one document's chunks, in order."""
        which = [k for k, d in enumerate(self.docs) if d.source == source]
        if not which:
            return []
        return np.flatnonzero(self.doc_rows == which[0]).tolist()

    def _make(self, j: int) -> Chunk:
        doc = self.docs[self.doc_rows[j]]
        start, end = int(self.starts[j]), int(self.ends[j])
        return Chunk(self.ids[j], doc.id, doc.source, doc.title, doc.text[start:end], start, end)


def chunk_ids(chunks: Sequence[Chunk]) -> list[str]:
    """The ids of `chunks`, in order, without making Chunk records from a table."""
    return chunks.ids if isinstance(chunks, ChunkTable) else [c.id for c in chunks]


def chunk_sources(chunks: Sequence[Chunk]) -> list[str]:
    """The source of each of `chunks`, in order, without making Chunk records from a table."""
    return chunks.sources() if isinstance(chunks, ChunkTable) else [c.source for c in chunks]


def chunk_offsets(chunks: Sequence[Chunk]) -> tuple[list[int], list[int]]:
    """The start and end offsets of `chunks`, in order, without making Chunk records from a table."""
    if isinstance(chunks, ChunkTable):
        return chunks.starts.tolist(), chunks.ends.tolist()
    return [c.start for c in chunks], [c.end for c in chunks]


def _ints(values: Any, name: str) -> np.ndarray:
    """An int64 column from JSON. Floats, strings, nesting and `null` are damage, not offsets (checked on
    the array's dtype: a Python loop over a million values was half a second of every start)."""
    if not isinstance(values, list | np.ndarray):
        raise ValueError(f"chunk column {name!r} is not a list")
    column = np.asarray(values) if len(values) else np.zeros(0, np.int64)
    if column.ndim != 1 or column.dtype.kind not in "iu":
        raise ValueError(f"chunk column {name!r} is not a list of integers")
    return column.astype(np.int64, copy=False)
