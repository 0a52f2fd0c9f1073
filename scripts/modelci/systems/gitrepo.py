"""The one module that writes to shared git repos (the Airflow DAG bundle repo, the GitOps repo).

Every write is one commit pushed once, fast-forward only. A push that loses a race against
another pipeline is rebuilt on the new tip and retried, with jittered exponential backoff that
starts from the time an attempt took, until a time budget runs out (not a count: pipelines of
many projects push to the same repo, and each of them must land). An attempt costs about
eight git processes and two round trips, plus one per directory or file read that the first
fetch did not bring.

Nothing is checked out and no index is built: each operation makes a shallow partial clone in
a temporary directory that holds only the trees above the paths it may touch (a `tree:<depth>`
filter), makes new trees only along the changed paths (gittrees: read with one `cat-file
--batch`, written with one `hash-object`) and fetches a deeper tree or a blob only when it is
read: no other environment's files or directories are downloaded. A commit among 20,000
environments costs a few times one among 10, not a hundred times (benchmarks/README.md).
Credentials never reach argv, a URL git stores, or a message: they are handed to git through
GIT_ASKPASS.
"""

from __future__ import annotations

import os
import random
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from modelci.errors import ModelciError, redact, redact_url
from modelci.systems.gittrees import TreeEditor

Reader = Callable[[str], bytes | None]

NETWORK_TIMEOUT_SECONDS = 300
DEFAULT_PUSH_BUDGET_SECONDS = 600.0
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 8.0
DEFAULT_TOKEN_USERNAME = "oauth2"  # GitLab accepts any username with a personal/project token

_RACE_REASONS = ("fetch first", "non-fast-forward", "failed to update ref", "cannot lock ref")
_MISSING_REF = "couldn't find remote ref"
_ASKPASS_SCRIPT = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$MODELCI_GIT_USERNAME" ;;
  *) printf '%s\\n' "$MODELCI_GIT_PASSWORD" ;;
esac
"""


@dataclass(frozen=True)
class Changes:
    """What one commit does: removes are applied first, then writes (so a directory can be
    replaced). Paths are repo-relative; a remove may name a directory (removed recursively)."""

    writes: Mapping[str, bytes] = field(default_factory=dict)
    removes: Sequence[str] = ()


@dataclass(frozen=True)
class CommitResult:
    sha: str | None  # None when the tree was already as requested (idempotent re-run)
    attempts: int


@dataclass(frozen=True)
class ObjectCounts:
    """Objects held by an operation's temporary clone: what the operation fetched and wrote."""

    commits: int
    trees: int
    blobs: int


def validate_path(path: str, *, directory: bool = False, allow_root: bool = False) -> str:
    """A repo-relative POSIX path; ValueError when it could escape the repo or touch git's own
    files. A `directory` may end with one '/', which is dropped; `allow_root` accepts ""."""
    if not isinstance(path, str):
        raise ValueError(f"repo path must be a string, got {type(path).__name__}")
    trimmed = path[:-1] if directory and path.endswith("/") else path
    if trimmed == "" and allow_root:
        return ""
    problem = _path_problem(trimmed)
    if problem:
        raise ValueError(f"invalid repo path {path!r}: {problem}")
    return trimmed


def _path_problem(path: str) -> str | None:
    if not path:
        return "empty; give a path relative to the repo root"
    if path.startswith("/"):
        return "absolute; give a path relative to the repo root"
    if "\\" in path or any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        return "contains a backslash or a control character"
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            return "has an empty, '.' or '..' segment"
        if segment.casefold() == ".git":
            return "has a '.git' segment"
    return None


def _is_within(path: str, top: str) -> bool:
    return top == "" or path == top or path.startswith(top + "/")


@dataclass(frozen=True)
class _Credentials:
    username: str
    password: str


