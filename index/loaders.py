"""Reading files into `Document`s: .txt/.md, .html/.htm (BeautifulSoup), .pdf (pypdf), .docx (python-docx).

`Document.text` is the decoded (or extracted) text that every chunk offset points into: for .txt/.md the
file decoded as UTF-8 with line endings made "\n" (what Python's text mode reads), for the other formats
the extracted text. `source` is the path relative to the folder that was indexed. A file that cannot be
read raises `UnreadableFileError` with the reason; `load_paths` collects those as failures and goes on.
Leaves out OCR of scanned PDFs, legacy .doc, and layout (columns; tables are read row by row).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from index.boilerplate import is_boilerplate
from index.errors import UnreadableFileError
from index.records import Document, content_hash

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
_MAX_TITLE = 200


def load_file(path: str | Path, root: str | Path | None = None) -> Document:
    """Read one file. `source` is `path` relative to `root` (default: the file's folder).

    Example: load_file("seeds/000_cd01c28a230eedd7.txt", "seeds").source -> "000_cd01c28a230eedd7.txt"
    """
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise UnreadableFileError(
            f"{path}: unsupported file type {suffix or '(none)'}; supported: {', '.join(SUPPORTED_SUFFIXES)}."
        )
    try:
        stat = path.stat()
        text, title = reader(path)
    except UnreadableFileError:
        raise
    except (OSError, ValueError, KeyError, IndexError, AttributeError, TypeError) as err:
        raise UnreadableFileError(f"{path}: cannot read it ({type(err).__name__}: {err}).") from err
    except Exception as err:  # parsers raise their own exception types (pypdf, zipfile, lxml ...)
        raise UnreadableFileError(f"{path}: cannot parse it ({type(err).__name__}: {err}).") from err
    if not text.strip():
        raise UnreadableFileError(
            f"{path}: no text found (empty file, or a scanned PDF without a text layer)."
        )
    try:
        source = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        source = path.name
    return Document(
        id=content_hash(text),
        source=source,
        title=(title or first_title_line(text) or path.stem)[:_MAX_TITLE],
        text=text,
        path=str(path.resolve()),
        mtime=stat.st_mtime,
    )


def load_paths(paths: Iterable[str | Path]) -> tuple[list[Document], list[tuple[str, str]]]:
    """Load files and folders (recursively, supported types only). Returns (documents, [(path, reason)])."""
    documents: list[Document] = []
    failures: list[tuple[str, str]] = []
    for path, root in iter_files(paths, failures):
        try:
            documents.append(load_file(path, root))
        except UnreadableFileError as err:
            failures.append((str(path), _reason(err, path)))
    return documents, failures


def iter_files(
    paths: Iterable[str | Path], failures: list[tuple[str, str]] | None = None
) -> Iterator[tuple[Path, Path]]:
    """Yield (file, root) for every supported file under `paths`; missing paths go to `failures`."""
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(_walk(p)):
                yield f, p
        elif p.is_file():
            yield p, p.parent
        elif failures is not None:
            failures.append((str(p), "no such file or folder"))


def _walk(folder: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in SUPPORTED_SUFFIXES:
                yield Path(dirpath) / name


_GENERIC_LABELS = {"summary", "abstract", "introduction", "overview", "contents", "table of contents"}
_TITLE_CHARS = 100


def first_title_line(text: str) -> str:
    """The first meaningful line, shortened at a word. Example: "top of page\\n\\nHi\\n" -> "Hi"."""
    for line in text.splitlines():
        s = " ".join(line.split()).strip("#*=_ ").strip()
        if not s or is_boilerplate(s) or s.lower().rstrip(":") in _GENERIC_LABELS:
            continue
        if len(s) <= _TITLE_CHARS:
            return s
        return s[:_TITLE_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return ""


def _reason(err: UnreadableFileError, path: Path) -> str:
    msg = str(err)
    prefix = f"{path}: "
    return msg[len(prefix) :] if msg.startswith(prefix) else msg


# --- readers: path -> (text, title or "")


def _read_text(path: Path) -> tuple[str, str]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        try:
            text = raw.decode("cp1252")
            log.warning("%s: not valid UTF-8 (%s); read it as Windows-1252.", path, err.reason)
        except UnicodeDecodeError:
            text = raw.decode("utf-8", errors="replace")
            log.warning("%s: not valid UTF-8 (%s); undecodable bytes were replaced.", path, err.reason)
    return text.replace("\r\n", "\n").replace("\r", "\n"), ""


_DROP_TAGS = ("script", "style", "noscript", "template", "svg", "nav", "footer", "iframe", "form")


def _read_html(path: Path) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    html, _ = _read_text(path)
    soup = BeautifulSoup(html, "html.parser")
    title = " ".join(soup.title.get_text().split()) if soup.title else ""
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    if soup.head:
        soup.head.decompose()
    body = soup.body or soup
    return _tidy(body.get_text("\n")), title


def _read_pdf(path: Path) -> tuple[str, str]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    if reader.is_encrypted and not reader.decrypt(""):
        raise UnreadableFileError(f"{path}: the PDF is password-protected.")
    pages = [page.extract_text() or "" for page in reader.pages]
    meta_title = ""
    try:
        meta_title = (reader.metadata.title or "") if reader.metadata else ""
    except Exception:  # broken metadata must not lose the text
        meta_title = ""
    return _tidy("\n\n".join(pages)), " ".join(str(meta_title).split())


def _read_docx(path: Path) -> tuple[str, str]:
    import docx

    d = docx.Document(str(path))
    blocks = [p.text for p in d.paragraphs]
    for table in d.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells]
            blocks.append(" | ".join(dict.fromkeys(c for c in cells if c)))
    title = d.core_properties.title or ""
    if not title:
        title = next((p.text for p in d.paragraphs if p.style is not None and p.style.name == "Title"), "")
    return _tidy("\n\n".join(blocks)), " ".join(title.split())


def _tidy(text: str) -> str:
    """Trim each line and keep at most one blank line between blocks."""
    lines = [" ".join(line.split()) for line in text.replace("\r", "\n").split("\n")]
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return out.strip() + "\n" if out.strip() else ""


_READERS: dict[str, Callable[[Path], tuple[str, str]]] = {
    ".txt": _read_text,
    ".md": _read_text,
    ".markdown": _read_text,
    ".html": _read_html,
    ".htm": _read_html,
    ".pdf": _read_pdf,
    ".docx": _read_docx,
}
