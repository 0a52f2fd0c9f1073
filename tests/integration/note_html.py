"""The merge request note as a reviewer sees it: its markdown turned into HTML the way GitLab
renders this subset (headings, paragraphs, tables, code spans and blocks, bold, italics,
links; ```mermaid blocks drawn by Mermaid's own JavaScript), opened in headless Chromium with
no network, and checked: every chart drawn, no Mermaid error, and every number a chart draws
the number its table holds.

The converter knows only what `modelci.review` writes; anything else stays escaped text.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from tests.harness.browser import MERMAID_JS, open_page

_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def inline(text: str) -> str:
    """Code spans first (their content is literal), then links, bold and italics."""
    out, position = [], 0
    for match in _CODE_SPAN.finditer(text):
        out.append(_emphasis(html.escape(text[position : match.start()], quote=False)))
        content = match.group(2)
        if content.startswith(" ") and content.endswith(" ") and content.strip():
            content = content[1:-1]
        out.append(f"<code>{html.escape(content)}</code>")
        position = match.end()
    out.append(_emphasis(html.escape(text[position:], quote=False)))
    joined = "".join(out)
    # A link's label is a code span (already converted): [<code>..</code>](url)
    return re.sub(
        r"\[(<code>.*?</code>)\]\((https?://[^)\s]+)\)",
        lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>',
        joined,
    )


def _emphasis(text: str) -> str:
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"(?<![*\w])\*([^*]+?)\*(?![*\w])", r"<em>\1</em>", text)
    return re.sub(
        r"\[([^\]]+)\]\((https?://[^)\s]+)\)",
        lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>',
        text,
    )


def _cells(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
    return [cell.strip().replace("\\|", "|") for cell in cells]


def note_to_html(note: str) -> str:
    lines = note.splitlines()
    body: list[str] = []
    index = 0
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            body.append("<p>" + " ".join(inline(p) for p in paragraph) + "</p>")
            paragraph.clear()

    while index < len(lines):
        line = lines[index]
        if line.startswith("<!-- modelci:"):
            index += 1
            continue
        if line.startswith("```"):
            flush()
            language = line[3:].strip()
            end = lines.index("```", index + 1)
            code = html.escape("\n".join(lines[index + 1 : end]))
            if language == "mermaid":
                body.append(f'<pre class="mermaid">{code}</pre>')
            else:
                body.append(f"<pre><code>{code}</code></pre>")
            index = end + 1
            continue
        heading = re.match(r"^(#{1,6}) (.*)$", line)
        if heading:
            flush()
            level = len(heading.group(1))
            body.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
        elif line.startswith("| "):
            flush()
            rows = []
            while index < len(lines) and lines[index].startswith("| "):
                rows.append(_cells(lines[index]))
                index += 1
            header, rest = rows[0], rows[2:]
            table = ["<table><thead><tr>"]
            table += [f"<th>{inline(cell)}</th>" for cell in header]
            table.append("</tr></thead><tbody>")
            for row in rest:
                table.append("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>")
            body.append("".join(table) + "</tbody></table>")
            continue
        elif not line.strip():
            flush()
        else:
            paragraph.append(line)
        index += 1
    flush()
    return "\n".join(body)


PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>merge request note</title>
<style>
body {{ font-family: sans-serif; font-size: 14px; max-width: 1000px; margin: 16px; }}
table {{ border-collapse: collapse; margin: 8px 0; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
code {{ background: #f0f0f0; padding: 0 3px; }}
pre.mermaid {{ max-width: 480px; }}
</style>
<script src="{mermaid}"></script>
</head><body>
{body}
<script>
mermaid.initialize({{ startOnLoad: false, securityLevel: "strict" }});
mermaid.run({{ querySelector: "pre.mermaid" }}).then(
  () => document.body.setAttribute("data-rendered", "yes"),
  (error) => document.body.setAttribute("data-rendered", "error: " + error),
);
</script>
</body></html>
"""


def chart_numbers(note: str) -> list[tuple[list[str], list[list[str]], list[list[str]]]]:
    """Per mermaid block: its bar values, its line values, and the table rows after it."""
    found = []
    for match in re.finditer(r"```mermaid\n(.*?)\n```\n\n((?:\|[^\n]*\n)+)", note, flags=re.DOTALL):
        block, table = match.group(1), match.group(2)
        (bars,) = re.findall(r"^\s*bar \[(.*)\]$", block, flags=re.MULTILINE)
        lines = re.findall(r"^\s*line \[(.*)\]$", block, flags=re.MULTILINE)
        rows = [_cells(line) for line in table.strip().splitlines()]
        found.append(
            (
                [v.strip() for v in bars.split(",")],
                [[v.strip() for v in line.split(",")] for line in lines],
                rows,
            )
        )
    return found


def assert_note_renders(note: str, screenshot: Path, page: Path) -> str:
    """Render `note` in Chromium; assert every chart is drawn without a Mermaid error and
    draws the numbers of its table. The DOM after Mermaid ran."""
    blocks = note.count("```mermaid\n")
    assert blocks > 0, "the note has no chart"
    charts = chart_numbers(note)
    assert len(charts) == blocks, "a chart without its table"
    for bars, lines, rows in charts:
        value_row = next(row for row in rows if row[0] == "value")
        assert bars == value_row[1:], (bars, value_row)
        line_rows = [row for row in rows if row[0].endswith("(line)")]
        assert [row[1:] for row in line_rows] == lines, (lines, line_rows)
        assert len(rows[0]) - 1 == len(bars)  # a column per bar, labelled as on the x-axis

    page.write_text(
        PAGE.format(mermaid=MERMAID_JS.resolve().as_uri(), body=note_to_html(note)),
        encoding="utf-8",
    )
    dom = open_page(page, screenshot, height=4000).dom
    assert 'data-rendered="yes"' in dom, re.findall(r'data-rendered="[^"]*"', dom)
    assert "Syntax error" not in dom and "Parse error" not in dom
    svgs = re.findall(r'<pre class="mermaid"[^>]*>\s*<svg', dom)
    assert len(svgs) == blocks, f"{len(svgs)} charts drawn of {blocks}"
    # Each chart drew one bar per value (Mermaid's xychart: rects in its bar plot).
    plots = re.findall(r'<g class="bar-plot-0">(.*?)</g>', dom, flags=re.DOTALL)
    assert [plot.count("<rect") for plot in plots] == [len(bars) for bars, _, _ in charts]
    return dom