class RemoteRepo:
    """One branch of one remote repository."""

    def __init__(
        self,
        url: str,
        branch: str,
        *,
        token_env: str | None = None,
        author: tuple[str, str] = ("modelci", "modelci@noreply"),
        push_budget_seconds: float = DEFAULT_PUSH_BUDGET_SECONDS,
    ) -> None:
        if not branch or branch.startswith("-") or not _is_valid_branch(branch):
            raise ValueError(f"invalid branch name {branch!r}")
        self.branch = branch
        self.author = author
        self.push_budget_seconds = push_budget_seconds
        self.display_url = redact_url(url)
        self._url, self._credentials = _split_credentials(url, token_env)
        # What the last operation's temporary clone held (i.e. fetched plus wrote): lets tests
        # and logs show that an operation fetched only the tip's trees and the blobs it read.
        self.last_local_objects: ObjectCounts | None = None

    def __repr__(self) -> str:
        return f"RemoteRepo({self.display_url!r}, {self.branch!r})"

    def read(self, path: str) -> bytes | None:
        """Content of a file at the branch tip; None if it (or the branch) does not exist."""
        path = validate_path(path)
        with self._session() as session:
            tip = session.fetch_tip(_depth(path) - 1)
            return session.read(tip.commit, path) if tip else None

    def list_dir(self, path: str) -> list[str]:
        """Names directly under a directory at the branch tip ("" is the root); [] if absent."""
        path = validate_path(path, directory=True, allow_root=True)
        with self._session() as session:
            tip = session.fetch_tip(_depth(path) + 1)
            return session.list_dir(tip.commit, path) if tip else []

    def list_files(self, top: str) -> list[str]:
        """Every file path under the directory `top` at the branch tip, from one fetch of all
        its trees and no blob: one read of the repo's tree, whatever the number of files.
        [] when `top` or the branch is absent."""
        top = validate_path(top, directory=True)
        with self._session() as session:
            tip = session.fetch_tip(tree_depth=0, all_trees=True)
            return session.list_files(tip.commit, top) if tip else []

    def apply(
        self,
        scope: Sequence[str],
        build: Callable[[Reader], Changes],
        message: str,
        *,
        budget_seconds: float | None = None,
    ) -> CommitResult:
        """Make one commit on the branch with what `build` returns, and push it.

        `build` receives a reader of the current tip and is called again whenever another
        writer pushed first, so a change to a path someone else changed meanwhile is re-read
        and re-applied, never written over blindly. Every path it writes or removes must lie
        within `scope`. If the tree would not change, nothing is committed and `sha` is None.
        Retries until `budget_seconds` (default: `push_budget_seconds`) have passed. Never
        force-pushes.
        """
        scope = [validate_path(item, directory=True) for item in scope]
        if not scope:
            raise ValueError("apply needs a non-empty scope (the paths the commit may touch)")
        if not message.strip():
            raise ValueError("apply needs a commit message")
        budget = self.push_budget_seconds if budget_seconds is None else budget_seconds
        if budget < 0:
            raise ValueError("the push budget must be at least 0 seconds")
        deadline = time.monotonic() + budget
        attempt = 0
        tree_depth = min(_depth(top) for top in scope)  # the trees above the scope, no deeper
        with self._session() as session:
            while True:
                attempt += 1
                started = time.monotonic()
                tip = session.fetch_tip(tree_depth)
                head = tip.commit if tip else None
                changes = build(lambda path, head=head: session.read(head, validate_path(path)))
                removes, writes = _checked_changes(changes, scope)
                commit = session.commit(tip, removes, writes, message)
                if commit is None:
                    return CommitResult(sha=None, attempts=attempt)
                if session.push(commit):
                    return CommitResult(sha=commit, attempts=attempt)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                time.sleep(min(backoff_seconds(attempt, time.monotonic() - started), remaining))
        raise ModelciError(
            f"could not push to {self.display_url} (branch {self.branch}): another writer "
            f"pushed first on each of {attempt} attempts in {budget:g} s. Re-run the job, or "
            "give writes more time with MODELCI_PUSH_BUDGET_SECONDS."
        )

    @contextmanager
    def _session(self) -> Iterator[_Session]:
        with tempfile.TemporaryDirectory(prefix="modelci-git-") as tmp:
            session = _Session(self, Path(tmp))
            try:
                yield session
            finally:
                self.last_local_objects = session.object_counts()

    def _redact(self, text: str) -> str:
        """`text` without this remote's password or token, wherever it appears. The user name
        is no secret and stays: masking `git` would turn `dags.git` into `dags.***`."""
        return redact(text, [self._credentials.password] if self._credentials else [])


def backoff_seconds(attempt: int, attempt_seconds: float = 0.0) -> float:
    """Full jitter: a random wait up to an exponentially growing cap, so that writers that
    lost the same race spread out instead of colliding again. The cap grows from the time an
    attempt took: when attempts are slow (a busy remote or runner), writers spread wider."""
    step = max(BACKOFF_BASE_SECONDS, attempt_seconds)
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, step * 2**attempt))


@dataclass(frozen=True)
class _Tip:
    commit: str
    tree: str


def _depth(path: str) -> int:
    """Path components: 0 for the root."""
    return len(path.split("/")) if path else 0


def _config_env(*settings: tuple[str, str]) -> dict[str, str]:
    """git configuration given through the environment: no `git config` process each."""
    env = {"GIT_CONFIG_COUNT": str(len(settings))}
    for number, (key, value) in enumerate(settings):
        env.update({f"GIT_CONFIG_KEY_{number}": key, f"GIT_CONFIG_VALUE_{number}": value})
    return env


def _is_valid_branch(branch: str) -> bool:
    bad = (" ", "~", "^", ":", "?", "*", "[", "\\", "..", "@{", "//")
    return not any(token in branch for token in bad) and not branch.endswith((".lock", "/", "."))


