"""Reading files into `Document`s: .txt/.md, .html/.htm (lxml + inscriptis), .pdf (pypdf),
.docx (python-docx).

`Document.text` is the decoded (or extracted) text that every chunk offset points into: for .txt/.md the
file decoded as UTF-8 with line endings made "\n" (what Python's text mode reads), for the other formats
the extracted text.
`source` is the path relative to the folder that was indexed. A file that cannot be
read raises `UnreadableFileError` with the reason; `load_paths` collects those as failures and goes on.
Files are untrusted: `LoadLimits` bounds file size, decompressed size (.docx is a zip), PDF pages and
the time per file (PDF, .docx and HTML parse in a forked child that is killed at the limit); text that
looks binary (NUL bytes, mostly undecodable) is skipped; walking a folder does not follow symbolic links
out of it, reports unreadable subfolders and file names that are not valid UTF-8. Each of these is one
failure line for that file; the rest of the folder is still indexed.
Leaves out OCR of scanned PDFs, legacy .doc, and layout (columns; tables are read row by row).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.boilerplate import is_boilerplate
from index.errors import UnreadableFileError
from index.records import Document, content_hash

# Bump when a reader's text changes, so indexes re-read unchanged files. Joining hard-wrapped lines
# (git history: index/unwrap.py) was measured and not kept: handbook tuning half 0.62 -> 0.54 accuracy.
READER_VERSION = 1

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
_MAX_TITLE = 200
_SNIFF_BYTES = 8192


@dataclass(frozen=True)
class LoadLimits:
    """Per-file limits for untrusted folders (the CLI fills them from RAG_MAX_FILE_BYTES & co.)."""

    max_file_bytes: int = 50_000_000
    max_unpacked_bytes: int = 200_000_000  # .docx entries decompressed; extracted text of any file
    max_pdf_pages: int = 2000
    file_timeout: float = 60.0  # seconds; 0 = parse in-process without a time limit


_limits = LoadLimits()


@contextlib.contextmanager
def use_limits(limits: LoadLimits) -> Iterator[None]:
    """Apply `limits` to every `load_file` in the block. Example: with use_limits(LoadLimits(1000)): ..."""
    global _limits
    before, _limits = _limits, limits
    try:
        yield
    finally:
        _limits = before


def printable(path: str | Path) -> str:
    """A path safe to print and to store as JSON: undecodable name bytes shown as U+FFFD."""
    return os.fsencode(str(path)).decode("utf-8", "replace")


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
    limits = _limits
    try:
        stat = path.stat()
        if stat.st_size > limits.max_file_bytes:
            raise UnreadableFileError(
                f"{path}: {stat.st_size:,} bytes, over the {limits.max_file_bytes:,}-byte limit "
                "(RAG_MAX_FILE_BYTES); split it or raise the limit."
            )
        text, title = _parse(reader, path, limits)
        if len(text) > limits.max_unpacked_bytes:
            raise UnreadableFileError(
                f"{path}: {len(text):,} characters of text, over the {limits.max_unpacked_bytes:,} limit "
                "(RAG_MAX_UNPACKED_BYTES)."
            )
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
            failures.append((printable(path), _reason(err, path)))
    return documents, failures


def iter_files(
    paths: Iterable[str | Path], failures: list[tuple[str, str]] | None = None
) -> Iterator[tuple[Path, Path]]:
    """Yield (file, root) for every supported file under `paths`. Missing paths, unreadable folders,
    links out of the folder and undecodable file names go to `failures` as (path, reason)."""
    sink: list[tuple[str, str]] = failures if failures is not None else []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(_walk(p, sink)):
                yield f, p
        elif p.is_file():
            yield p, p.parent
        else:
            sink.append((printable(p), "no such file or folder"))


def _walk(folder: Path, failures: list[tuple[str, str]]) -> Iterator[Path]:
    root = folder.resolve()

    def unreadable(err: OSError) -> None:
        where = printable(err.filename or folder)
        failures.append((where, f"cannot read this folder ({err.strerror}); skipped"))

    # os.walk does not descend into linked folders (followlinks=False); linked files are checked below.
    for dirpath, dirnames, filenames in os.walk(folder, onerror=unreadable):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            path = Path(dirpath) / name
            if printable(name) != name:
                failures.append((printable(path), "file name is not valid UTF-8; rename the file"))
                continue
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(root):
                    why = f"symbolic link to {target}, outside the folder; not followed"
                    failures.append((str(path), why))
                    continue
            yield path


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


# --- running a reader within the limits

_IN_CHILD = (".pdf", ".docx", ".html", ".htm")  # parsers that can be made to run for minutes


def _parse(reader: Callable[[Path], tuple[str, str]], path: Path, limits: LoadLimits) -> tuple[str, str]:
    """`reader(path)`, in a forked child killed after `limits.file_timeout` s for the slow formats.

    Why a process, not a thread: a parser stuck in a decompression bomb cannot be interrupted from
    another thread, and would keep a core busy after we gave up on it.
    """
    if limits.file_timeout <= 0 or path.suffix.lower() not in _IN_CHILD:
        return _quiet(reader, path)
    _warm(path.suffix.lower())
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(reader, path, sender), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(limits.file_timeout):
            raise UnreadableFileError(
                f"{path}: parsing took longer than {limits.file_timeout:g} s (RAG_FILE_TIMEOUT); skipped."
            )
        try:
            kind, payload = receiver.recv()
        except EOFError as err:  # the child died (out of memory, a crash in a parser)
            raise UnreadableFileError(f"{path}: the parser crashed; skipped.") from err
    finally:
        if child.is_alive():
            child.kill()
        child.join(5)
        receiver.close()
    if kind == "error":
        raise UnreadableFileError(f"{path}: {payload}")
    return payload[0], payload[1]


_WARM_HTML = ('<html><head><title>t</title></head><body><main role="main"><article><p>A <code>b</code>.'
              '<a class="headerlink" href="#x">¶</a></p><table><tr><td>c</td></tr></table></article></main>'
              '</body></html>')
_warmed: set[str] = set()


def _warm(suffix: str) -> None:
    """Import a slow format's parser, and run it once on a tiny trusted page, in this process, before the
    first child is forked: each child then inherits the modules and their caches (compiled CSS selectors,
    inscriptis' tables) instead of building them again. Measured on 30 python3-doc pages: 560 ms per page
    cold, 260 ms warm, 200 ms without a child at all."""
    if suffix in _warmed:
        return
    _warmed.add(suffix)
    if suffix in (".html", ".htm"):
        _html_text(_WARM_HTML)
    elif suffix == ".pdf":
        import pypdf  # noqa: F401
    elif suffix == ".docx":
        import docx  # noqa: F401


def _child(reader: Callable[[Path], tuple[str, str]], path: Path, sender: Any) -> None:
    try:
        result: tuple[str, Any] = ("ok", _quiet(reader, path))
    except UnreadableFileError as err:
        result = ("error", str(err).removeprefix(f"{path}: "))
    except Exception as err:  # reported as one line by the parent
        result = ("error", f"cannot parse it ({type(err).__name__}: {err}).")
    sender.send(result)
    sender.close()


def _quiet(reader: Callable[[Path], tuple[str, str]], path: Path) -> tuple[str, str]:
    """Run `reader` with parser warnings silenced: a bad file is one failure line, not a screenful."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pypdf_log = logging.getLogger("pypdf")
        level = pypdf_log.level
        pypdf_log.setLevel(logging.ERROR)
        try:
            return reader(path)
        finally:
            pypdf_log.setLevel(level)


def _looks_binary(raw: bytes) -> str:
    """Why `raw` is not text ("" when it is). Example: an ELF executable -> 'NUL bytes in the first 8 KB'."""
    head = raw[:_SNIFF_BYTES]
    if b"\x00" in head:
        return "NUL bytes in the first 8 KB"
    bad = head.decode("utf-8", errors="replace").count("\ufffd")
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    if head and (controls / len(head) > 0.1 or (bad / len(head) > 0.3 and controls)):
        return f"{100 * (bad + controls) // len(head)}% control or undecodable bytes"
    return ""


# --- readers: path -> (text, title or "")


def _read_text(path: Path) -> tuple[str, str]:
    raw = path.read_bytes()
    binary = _looks_binary(raw)
    if binary:
        raise UnreadableFileError(f"{path}: looks like a binary file ({binary}); skipped.")
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
# Permalink anchors ("¶") and screen-reader-only labels that documentation generators add to headings.
_HAS_CLASS = "contains(concat(' ', normalize-space(@class), ' '), ' {} ')"
_DROP_XPATH = " | ".join(
    [f"//{tag}" for tag in _DROP_TAGS]
    + [f"//a[{_HAS_CLASS.format('headerlink')}]", f"//*[{_HAS_CLASS.format('visually-hidden')}]",
       f"//*[{_HAS_CLASS.format('sr-only')}]", "//*[@aria-hidden='true']"]
)
_MAIN_XPATHS = ("(.//main)[1]", "(.//*[@role='main'])[1]", "(.//article)[1]")  # in this order
_MAIN_MIN_SHARE = 0.2  # a <main> holding less than this share of the page's text is a fragment, not the page


def _read_html(path: Path) -> tuple[str, str]:
    """The page's text laid out as a browser would: block elements on their own lines, inline elements
    (links, <code>, <em>) inside their sentence, tables row by row, and only the main content when the
    page marks it (<main>, role="main", <article>) so sidebars and tables of contents stay out.

    Layout comes from `inscriptis` (a maintained HTML-to-text renderer). BeautifulSoup's
    `get_text("\n")` put every inline element on a line of its own, which split sentences such as
    "Return a string of nbytes random bytes" into fragments that neither retrieval nor the model could read.
    """
    html, _ = _read_text(path)
    return _html_text(html)


def _html_text(html: str) -> tuple[str, str]:
    """The text and title of an HTML page (see `_read_html`).

    One lxml tree does everything: pruning, finding the main content, and inscriptis' layout, which takes
    the tree as it is. Through BeautifulSoup (html.parser, CSS selectors, then the kept part serialised
    for inscriptis to parse again with lxml) a page took 5 times longer; the text was the same on 603 of
    613 pages tried, and on the other 10 lxml read `<wbr>` right where html.parser broke the word.
    """
    from inscriptis import Inscriptis
    from inscriptis.model.config import ParserConfig
    from lxml import etree
    from lxml.html import HTMLParser, document_fromstring

    content = html.strip()
    if not content:
        return "", ""
    # bytes with an explicit encoding: lxml refuses a str that carries an XML encoding declaration
    parser = HTMLParser(encoding="utf-8")
    try:
        doc = document_fromstring(content.encode("utf-8"), parser=parser)
    except etree.ParserError:  # only text or comments: read it as preformatted text, as inscriptis does
        doc = document_fromstring(("<pre>" + content + "</pre>").encode("utf-8"), parser=parser)
    found = doc.find(".//title")
    title = " ".join(found.text_content().split()) if found is not None else ""
    for element in doc.xpath(_DROP_XPATH):
        if element.getparent() is not None:  # drop_tree keeps the text that follows the element
            element.drop_tree()
    head = doc.find("head")
    if head is not None:
        head.drop_tree()
    body = doc.find("body")
    body = body if body is not None else doc
    whole = _text_length(body)
    for xpath in _MAIN_XPATHS:
        main = body.xpath(xpath)
        if main and _text_length(main[0]) >= _MAIN_MIN_SHARE * whole:
            body = main[0]
            break
    text = Inscriptis(body, ParserConfig(display_links=False, display_images=False)).get_text()
    return _tidy(_join_inline_spacing(text)), title


def _text_length(element: Any) -> int:
    """Length of the element's text with its whitespace runs collapsed, comments left out."""
    parts = []
    for node in element.iter():
        if isinstance(node.tag, str) and node.text:
            parts.append(node.text)
        if node is not element and node.tail:
            parts.append(node.tail)
    return len(" ".join(p.strip() for p in parts if p.strip()))


def _join_inline_spacing(text: str) -> str:
    """Close the gaps inscriptis leaves around inline markup.

    Example: "secrets. token_hex ( n )" -> "secrets.token_hex(n)"
    """
    text = re.sub(r"(?<=\w)\. (?=[a-z_]\w*\b ?\()", ".", text)
    text = re.sub(r"(?<=\w) \( ", "(", text)
    return re.sub(r" \)", ")", text)


def _read_pdf(path: Path) -> tuple[str, str]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    if reader.is_encrypted and not reader.decrypt(""):
        raise UnreadableFileError(f"{path}: the PDF is password-protected.")
    if len(reader.pages) > _limits.max_pdf_pages:
        raise UnreadableFileError(
            f"{path}: {len(reader.pages):,} pages, over the {_limits.max_pdf_pages:,}-page limit "
            "(RAG_MAX_PDF_PAGES)."
        )
    pages = [page.extract_text() or "" for page in reader.pages]
    meta_title = ""
    try:
        meta_title = (reader.metadata.title or "") if reader.metadata else ""
    except Exception:  # broken metadata must not lose the text
        meta_title = ""
    return _tidy("\n\n".join(pages)), " ".join(str(meta_title).split())


def _read_docx(path: Path) -> tuple[str, str]:
    import docx

    with zipfile.ZipFile(path) as z:  # a .docx is a zip: check what it unpacks to before parsing
        unpacked = sum(info.file_size for info in z.infolist())
    if unpacked > _limits.max_unpacked_bytes:
        raise UnreadableFileError(
            f"{path}: unpacks to {unpacked:,} bytes, over the {_limits.max_unpacked_bytes:,}-byte limit "
            "(RAG_MAX_UNPACKED_BYTES); a zip bomb or a document too big to index."
        )
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
