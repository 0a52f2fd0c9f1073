"""Errors a user can act on. The CLI prints them (never a traceback) and exits non-zero."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

# A URL's user-info: from `scheme://` to the last `@` before the host, so that a password
# holding an unescaped `@` is hidden whole; it never crosses a `/`, `?`, `#`, space or quote.
_URL_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s'\"]*@")


class ModelciError(Exception):
    """A failure with a message that says what went wrong and how to fix it."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file: where it is, which field, what was found and what is expected."""

    file: str
    field: str  # dotted path, e.g. "models[0].gate.metrics[1].min"; "" for the whole file
    message: str  # "found X, expected Y" plus the fix
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class ConfigError(ModelciError):
    """The model config file (or another input file) is invalid. Nothing was written."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def redact_url(text: str) -> str:
    """`text` with the user-info (`user:password@`) of every URL in it replaced by `***@`:
    safe to print or to put in an error message."""
    return _URL_USERINFO.sub(r"\1***@", text)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` safe to print: the user-info of every URL in it hidden (`redact_url`), and each
    of `secrets` (a password, a token) replaced by `***` wherever it appears, as written or
    percent-encoded. Nothing else is touched: a user name such as `git`, or any other short
    or common word, stays as it is in the text around it."""
    forms = {form for secret in secrets if secret for form in (secret, quote(secret, safe=""))}
    for form in sorted(forms, key=len, reverse=True):  # a secret inside another goes last
        text = text.replace(form, "***")
    return redact_url(text)


def strip_userinfo(url: str) -> str:
    """`url` without user-info (`user:password@`): for URLs written where others read them."""
    return _URL_USERINFO.sub(r"\1", url)