def _split_credentials(url: str, token_env: str | None) -> tuple[str, _Credentials | None]:
    """The URL without user-info, and the credentials git should get through GIT_ASKPASS."""
    username = password = ""
    if "://" in url:
        parts = urlsplit(url)
        if "@" in parts.netloc:
            userinfo, _, hostport = parts.netloc.rpartition("@")
            user, _, pw = userinfo.partition(":")
            username, password = unquote(user), unquote(pw)
            url = urlunsplit(parts._replace(netloc=hostport))
    if token_env:
        token = os.environ.get(token_env, "")
        if not token:
            raise ModelciError(
                f"environment variable {token_env} is empty or not set; it must hold an access "
                f"token for {redact_url(url)} (set it as a masked CI/CD variable)"
            )
        password = token
        username = username or DEFAULT_TOKEN_USERNAME
    if not (username or password):
        return url, None
    return url, _Credentials(username, password)


def _checked_changes(changes: Changes, scope: Sequence[str]) -> tuple[list[str], dict[str, bytes]]:
    removes = [validate_path(path, directory=True) for path in changes.removes]
    writes: dict[str, bytes] = {}
    for path, content in changes.writes.items():
        if not isinstance(content, bytes):
            raise TypeError(f"content for {path!r} must be bytes, got {type(content).__name__}")
        writes[validate_path(path)] = content
    for path in [*removes, *writes]:
        if not any(_is_within(path, top) for top in scope):
            raise ValueError(f"path {path!r} is outside the scope of this commit: {list(scope)}")
    return removes, writes


class _GitProcess:
    """git in a temporary partial clone (no working tree files) of one branch: the connection.

    The clone's environment carries the remote's URL, the author and, through GIT_ASKPASS,
    the credentials; a failure becomes a ModelciError without the password or token."""

    def __init__(self, remote: RemoteRepo, workdir: Path) -> None:
        self._remote = remote
        self._workdir = workdir
        worktree = workdir / "checkout"  # stays empty: nothing is ever checked out
        self._git_dir = worktree / ".git"
        name, email = remote.author
        env = {
            "GIT_DIR": str(self._git_dir),
            "GIT_WORK_TREE": str(worktree),
            "GIT_INDEX_FILE": str(self._git_dir / "index"),
            "GIT_LITERAL_PATHSPECS": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_OPTIONAL_LOCKS": "0",
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
            "GIT_HTTP_LOW_SPEED_LIMIT": "1000",
            "GIT_HTTP_LOW_SPEED_TIME": "60",
            **_config_env(
                ("remote.origin.url", remote._url),
                ("credential.helper", ""),  # never store or look up credentials elsewhere
                ("gc.auto", "0"),
                ("maintenance.auto", "false"),
            ),
        }
        credentials = remote._credentials
        if credentials:
            env.update(
                GIT_ASKPASS=str(self._write_askpass()),
                MODELCI_GIT_USERNAME=credentials.username,
                MODELCI_GIT_PASSWORD=credentials.password,
            )
        worktree.mkdir()
        import git  # GitPython; only here: it takes a twentieth of a second to import

        self._git = git.Git(str(worktree))
        self._git.update_environment(**env)
        self.run("init", "-q", str(worktree))

    def _write_askpass(self) -> Path:
        script = self._workdir / "askpass.sh"
        script.write_text(_ASKPASS_SCRIPT)
        script.chmod(stat.S_IRWXU)
        return script

    def object_counts(self) -> ObjectCounts | None:
        if not (self._git_dir / "objects").exists():
            return None
        status, out, _ = self.execute(
            "cat-file", "--batch-all-objects", "--batch-check=%(objecttype)"
        )
        kinds = out.split() if status == 0 else []
        return ObjectCounts(kinds.count("commit"), kinds.count("tree"), kinds.count("blob"))

    def run(self, *args: str, network: bool = False, stdin: Path | None = None) -> str:
        status, stdout, stderr = self.execute(*args, network=network, stdin=stdin)
        if status != 0:
            raise self.error(args[0], stderr)
        return stdout

    def run_binary(self, *args: str, stdin: Path | None = None) -> bytes:
        """Raw stdout; may fetch a missing object from the remote (partial clone)."""
        status, stdout, stderr = self.execute(*args, binary=True, network=True, stdin=stdin)
        if status != 0:
            raise self.error(args[0], stderr)
        return stdout

    def execute(
        self, *args: str, binary: bool = False, network: bool = False, stdin: Path | None = None
    ) -> tuple[int, Any, str]:
        with stdin.open("rb") if stdin else nullcontext() as stream:
            status, stdout, stderr = self._git.execute(
                ["git", *args],
                istream=stream,
                with_extended_output=True,
                with_exceptions=False,
                stdout_as_string=not binary,
                strip_newline_in_stdout=False,
                kill_after_timeout=NETWORK_TIMEOUT_SECONDS if network else None,
            )
        if isinstance(stderr, bytes):
            stderr = stderr.decode("utf-8", "replace")
        return status, stdout, stderr

    def error(self, command: str, output: str) -> ModelciError:
        detail = self._remote._redact(output.strip()) or "no output"
        advice = (
            "The branch is protected and this token's user may not push it (stands are "
            "written only with the protected stand tokens: docs/platform/setup.md, 'Stands and "
            "credentials')."
            if "protected branch" in detail
            else "Check the repository URL, that the access token is valid and may read and "
            "write this repository."
        )
        return ModelciError(
            f"git {command} failed for {self._remote.display_url} (branch "
            f"{self._remote.branch}): {detail}. {advice}"
        )


