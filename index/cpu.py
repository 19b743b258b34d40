"""The CPU's feature flags: for messages that depend on the instructions the machine has (index/pg_store.py)
and for tests whose outcome does."""

from __future__ import annotations

from pathlib import Path


def cpu_flags() -> set[str]:
    """The `flags` of /proc/cpuinfo ("avx2", "avx512f", ...); empty where there is none (not Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()
