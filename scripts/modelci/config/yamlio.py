"""Safe reading of small, hand-written YAML files, keeping the line and column of every value.

`read_yaml` turns every kind of bad input (missing or unreadable file, binary junk, syntax
errors, duplicate keys, anchors/aliases, tags, huge or deeply nested documents) into one
`ConfigError` naming the file, never a traceback and never a hang. Files are parsed with
ruamel.yaml's round-trip loader, so `value_position` / `key_position` can point a user at
the exact line of anything they wrote. A plain scalar that YAML resolves to a number or a date
it cannot build (an integer longer than `MAX_INT_DIGITS`, a date like 2024-02-30) becomes an
`UnreadableScalar` in place, so the reader of the document reports it at its line.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedBase, CommentedMap
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
)
from ruamel.yaml.reader import ReaderError

from ..errors import ConfigError, Problem

MAX_BYTES = 1024 * 1024  # hand-written config files are a few KiB; refuse anything absurd
MAX_DEPTH = 32  # nesting levels of mappings and lists
# No field needs a longer integer; Python refuses to convert ints over 4300 digits to text.
MAX_INT_DIGITS = 100

_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"


def read_yaml(path: Path) -> CommentedMap:
    """Read a YAML file whose top level is a mapping; raise ConfigError with one problem if not."""
    text = _read_text(path)
    return parse_yaml(text, str(path))


def parse_yaml(text: str, file: str) -> CommentedMap:
    """Parse YAML text (named `file` in messages) whose top level must be a mapping."""
    _check_structure(text, file)
    try:
        data = _round_trip_loader().load(text)
    except MarkedYAMLError as error:  # a backstop: _check_structure sees these first
        raise _syntax_error(file, text, error) from None
    except (YAMLError, ValueError) as error:  # e.g. a date like 2024-02-30
        raise _file_error(file, f"the file cannot be read as YAML: {error}") from None
    if data is None:
        raise _empty_file_error(file)
    if not isinstance(data, CommentedMap):
        kind = "a list" if isinstance(data, list) else f"a single value ({data!r:.40})"
        raise _file_error(
            file,
            f"the top level is {kind}; expected a mapping of `key: value` lines.",
            line=1,
        )
    return data


@dataclass(frozen=True)
class UnreadableScalar:
    """A plain scalar YAML resolves to a number or date that cannot be built, kept as written."""

    text: str  # as written in the file
    description: str  # what it is, for "found ...": "the number 1111... (5000 digits, ...)"

    def __str__(self) -> str:
        return _shorten(self.text)


def plain_scalar(text: str) -> Any:
    """What YAML reads `text` as when it is written unquoted (a number, a boolean, text...).

    Raises ValueError for text that cannot stand unquoted as one simple word.
    """
    if not _SIMPLE_WORD.fullmatch(text):
        raise ValueError(f"not a simple word: {text!r}")
    try:
        value = _round_trip_loader().load(f"value: {text}\n")["value"]
    except YAMLError as error:
        raise ValueError(str(error)) from None
    if isinstance(value, CommentedBase):
        raise ValueError(f"not a scalar: {text!r}")
    return value


def value_position(container: Any, key: Any) -> tuple[int | None, int | None]:
    """1-based (line, column) of `container[key]` (a mapping key or a list index)."""
    return _position(container, key, of_key=False)


def key_position(container: Any, key: Any) -> tuple[int | None, int | None]:
    """1-based (line, column) of a mapping key itself (for list items: the item)."""
    return _position(container, key, of_key=True)


def node_position(node: Any) -> tuple[int | None, int | None]:
    """1-based (line, column) where a mapping or list starts."""
    if isinstance(node, CommentedBase):
        return node.lc.line + 1, node.lc.col + 1
    return None, None


def problem_at(
    file: str, container: Any, key: Any, field: str, message: str, *, at_key: bool = False
) -> Problem:
    """A Problem located at `container[key]` (or at the key itself with at_key=True)."""
    line, column = _position(container, key, of_key=at_key)
    return Problem(file=file, field=field, message=message, line=line, column=column)


def _position(container: Any, key: Any, *, of_key: bool) -> tuple[int | None, int | None]:
    if not isinstance(container, CommentedBase):
        return None, None
    try:
        if isinstance(container, CommentedMap):
            # A null (often `key:` with nothing after it) is placed at its key: the mark of an
            # empty value is wherever the next token starts, often on a later line.
            at_key = of_key or container[key] is None
            line, column = container.lc.key(key) if at_key else container.lc.value(key)
        else:
            line, column = container.lc.item(key)
    except (KeyError, IndexError, TypeError):
        return node_position(container)
    return line + 1, column + 1


def _round_trip_loader() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    yaml.allow_duplicate_keys = False
    return yaml


_SIMPLE_WORD = re.compile(r"[A-Za-z0-9_.+-]+")
_INT_PREFIX = re.compile(r"[+-]?(?:0[xob])?")


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Constructor(RoundTripConstructor):
    """The round-trip constructor, but a number or date it cannot build is kept as written."""

    def construct_yaml_int(self, node: Any) -> Any:
        text = node.value
        digits = len(text.replace("_", "")) - len(_INT_PREFIX.match(text.replace("_", ""))[0])
        if digits > MAX_INT_DIGITS:
            return UnreadableScalar(
                text,
                f"the number {_shorten(text, 23)} ({digits} digits; "
                f"at most {MAX_INT_DIGITS} are read)",
            )
        return super().construct_yaml_int(node)

    def construct_yaml_timestamp(self, node: Any, values: Any = None) -> Any:
        try:
            return super().construct_yaml_timestamp(node, values)
        except ValueError as error:  # 2024-02-30, 2024-13-01, 24:61
            return UnreadableScalar(
                node.value,
                f"{_shorten(node.value)}, which YAML reads as a date that does not exist ({error})",
            )


for _tag, _method in (
    ("tag:yaml.org,2002:int", _Constructor.construct_yaml_int),
    ("tag:yaml.org,2002:timestamp", _Constructor.construct_yaml_timestamp),
):
    _Constructor.add_constructor(_tag, _method)


# --- reading bytes -------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    data = _read_bytes(path)
    file = str(path)
    if data.startswith(_UTF16_32_BOMS):
        raise _file_error(file, "the file is encoded as UTF-16 or UTF-32; save it as UTF-8.")
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise _file_error(
            file, "the file contains NUL bytes: it looks like a binary file, not YAML.", line=line
        )
    data = data.removeprefix(_UTF8_BOM)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        byte = data[error.start]
        raise _file_error(
            file,
            f"the file is not valid UTF-8 (byte 0x{byte:02x}); save it as UTF-8 text.",
            line=line,
        ) from None


def _read_bytes(path: Path) -> bytes:
    file = str(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat below rejects it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise _file_error(
            file, f"file not found (looked for {Path(path).absolute()}); create it or fix the path."
        ) from None
    except PermissionError:
        raise _file_error(
            file, "the file cannot be read: permission denied; make it readable."
        ) from None
    except OSError as error:
        raise _file_error(file, f"the file cannot be opened: {error.strerror}.") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise _file_error(file, "this is a directory; expected a YAML file.")
        if not stat.S_ISREG(info.st_mode):
            raise _file_error(
                file, "this is not a regular file (a device, FIFO or socket); expected a YAML file."
            )
        if info.st_size > MAX_BYTES:
            raise _too_big_error(file, info.st_size)
        chunks = list(_read_chunks(fd, MAX_BYTES + 1))
    except OSError as error:
        raise _file_error(file, f"the file cannot be read: {error.strerror}.") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_BYTES:  # the file grew after fstat
        raise _too_big_error(file, len(data))
    return data


def _read_chunks(fd: int, limit: int) -> Iterator[bytes]:
    remaining = limit
    while remaining > 0:
        chunk = os.read(fd, min(remaining, 65536))
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk


def _too_big_error(file: str, size: int) -> ConfigError:
    return _file_error(
        file,
        f"the file is too large ({size} bytes, at most {MAX_BYTES} allowed); is it the right file?",
    )


# --- checking the event stream before building anything ----------------------------------------


class _MappingFrame:
    """Keys seen so far in one mapping, and whether the next event is a key or a value."""

    def __init__(self) -> None:
        self.expect_key = True
        self.keys: dict[str, int] = {}  # scalar key -> 1-based line


def _check_structure(text: str, file: str) -> None:
    """Walk parse events once: syntax, anchors/aliases, tags, depth, duplicate keys, documents.

    Working on events keeps this bounded by the file size: nothing is expanded or built, so
    an alias bomb or a deeply nested list cannot eat memory or recurse.
    """
    stack: list[_MappingFrame | None] = []  # None for a sequence
    documents = 0
    try:
        for event in _round_trip_loader().parse(text):
            if isinstance(event, DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _file_error(
                        file,
                        "the file holds more than one YAML document (a second `---`); "
                        "keep exactly one.",
                        line=_line(event),
                    )
            if isinstance(event, NodeEvent):
                _check_node(event, file)
                _check_duplicate_key(event, stack, file)
            if isinstance(event, CollectionStartEvent):
                stack.append(_MappingFrame() if isinstance(event, MappingStartEvent) else None)
                if len(stack) > MAX_DEPTH:
                    raise _file_error(
                        file,
                        f"the file is nested more than {MAX_DEPTH} levels deep; flatten it.",
                        line=_line(event),
                    )
            elif isinstance(event, CollectionEndEvent):
                stack.pop()
    except MarkedYAMLError as error:
        raise _syntax_error(file, text, error) from None
    except ReaderError as error:
        line = text[: error.position].count("\n") + 1
        raise _file_error(
            file,
            "the file contains a control character YAML does not allow "
            f"({_codepoint(error.character)}); remove it.",
            line=line,
        ) from None
    except YAMLError as error:
        raise _file_error(file, f"the file cannot be read as YAML: {error}") from None


def _check_node(event: NodeEvent, file: str) -> None:
    if isinstance(event, AliasEvent) or event.anchor is not None:
        raise _file_error(
            file,
            "YAML anchors and aliases (&name / *name) are not supported; "
            "write the values out in full. (A value that starts with * must be quoted, "
            'e.g. schedule: "*/5 * * * *".)',
            line=_line(event),
            column=_column(event),
        )
    tag = getattr(event, "tag", None)
    if tag is not None:
        raise _file_error(
            file,
            f"YAML tags ({_short_tag(tag)}) are not supported; write a plain value "
            '(put quotes around text, e.g. "5").',
            line=_line(event),
            column=_column(event),
        )


def _check_duplicate_key(event: NodeEvent, stack: list[_MappingFrame | None], file: str) -> None:
    frame = stack[-1] if stack else None
    if frame is None:
        return
    if frame.expect_key and isinstance(event, ScalarEvent):
        line = _line(event)
        first = frame.keys.get(event.value)
        if first is not None:
            raise _file_error(
                file,
                f'duplicate key "{event.value}" (first at line {first}, again at line {line}); '
                "keep only one of them.",
                line=line,
                column=_column(event),
            )
        frame.keys[event.value] = line
    frame.expect_key = not frame.expect_key


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def _codepoint(character: int | str) -> str:
    code = character if isinstance(character, int) else ord(character)
    return f"U+{code:04X}"


def _line(event: Event) -> int | None:
    return event.start_mark.line + 1 if event.start_mark is not None else None


def _column(event: Event) -> int | None:
    return event.start_mark.column + 1 if event.start_mark is not None else None


# --- messages -------------------------------------------------------------------------------


def _syntax_error(file: str, text: str, error: MarkedYAMLError) -> ConfigError:
    mark = error.problem_mark or error.context_mark
    if error.context_mark is not None and "alias" in (error.context or ""):
        mark = error.context_mark  # where the unquoted * is, not where scanning gave up
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    source_line = text.splitlines()[line - 1] if line and line <= len(text.splitlines()) else ""
    indent = source_line[: len(source_line) - len(source_line.lstrip(" \t"))]
    if "\t" in indent:
        return _file_error(
            file,
            "a tab is used for indentation; YAML indents with spaces only. "
            "Replace the tabs with spaces.",
            line=line,
        )
    what = "; ".join(part for part in (error.context, error.problem) if part)
    start = error.context_mark
    if start is not None and line is not None and start.line + 1 != line:
        what += f" (it started at line {start.line + 1})"
    hint = _syntax_hint(error)
    return _file_error(file, f"invalid YAML: {what}. {hint}", line=line, column=column)


def _syntax_hint(error: MarkedYAMLError) -> str:
    problem = error.problem or ""
    context = error.context or ""
    if "alias" in context or "'*'" in problem:
        return 'A value starting with * must be quoted, e.g. schedule: "*/5 * * * *".'
    if "'@'" in problem or "'`'" in problem:
        return 'A value starting with @ or ` must be quoted, e.g. schedule: "@daily".'
    if "mapping values are not allowed" in problem:
        return 'Put values that contain ": " in quotes, or fix the indentation.'
    return "Fix the YAML at that line (check indentation, colons and quotes)."


def _empty_file_error(file: str) -> ConfigError:
    return _file_error(
        file, "the file is empty (or only comments); expected a mapping of `key: value` lines."
    )


def _file_error(
    file: str, message: str, *, line: int | None = None, column: int | None = None
) -> ConfigError:
    return ConfigError([Problem(file=file, field="", message=message, line=line, column=column)])
