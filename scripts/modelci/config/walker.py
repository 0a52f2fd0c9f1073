"""The walk of a YAML document that collects every problem instead of stopping at the first.

`Walker` reads mappings, lists and single values out of what `yamlio.read_yaml` returned, checks
each with a function of `checks.py`, and records each refusal as a `Problem` at the file, line
and column of what was written. It knows no section of `mlops.yaml`: the section readers are
mixins built on it (`shared_fields.py`, `*_sections.py`), composed into the loader of
`mlops.py`. Apart so that the generic reading and the reporting are read, and changed, once.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ..errors import Problem
from .checks import Invalid, advice, as_arg, key_text, word_list, wrong
from .fields import examples
from .yamlio import node_position, problem_at, value_position

EXAMPLES = examples()  # key name -> the example shown when that required key is missing

T = TypeVar("T")


def join_path(parent: str, key: Any) -> str:
    """The field path of `parent[key]`: a list index in brackets, a mapping key as YAML
    writes it (models[0].train, stands, true)."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{parent}[{key}]"
    text = key_text(key)
    return f"{parent}.{text}" if parent else text


def none_fix(key: Any, required: bool) -> str:
    """The advice for a null where a value is needed."""
    if isinstance(key, int):
        return "Write the item or remove it."
    return "Give it a value." if required else "Give it a value or remove the key."


class Walker:
    """Reads one document of `file`; what is wrong in it accumulates in `problems`."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    # reporting

    def report(
        self, container: Any, key: Any, field: str, message: str, *, at_key: bool = False
    ) -> None:
        self.problems.append(problem_at(self.file, container, key, field, message, at_key=at_key))

    def report_at_node(self, node: Any, field: str, message: str) -> None:
        line, column = node_position(node)
        self.problems.append(Problem(self.file, field, message, line, column))

    # structure

    def check_keys(
        self, mapping: CommentedMap, path: str, allowed: tuple[str, ...], required: Iterable[str]
    ) -> None:
        for key in mapping:
            if key in allowed:
                continue
            name = key_text(key)
            close = difflib.get_close_matches(name, allowed, n=1)
            hint = f'Did you mean "{close[0]}"? ' if close else ""
            self.report(
                mapping,
                key,
                join_path(path, name),
                f'unknown key "{name}". {hint}Expected one of {word_list(allowed)}.',
                at_key=True,
            )
        for key in required:
            if key not in mapping:
                self.report_at_node(
                    mapping,
                    join_path(path, key),
                    f'required key "{key}" is missing; add it, e.g. {key}: {EXAMPLES[key]}',
                )

    def mapping(
        self,
        container: Any,
        key: Any,
        path: str,
        allowed: tuple[str, ...],
        required: Iterable[str] = (),
        *,
        is_required: bool = False,
    ) -> CommentedMap | None:
        """`container[key]` as a mapping (its keys checked), or None when absent or invalid.

        `required` are the keys it must hold; `is_required` says whether it may be left out.
        """
        if container is None or (isinstance(container, dict) and key not in container):
            return None
        value = container[key]
        if not isinstance(value, CommentedMap):
            expected = f"a mapping with keys {word_list(allowed, 'and')}"
            fix = none_fix(key, is_required) if value is None else ""
            self.report(container, key, path, str(wrong(value, expected, fix)))
            return None
        self.check_keys(value, path, allowed, required)
        return value

    def sequence(
        self,
        container: Any,
        key: str,
        path: str,
        *,
        what: str,
        example: str,
        at_least_one: str = "",
    ) -> CommentedSeq:
        """`container[key]` as a list, or an empty one when it is absent or not a list.

        An empty list is an error when `at_least_one` names what it must hold.
        """
        if container is None or key not in container:
            return CommentedSeq()
        value = container[key]
        if not isinstance(value, CommentedSeq):
            self.report(container, key, path, str(wrong(value, f"a list of {what}", example)))
            return CommentedSeq()
        if at_least_one and not value:
            self.report(
                container,
                key,
                path,
                f"found an empty list; expected at least one {at_least_one}. {example}",
            )
        return value

    def mappings(
        self, items: CommentedSeq, path: str, allowed: tuple[str, ...], required: Iterable[str]
    ) -> Iterator[tuple[str, CommentedMap]]:
        """(field path, item) for each item of a list that is a mapping; others are reported."""
        for index, _ in enumerate(items):
            item_path = f"{path}[{index}]"
            item = self.mapping(items, index, item_path, allowed, required)
            if item is not None:
                yield item_path, item

    def value(
        self,
        mapping: CommentedMap | None,
        key: str,
        path: str,
        check: Callable[[Any], T],
        default: T,
        *,
        required: bool = False,
    ) -> T | None:
        """`check(mapping[key])`, `default` when the key is absent, None (reported) if invalid."""
        if mapping is None or key not in mapping:
            return default
        return self.checked(mapping, key, join_path(path, key), check, none_fix(key, required))

    def checked(
        self, container: Any, key: Any, field: str, check: Callable[[Any], T], none_fix: str
    ) -> T | None:
        """`check(container[key])`, or None after reporting why it is invalid."""
        value = container[key]
        try:
            return check(value)
        except Invalid as invalid:
            message = str(invalid)
            fix = "" if invalid.has_fix else advice(value, check, none_fix)
            self.report(container, key, field, message + (f" {fix}" if fix else ""))
            return None

    def strings(self, mapping: CommentedMap | None, key: str, path: str) -> tuple[str, ...]:
        """A list of command-line arguments; each `${...}` in them must be an offered macro."""
        items = self.sequence(
            mapping,
            key,
            join_path(path, key),
            what="strings",
            example='For example: args: ["--seed", "7"]',
        )
        strings = []
        for index, _ in enumerate(items):
            field = f"{join_path(path, key)}[{index}]"
            item = self.checked(items, index, field, as_arg, none_fix(index, False))
            if item is not None:
                strings.append(item)
        return tuple(strings)

    def unique(
        self,
        seen: dict[Any, int | None],
        value: Any,
        mapping: Any,
        key: str | int,
        path: str,
        what: str,
        fix: str = "Rename or remove one.",
    ) -> None:
        """Report `mapping[key]` (field `path`.key) when `value` is in `seen`, else note it."""
        if value is None:
            return
        line, _ = value_position(mapping, key)
        if value in seen:
            first = seen[value]
            self.report(
                mapping,
                key,
                join_path(path, key),
                f'duplicate {what} "{value}" (first at line {first}); {what}s must be unique. '
                + fix,
            )
        else:
            seen[value] = line
