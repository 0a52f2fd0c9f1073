"""What a job shows a person: collapsible GitLab log sections and dotenv reports."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

_SECTION_ID = re.compile(r"[^a-z0-9_.-]")
_DOTENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@contextmanager
def section(section_id: str, title: str, *, collapsed: bool = False) -> Iterator[None]:
    """A GitLab collapsible section around whatever is printed inside the block."""
    name = _SECTION_ID.sub("_", section_id.lower())
    options = "[collapsed=true]" if collapsed else ""
    out = sys.stdout
    out.write(f"\x1b[0Ksection_start:{int(time.time())}:{name}{options}\r\x1b[0K{title}\n")
    try:
        yield
    finally:
        out.write(f"\x1b[0Ksection_end:{int(time.time())}:{name}\r\x1b[0K\n")
        out.flush()


def write_dotenv(path: Path, values: Mapping[str, str]) -> None:
    """A dotenv report GitLab reads: one KEY=value per line, no newlines inside values."""
    lines = []
    for key, value in values.items():
        if not _DOTENV_KEY.fullmatch(key):
            raise ValueError(f"not a dotenv variable name: {key!r}")
        if "\n" in value or "\r" in value:
            raise ValueError(f"dotenv value of {key} contains a line break")
        lines.append(f"{key}={value}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")
