"""The documentation cannot rot: every command in a ```bash block of README.md and docs/ is one
the product accepts (a real `modelci` subcommand with options its parser takes, an existing
script, existing manifests), the README's five-minute model repository validates and renders,
and every relative link points to an existing file and heading."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from modelci.cli import SUBCOMMANDS, build_parser, main
from tests.harness.tools import ROOT

PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

# Commands shown in the docs that this library does not run or check, each with the reason.
# Kept short: a command that can be checked gets a rule in `problem_of` instead.
ALLOWED = {
    "git switch -c": "the model repository's own git; GitLab, not modelci, acts on the push",
    "git add": "the model repository's own git",
    "git commit": "the model repository's own git",
    "git push": "the model repository's own git; the push pipeline is what the suite runs",
}

FENCE = re.compile(r"^(?P<indent>[ ]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def fenced_blocks(text: str) -> list[tuple[str, int, list[str]]]:
    """(info string, first line number, lines) of every fenced code block."""
    blocks, current = [], None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if current is None and match:
            current = (match["fence"], match["info"].strip(), number + 1, [], len(match["indent"]))
        elif current is not None and match and match["fence"].startswith(current[0]):
            blocks.append((current[1], current[2], current[3]))
            current = None
        elif current is not None:
            current[3].append(line[current[4] :] if line[: current[4]].strip() == "" else line)
    assert current is None, f"a code block opened at line {current[2] - 1} is never closed"
    return blocks


def outside_blocks(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    kept, inside = [], None
    for line in text.splitlines():
        match = FENCE.match(line)
        if match and (inside is None or match["fence"].startswith(inside)):
            inside = match["fence"] if inside is None else None
            continue
        if inside is None:
            kept.append(line)
    return kept


def shell_commands(path: Path) -> list[tuple[str, str]]:
    """(where, command) of every command line in the ```bash blocks of a page."""
    found = []
    for info, first, lines in fenced_blocks(path.read_text(encoding="utf-8")):
        if info.split(" ")[0] not in ("bash", "sh", "shell", "console"):
            continue
        joined, start = "", first
        for offset, line in enumerate(lines):
            if not joined:
                start = first + offset
            if line.rstrip().endswith("\\"):
                joined += line.rstrip()[:-1] + " "
                continue
            command = " ".join(shlex.split(joined + line, comments=True))
            joined = ""
            if command:
                found.append((f"{rel(path)}:{start}", command))
    return found


ALL_COMMANDS = [item for page in PAGES for item in shell_commands(page)]


def parse_modelci(argv: list[str]) -> str | None:
    """None when the parser of modelci accepts `argv` (nothing is run), else its message."""
    if not argv or argv[0] not in SUBCOMMANDS:
        return f"{argv[:1]} is not a modelci subcommand (they are: {', '.join(SUBCOMMANDS)})"
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            build_parser(argv[0]).parse_args(argv)
    except SystemExit:
        return stderr.getvalue().strip().splitlines()[-1]
    return None


def problem_of(command: str) -> str | None:
    """Why `command` is not one the suite runs or checks; None when it is."""
    argv = shlex.split(command)
    if argv[0] == "modelci":
        return parse_modelci(argv[1:])
    if argv[:1] == ["bash"] and len(argv) > 1:
        script = ROOT / argv[1]
        inside = script.resolve().is_relative_to(ROOT / "scripts")
        return None if inside and script.is_file() else f"{argv[1]} is not a script in scripts/"
    if argv[0] in ("python", ".venv/bin/python") and len(argv) > 1:
        return None if (ROOT / argv[1]).is_file() else f"{argv[1]} does not exist"
    if argv[:2] == ["kubectl", "apply"]:
        files = [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "-f"]
        missing = [name for name in files if not (ROOT / name).is_file()]
        return f"no such files: {missing}" if missing or not files else None
    if argv[:2] == ["docker", "build"]:
        # The image itself is not built here (no Docker engine); test_package.py checks that
        # the Dockerfile's COPY lines build the wheel the suite installs.
        context = ROOT / argv[-1]
        return None if (context / "Dockerfile").is_file() else f"no Dockerfile in {argv[-1]}"
    if any(command.startswith(prefix + " ") for prefix in ALLOWED):
        return None
    return "neither a command the suite runs or checks nor in ALLOWED (with its reason)"


def test_the_docs_show_commands() -> None:
    assert len(ALL_COMMANDS) >= 10, ALL_COMMANDS
    assert {"bash scripts/demo.sh", "bash scripts/test.sh"} <= {c for _, c in ALL_COMMANDS}


@pytest.mark.parametrize(("where", "command"), ALL_COMMANDS, ids=[w for w, _ in ALL_COMMANDS])
def test_every_command_in_the_docs_is_one_the_suite_runs_or_checks(
    where: str, command: str
) -> None:
    assert problem_of(command) is None, f"{where}: {command}: {problem_of(command)}"


def test_every_allowed_command_is_shown_somewhere() -> None:
    shown = [command for _, command in ALL_COMMANDS]
    unused = [p for p in ALLOWED if not any(c.startswith(p + " ") for c in shown)]
    assert not unused, f"drop these from ALLOWED, no page shows them: {unused}"


@pytest.mark.parametrize(
    "command",
    [
        "modelci deploy --config mlops.yaml",
        "modelci rollback --stand",
        "modelci cleanup --dry-run --force",
        "bash scripts/missing.sh",
        "bash tests/harness/tools.py",
        "kubectl apply -f argocd/missing.yaml",
        "docker build -t x:1 charts",
        "curl https://example.com",
    ],
)
def test_the_check_refuses_what_the_product_would_not_run(command: str) -> None:
    assert problem_of(command) is not None


# ---------------------------------------------------------------- the five-minute path


def readme_block(info: str, starts_with: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Five minutes", 1)[1].split("\n## ", 1)[0]
    (block,) = [
        "\n".join(lines)
        for kind, _, lines in fenced_blocks(section)
        if kind == info and lines and lines[0].startswith(starts_with)
    ]
    return block + "\n"


def test_the_readmes_five_minute_repository_validates_and_renders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's mlops.yaml and train.py, run through the two commands it shows, on a
    laptop: nothing of a CI job (CI itself runs this test with CI=true)."""
    for name in list(os.environ):
        if name.startswith(("CI_", "MLFLOW_", "AWS_", "MODELCI_", "GITLAB_")) or name == "CI":
            monkeypatch.delenv(name)
    (tmp_path / "mlops.yaml").write_text(readme_block("yaml", "version: 1"), encoding="utf-8")
    (tmp_path / "train.py").write_text(readme_block("python", "import mlflow"), encoding="utf-8")
    compile(readme_block("python", "import mlflow"), "train.py", "exec")
    (tmp_path / "requirements.txt").write_text(readme_block("text", "mlflow=="), encoding="utf-8")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "first-model"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "First model"], check=True)
    config = str(tmp_path / "mlops.yaml")

    shown = [c for w, c in ALL_COMMANDS if w.startswith("README.md") and c.startswith("modelci ")]
    assert shown == ["modelci validate --config mlops.yaml", "modelci render --config mlops.yaml"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["validate", "--config", config]) == 0
        assert main(["render", "--config", config, "--project", "ml/house-prices"]) == 0
    assert "house-prices" in out.getvalue()
    assert "values.yaml" in out.getvalue()


# ---------------------------------------------------------------- links


def anchors(path: Path) -> set[str]:
    """The heading anchors GitHub and GitLab give a page."""
    found, seen = set(), {}
    for line in outside_blocks(path.read_text(encoding="utf-8")):
        match = re.match(r"#{1,6} (.+)", line.replace("`", ""))
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match[1].strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(path: Path) -> list[str]:
    """The link targets of a page, outside code blocks and inline code."""
    lines = outside_blocks(path.read_text(encoding="utf-8"))
    prose = re.sub(r"`[^`]*`", "", "\n".join(lines))
    return [m["target"] for m in LINK.finditer(prose)]


