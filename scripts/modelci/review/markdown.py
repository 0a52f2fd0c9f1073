"""The escaping and number formatting every part of the merge request note shares.

Every string that comes from a user (model, metric, column, parameter, package, branch and
stand names, reasons) goes through `md_code` (a code span: no markdown, no HTML, no GitLab
references, no way out of a table cell) or `mermaid_label` (a short whitelisted label); URLs
through `md_url`. Numbers are written by `shown`, once: a chart and the table beside it print
the same string for the same value.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from decimal import Decimal

MAX_REASON = 600
_MAX_LABEL = 40
_MERMAID_SAFE = re.compile(r"[^A-Za-z0-9 _.:/()+-]")
_URL_UNSAFE = {c: f"%{ord(c):02X}" for c in " ()<>[]|`\"'\\"}


def visible(text: str) -> str:
    """`text` on one line: line breaks and other control or invisible characters as escapes."""
    out = []
    for char in str(text):
        if char != " " and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Zs", "Cs"):
            out.append(char.encode("unicode_escape", "backslashreplace").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


def cut(text: str, limit: int = MAX_REASON) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def md_code(text: str, *, table: bool = True) -> str:
    """`text` as an inline code span: one line, fenced with more backticks than it holds, so
    no markdown, HTML or GitLab reference inside it is interpreted. With `table`, pipes are
    escaped so the span cannot end a table cell (GitLab's tables unescape them)."""
    line = visible(text)
    if table:
        line = line.replace("|", "\\|")
    if not line:
        return "*(empty)*"
    longest = max((len(run) for run in re.findall(r"`+", line)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if line.startswith("`") or line.endswith("`") or line.strip() == "" else ""
    return f"{fence}{pad}{line}{pad}{fence}"


def text_code(text: str) -> str:
    """A code span outside a table."""
    return md_code(text, table=False)


def md_url(url: str) -> str | None:
    """A URL usable as a markdown link target, or None when it is not http(s)."""
    url = visible(url)
    if not re.match(r"^https?://", url, re.IGNORECASE):
        return None
    return "".join(_URL_UNSAFE.get(char, char) for char in url)


def md_link(label: str, url: str) -> str:
    """A link whose label is `label` in a code span; just the label when the URL is unusable."""
    target = md_url(url)
    return f"[{md_code(label, table=False)}]({target})" if target else md_code(label, table=False)


def mermaid_label(text: str, limit: int = _MAX_LABEL) -> str:
    """A double-quoted Mermaid string: only letters, digits and ` _.:/()+-`, cut short."""
    return f'"{mermaid_text(text, limit)}"'


def mermaid_text(text: str, limit: int) -> str:
    cleaned = _MERMAID_SAFE.sub("_", visible(text))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 2] + ".."


def usable(value: float | None) -> bool:
    return value is not None and isinstance(value, int | float) and math.isfinite(value)


def shown(value: float | None) -> str:
    """Four significant digits, written out in full (no exponent: Mermaid reads it too);
    "—" for a missing or not finite value."""
    if not usable(value):
        return "—"
    text = format(Decimal(f"{value:.4g}"), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def signed(value: float | None) -> str:
    if not usable(value):
        return "—"
    text = shown(value)
    return text if text.startswith("-") else f"+{text}"


def seconds(value: float) -> str:
    return f"{value:.1f} s"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A markdown table; every cell must already be escaped."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def size(count: int) -> str:
    """Bytes as KB/MB/GB, decimal units."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{shown(value)} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
