"""Indexing stage: load documents, chunk them with character offsets, embed, store in FAISS on disk.

Knows nothing about answering questions; `rag` builds on it, never the other way round.
"""