class _Session(_GitProcess):
    """What RemoteRepo does on its branch: fetch the tip, read it, commit on it, push. The
    trees of a commit are made by a TreeEditor (gittrees) that runs its git here."""

    def __init__(self, remote: RemoteRepo, workdir: Path) -> None:
        super().__init__(remote, workdir)
        self._trees = TreeEditor(self, workdir, f"{remote.display_url} (branch {remote.branch})")

    def fetch_tip(self, tree_depth: int, *, all_trees: bool = False) -> _Tip | None:
        """Fetch the branch tip: one commit and its trees less than `tree_depth` deep (the root
        is 0), or with `all_trees` every tree, no blobs below; None if the branch is absent."""
        ref = f"refs/heads/{self._remote.branch}"
        local = f"refs/remotes/origin/{self._remote.branch}"
        wanted = "blob:none" if all_trees else f"tree:{max(tree_depth, 1)}"
        status, _, stderr = self.execute(
            "fetch", "-q", "--no-tags", "--depth=1", f"--filter={wanted}",
            "origin", f"+{ref}:{local}",
            network=True,
        )  # fmt: skip
        if status != 0:
            if _MISSING_REF in stderr:
                return None
            raise self.error("fetch", stderr)
        commit, tree = self.run("rev-parse", local, f"{local}^{{tree}}").split()
        return _Tip(commit, tree)

    def _entry(self, tip: str, path: str) -> tuple[str, str] | None:
        """(type, object id) of `path` in `tip`, without fetching its content."""
        for record in self.run("ls-tree", "-z", tip, "--", path).split("\0"):
            info, _, name = record.partition("\t")
            if name == path:
                _mode, kind, oid = info.split(" ")
                return kind, oid
        return None

    def read(self, tip: str | None, path: str) -> bytes | None:
        entry = self._entry(tip, path) if tip else None
        if entry is None:
            return None
        kind, oid = entry
        if kind != "blob":
            raise ValueError(f"{path!r} is a {kind}, not a file, in {self._remote.display_url}")
        return self.run_binary("cat-file", "blob", oid)  # fetches just this blob

    def list_dir(self, tip: str, path: str) -> list[str]:
        if path:
            entry = self._entry(tip, path)
            if entry is None or entry[0] != "tree":
                return []
            tree = entry[1]
        else:
            tree = f"{tip}^{{tree}}"
        names = self.run("ls-tree", "-z", "--name-only", tree).split("\0")
        return sorted(name for name in names if name)

    def list_files(self, tip: str, top: str) -> list[str]:
        """The file paths under `top`, from trees fetched already (ls-tree reads no blob)."""
        listed = self.run("ls-tree", "-r", "-z", "--name-only", tip, "--", top).split("\0")
        return sorted(path for path in listed if path)

    def commit(
        self, tip: _Tip | None, removes: list[str], writes: dict[str, bytes], message: str
    ) -> str | None:
        """A commit on `tip` with the changes, or None if the tree would not change."""
        if not tip and not writes:
            return None
        edited = self._trees.edit(tip.tree if tip else None, removes, writes)
        if tip and edited.oid == tip.tree:
            return None
        self._trees.store(edited)
        message_file = self._workdir / "message"
        message_file.write_text(message if message.endswith("\n") else message + "\n")
        parents = ["-p", tip.commit] if tip else []
        return self.run("commit-tree", edited.oid, *parents, "-F", str(message_file)).strip()

    def push(self, commit: str) -> bool:
        """True if the branch now points at `commit`; False if another writer pushed first."""
        status, stdout, stderr = self.execute(
            "push", "--porcelain", "--no-thin", "origin",
            f"{commit}:refs/heads/{self._remote.branch}",
            network=True,
        )  # fmt: skip
        if status == 0:
            return True
        rejected = [line for line in stdout.splitlines() if line.startswith("!")]
        if rejected and all(any(r in line for r in _RACE_REASONS) for line in rejected):
            return False
        raise self.error("push", stderr + stdout)
