"""How Argo CD reads the GitOps repo, for tests: its git files generator's globbing, the
parameters it gives a goTemplate, and the template rendered the way Argo CD renders it (every
string field on its own, by Go's text/template through Helm's Go engine, with
`missingkey=error` enforced on the field chains)."""

from __future__ import annotations

import copy
import fnmatch
import posixpath
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm

ACTION = re.compile(r"{{-?(.*?)-?}}", re.S)
FIELD_CHAIN = re.compile(r"(?<![\w)\]$])((?:\.[A-Za-z_]\w*)+)")


def matches_legacy(pattern: str, path: str) -> bool:
    """Argo CD's default file globbing (`git ls-files` pathspec, fnmatch without
    FNM_PATHNAME): `*` also matches '/'. Python's fnmatch does the same."""
    return fnmatch.fnmatchcase(path, pattern)


def matches_new(pattern: str, path: str) -> bool:
    """Argo CD's optional doublestar globbing: `*` stays inside one path segment."""
    pattern_parts, path_parts = pattern.split("/"), path.split("/")
    return len(pattern_parts) == len(path_parts) and all(
        fnmatch.fnmatchcase(part, glob)
        for part, glob in zip(path_parts, pattern_parts, strict=True)
    )


def generator_params(config_path: str, content: dict[str, Any]) -> dict[str, Any]:
    """The parameters Argo CD's git files generator gives a goTemplate for one file."""
    directory, filename = posixpath.split(config_path)

    def normalized(text: str) -> str:
        return re.sub(r"[^a-zA-Z0-9-]", "-", text)

    return {
        **content,
        "path": {
            "path": directory,
            "basename": posixpath.basename(directory),
            "filename": filename,
            "basenameNormalized": normalized(posixpath.basename(directory)),
            "filenameNormalized": normalized(filename),
            "segments": directory.split("/"),
        },
    }


def templated_strings(
    node: Any, path: tuple[Any, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from templated_strings(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from templated_strings(value, (*path, index))
    elif isinstance(node, str) and "{{" in node:
        yield path, node


def missing_keys(text: str, params: dict[str, Any]) -> list[str]:
    """Field chains in the template's actions that do not resolve: what missingkey=error
    turns into an error (Helm's engine would print an empty string instead)."""
    missing = []
    for action in ACTION.findall(text):
        for chain in FIELD_CHAIN.findall(action):
            node: Any = params
            for key in chain.strip(".").split("."):
                if not isinstance(node, dict) or key not in node:
                    missing.append(chain)
                    break
                node = node[key]
    return missing


def render_template(template: dict[str, Any], params: dict[str, Any], work: Path) -> dict[str, Any]:
    """The Application Argo CD would generate: each templated string rendered separately by
    Go's text/template (Helm's engine, with `.` set to the generator parameters)."""
    strings = list(templated_strings(template))
    problems = [chain for _, text in strings for chain in missing_keys(text, params)]
    if problems:
        raise KeyError(f"missingkey=error: {problems}")
    chart = work / "gotemplate"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: gotemplate\nversion: 0.0.1\n")
    for index, (_, text) in enumerate(strings):
        (chart / "templates" / f"s{index}.txt").write_text(
            "{{ with .Values }}" + text + "{{ end }}"
        )
    with helm.Chart.load(chart) as loaded:
        output = loaded.render(params, name="x", namespace="x")
    result = copy.deepcopy(template)
    for index, (path, _) in enumerate(strings):
        node = result
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = output[f"gotemplate/templates/s{index}.txt"]
    return result
