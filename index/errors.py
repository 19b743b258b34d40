"""The project's error hierarchy. Every message says what to do next.

It lives in `index` (the first stage) so that every stage can raise it; `rag.errors` re-exports it.
Only the CLI, the HTTP layer and the UI turn these into user-facing output.
"""


class RagError(Exception):
    """Base class: a problem a user can fix; `str(err)` is the one-line message to show."""

    exit_code = 1


class ConfigError(RagError):
    """A setting is missing or invalid."""

    exit_code = 2


class IndexMissingError(RagError):
    """No index has been built yet at the configured location."""


class IndexCorruptError(RagError):
    """The index files are damaged or were built with other settings."""


class ModelMissingError(RagError):
    """An embedding or language model file cannot be found or loaded."""


class UnreadableFileError(RagError):
    """A document could not be read or parsed."""


class QueryError(RagError):
    """The question itself is unusable (empty, too long)."""

    exit_code = 2


class BackendError(RagError):
    """A generator backend is unreachable, misconfigured or failed."""


class StoreError(RagError):
    """The store's server (PostgreSQL) is unreachable, lacks an extension, or refused a write."""
