"""Loaders: each format gives text, title and relative source; bad files are reported, not fatal."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.errors import UnreadableFileError
from index.loaders import first_title_line, load_file, load_paths
from index.records import content_hash

pytestmark = pytest.mark.unit


def write_pdf(path: Path, lines: list[str], title: str = "") -> Path:
    """A minimal one-page PDF with a text layer (Helvetica), written byte by byte with a correct xref."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    for line in lines:
        ops.append(f"({esc(line)}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    info = f"<< /Title ({esc(title)}) >>" if title else "<< >>"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        info.encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(bytes(out))
    return path


def write_docx(path: Path, title: str, paragraphs: list[str]) -> Path:
    import docx

    d = docx.Document()
    d.add_heading(title, level=0)
    for p in paragraphs:
        d.add_paragraph(p)
    table = d.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "Budget"
    table.rows[0].cells[1].text = "$42 million"
    d.save(str(path))
    return path


HTML = """<!doctype html><html><head><title>Wiki: Project Falcon</title>
<style>body { color: red }</style><script>var secret = "do not index";</script></head>
<body><nav>Home | About | Contact</nav>
<h1>Project Falcon</h1>
<p>Project Falcon is a <b>satellite</b> programme launched in 2021.</p>
<p>Its budget was $120 million.</p>
<footer>Copyright 2024. All rights reserved.</footer>
</body></html>
"""


def test_txt_title_source_and_id(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("top of page\n\n  Quarterly Report  \nRevenue grew.\n", encoding="utf-8")
    doc = load_file(f, tmp_path)
    assert doc.source == "notes.txt"
    assert doc.title == "Quarterly Report"
    assert doc.text == f.read_text(encoding="utf-8")
    assert doc.id == content_hash(doc.text)


def test_markdown_title_strips_hashes(tmp_path: Path) -> None:
    f = tmp_path / "a.md"
    f.write_text("# Install guide\n\nRun make.\n", encoding="utf-8")
    assert load_file(f, tmp_path).title == "Install guide"


def test_non_utf8_text_falls_back_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "latin.txt"
    f.write_bytes("Café prices rose.\n".encode("cp1252"))
    doc = load_file(f, tmp_path)
    assert "Café" in doc.text
    assert "not valid UTF-8" in caplog.text


def test_html_uses_title_and_drops_scripts_and_nav(tmp_path: Path) -> None:
    f = tmp_path / "wiki" / "falcon.html"
    f.parent.mkdir()
    f.write_text(HTML, encoding="utf-8")
    doc = load_file(f, tmp_path)
    assert doc.source == "wiki/falcon.html"
    assert doc.title == "Wiki: Project Falcon"
    assert "Project Falcon is a\nsatellite\nprogramme" in doc.text or "satellite" in doc.text
    assert "$120 million" in doc.text
    assert "do not index" not in doc.text and "color: red" not in doc.text
    assert "Home | About" not in doc.text


def test_pdf_text_layer(tmp_path: Path) -> None:
    f = write_pdf(tmp_path / "report.pdf", ["Annual report 2023", "Profit was $7 million."], title="Annual")
    doc = load_file(f, tmp_path)
    assert "Profit was $7 million." in doc.text
    assert doc.title == "Annual"


def test_docx_paragraphs_tables_and_title(tmp_path: Path) -> None:
    f = write_docx(tmp_path / "memo.docx", "Board memo", ["We approved the plan.", "Next review in May."])
    doc = load_file(f, tmp_path)
    assert doc.title == "Board memo"
    assert "We approved the plan." in doc.text
    assert "$42 million" in doc.text


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "cannot"),
        ("broken.docx", b"PK\x03\x04 not a zip", "cannot"),
        ("empty.txt", b"   \n", "no text"),
        ("image.png", b"\x89PNG", "unsupported"),
    ],
)
def test_unreadable_files_raise_with_reason(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(UnreadableFileError) as err:
        load_file(f, tmp_path)
    assert name in str(err.value) and reason in str(err.value)


def test_load_paths_reports_failures_and_keeps_the_rest(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Good file.\n", encoding="utf-8")
    (tmp_path / "bad.pdf").write_bytes(b"garbage")
    (tmp_path / ".hidden.txt").write_text("hidden\n", encoding="utf-8")
    (tmp_path / "skip.bin").write_bytes(b"\x00")
    docs, failures = load_paths([tmp_path, tmp_path / "missing.txt"])
    assert [d.source for d in docs] == ["good.txt"]
    assert {Path(p).name for p, _ in failures} == {"bad.pdf", "missing.txt"}
    assert all(reason for _, reason in failures)


def test_seed_titles_skip_chrome(seeds_dir: Path) -> None:
    docs, failures = load_paths([seeds_dir])
    assert not failures and len(docs) == 5
    by_source = {d.source: d for d in docs}
    assert by_source["001_036fcbc895211d4a.txt"].title.startswith("Microsoft's AI Balancing Act")
    assert by_source["004_a29f32fd67d13242.txt"].title != "Summary"
    assert all(len(d.title) <= 101 for d in docs)


def test_first_title_line_example() -> None:
    assert first_title_line("top of page\n\nHi\n") == "Hi"


DOC_PAGE = """<html><head><title>frob — Frobnicate widgets</title></head><body>
<div class="sphinxsidebar"><h3>Table of Contents</h3><ul><li><a href="#">frob</a></li>
<li><a href="#">Previous topic</a></li></ul></div>
<div class="body" role="main">
<h1>frob — Frobnicate widgets<a class="headerlink" href="#frob">¶</a></h1>
<dl><dt><code>frob.</code><code>spin</code>(<em>n</em>, <em>limit=64</em>)</dt>
<dd><p>Spin the widget <em>n</em> times; <code>limit</code> defaults to <strong>64</strong> turns and
a <a href="x.html">WidgetError</a> is raised above it.</p></dd></dl>
<table><tr><th>Mode</th><th>Speed</th></tr><tr><td>slow</td><td>3 rpm</td></tr></table>
</div></body></html>"""


def test_html_keeps_inline_markup_inside_its_sentence_and_reads_only_the_main_content(tmp_path: Path) -> None:
    f = tmp_path / "frob.html"
    f.write_text(DOC_PAGE, encoding="utf-8")
    doc = load_file(f, tmp_path)
    sentence = "Spin the widget n times; limit defaults to 64 turns and a WidgetError is raised above it."
    assert sentence in doc.text
    assert "frob.spin(n, limit=64)" in doc.text.replace(" ,", ",")
    assert "Table of Contents" not in doc.text and "Previous topic" not in doc.text  # sidebar is not content
    assert "¶" not in doc.text
    assert "slow" in doc.text and "3 rpm" in doc.text


def test_html_reads_the_whole_body_when_main_is_only_a_fragment(tmp_path: Path) -> None:
    page = ("<html><body><main><p>Short banner.</p></main>"
            + "<p>The policy text that matters is long enough to be the page.</p>" * 20 + "</body></html>")
    f = tmp_path / "p.html"
    f.write_text(page, encoding="utf-8")
    doc = load_file(f, tmp_path)
    assert "The policy text that matters" in doc.text and "Short banner." in doc.text


def test_parsers_are_warmed_in_the_parent_and_read_the_same_as_in_process(tmp_path: Path) -> None:
    # Each HTML page is parsed in a forked child (time limit); warming lxml/inscriptis in the parent first
    # makes each child inherit them instead of importing and compiling selectors again (2x faster loads).
    import sys

    from index import loaders

    page = tmp_path / "p.html"
    page.write_text('<html><head><title>T</title></head><body><main><p>Call <code>f()</code> first.'
                    '<a class="headerlink" href="#a">¶</a></p><p aria-hidden="true">hidden</p>'
                    '<p class="sr-only">label</p></main></body></html>', encoding="utf-8")
    loaders._warmed.discard(".html")
    in_child = load_file(page).text
    assert ".html" in loaders._warmed and "inscriptis" in sys.modules
    with loaders.use_limits(loaders.LoadLimits(file_timeout=0)):
        assert load_file(page).text == in_child
    assert in_child.strip() == "Call f() first."


def test_html_word_break_opportunities_do_not_split_words(tmp_path: Path) -> None:
    # rustdoc and others write long identifiers as is_<wbr>x86_<wbr>feature; html.parser split them at
    # each <wbr>
    page = tmp_path / "w.html"
    page.write_text("<html><body><main><h1>Macro is_<wbr>x86_<wbr>feature_<wbr>detected</h1>"
                    "<p>Tests a CPU feature.</p></main></body></html>", encoding="utf-8")
    assert "is_x86_feature_detected" in load_file(page).text
