"""Text from the systems into HTML: escaped for the place it goes, so that a model, branch or
metric name (chosen by whoever pushed it) reaches the page only as text."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

# C0 and C1 controls other than tab and newline: HTML has no use for them, and some parse
# errors they cause differ between readers. Lone surrogates cannot be written as UTF-8. Both
# are shown as U+FFFD.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
SAFE_SCHEMES = ("http", "https")


def text(value: object) -> str:
    """`value` as HTML text (also fit for a quoted attribute value)."""
    return html.escape(_CONTROLS.sub("\ufffd", str(value)), quote=True)


def attr(value: object) -> str:
    return text(value)


def href(url: str) -> str:
    """A link target: only http(s) URLs; anything else (javascript:, data:) becomes ""."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return ""
    return text(url) if scheme in SAFE_SCHEMES else ""
