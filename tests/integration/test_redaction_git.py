"""Real git over smart HTTP (`tests/harness/githttp.py`): the messages of a failed fetch or push
hide the token wherever git or the remote prints it, and keep the rest readable, `git` in a
user name or a repository name included."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelci.errors import ModelciError
from modelci.systems.gitrepo import Changes, RemoteRepo
from tests.harness.githttp import serving
from tests.harness.gitremotes import make_bare_repo

TOKEN = "glpat-redaction-test-token"
# The remote answers a push with the token in its message, as a misconfigured hook might.
ECHOING_HOOK = f"""#!/bin/sh
echo "rejected: the token {TOKEN} may not push here" >&2
exit 1
"""


def failure(repo: RemoteRepo, action: str) -> str:
    with pytest.raises(ModelciError) as error:
        if action == "read":
            repo.read("README.md")
        else:
            repo.apply(["envs"], lambda _read: Changes(writes={"envs/a": b"x\n"}), "write")
    return str(error.value)


def test_git_failures_hide_the_token_and_keep_git_in_names(tmp_path: Path) -> None:
    root = tmp_path / "root"
    dags = make_bare_repo(root / "dags.git")
    with serving(root, {TOKEN: "git"}) as server:
        url = server.repo_url(dags)
        authority = url.removeprefix("http://")

        elsewhere = authority.replace("/dags.git", "/nothere.git")
        missing = failure(RemoteRepo(f"http://git:{TOKEN}@{elsewhere}", "main"), "read")
        assert f"repository 'http://{elsewhere}/' not found" in missing
        assert TOKEN not in missing

        wrong = failure(RemoteRepo(f"http://git:{TOKEN}-old@{authority}", "main"), "read")
        assert f"{url}/" in wrong  # git's "Authentication failed for 'http://.../dags.git/'"
        assert TOKEN not in wrong and "dags.***" not in wrong

        (dags / "hooks" / "pre-receive").write_text(ECHOING_HOOK)
        (dags / "hooks" / "pre-receive").chmod(0o755)
        echoed = failure(RemoteRepo(f"http://git:{TOKEN}@{authority}", "main"), "write")
        assert "rejected: the token *** may not push here" in echoed
        assert TOKEN not in echoed
        # the repository named in full, its user-info hidden
        assert f"for http://***@{authority} (branch main)" in echoed
