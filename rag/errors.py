"""Re-export of the project's error hierarchy (defined in `index.errors`, the first stage)."""

from index.errors import (
    BackendError,
    ConfigError,
    IndexCorruptError,
    IndexMissingError,
    ModelMissingError,
    QueryError,
    RagError,
    UnreadableFileError,
)

__all__ = [
    "BackendError",
    "ConfigError",
    "IndexCorruptError",
    "IndexMissingError",
    "ModelMissingError",
    "QueryError",
    "RagError",
    "UnreadableFileError",
]