def test_every_relative_link_points_to_an_existing_file_and_heading() -> None:
    assert sum(len(links(page)) for page in PAGES) >= 50
    broken = []
    for page in PAGES:
        for target in links(page):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            destination = (page.parent / file_part).resolve() if file_part else page
            if not destination.exists():
                broken.append(f"{rel(page)}: {target}: no such file")
            elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
                broken.append(f"{rel(page)}: {target}: no heading #{anchor}")
    assert not broken, "\n".join(broken)


def test_every_docs_page_is_in_the_index() -> None:
    index = ROOT / "docs" / "README.md"
    linked = {(index.parent / t.partition("#")[0]).resolve() for t in links(index)}
    missing = [rel(p) for p in PAGES if p.parent != ROOT and p != index and p not in linked]
    assert not missing, f"docs/README.md does not link: {missing}"


# ---------------------------------------------------------------- the architecture's pictures


def test_the_module_picture_names_every_module_of_the_package() -> None:
    """docs/architecture.md draws the lifecycle and the modules; a module added to the package
    and missing from the picture fails here."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    pictures = ["\n".join(lines) for info, _, lines in fenced_blocks(text) if info == "mermaid"]
    assert len(pictures) == 2
    package = ROOT / "scripts" / "modelci"
    modules = [
        p.relative_to(package)
        for p in package.rglob("*.py")
        if not p.name.startswith("__") and p.parent.name not in ("commands", "__pycache__")
    ]
    nodes = pictures[1].splitlines()

    def drawn(module: Path) -> bool:
        folder = f"{module.parent.as_posix()}/ " if module.parent != Path(".") else ""
        return any(folder in line and module.name in line for line in nodes)

    missing = sorted(str(module) for module in modules if not drawn(module))
    assert not missing, f"the module picture of docs/architecture.md lacks {missing}"
    assert all(f"{name}" in pictures[0] for name in ("validate", "train", "gate", "compare"))
