"""How long does the scheduled clean-up take over many stale environments?

Builds local bare DAG bundle and GitOps repos holding N feature environments of one project
(`git fast-import`, one commit), of which all but `--live` belong to branches that are gone,
starts the fake GitLab API (tests/integration/fake_gitlab.py; GitLab cannot run here)
listing the live branches, and times a real `modelci cleanup` process (S3 scratch left out).
The floor is the same command over the same repos when every branch is still live (nothing to
remove). The note says how many environments were removed and the commits made per repo (one
each, whatever N); the peak memory of the command is a figure of its own.

Run: .venv/bin/python benchmarks/cleanup.py [--quick]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import git
from common import Figure, Finished, print_table, run_process

from modelci.config.naming import environment_dirs
from tests.integration.fake_gitlab import running

NAME = "cleanup"
PROJECT = "ml/churn"
TOKEN = "glpat-benchmark"


def build_repo(path: Path, tops: list[str]) -> Path:
    """A bare repo whose main holds one small file under each of `tops`, in one commit."""
    git.Repo.init(path, bare=True, initial_branch="main")
    lines = ["commit refs/heads/main", "committer bench <b@example.com> 0 +0000", "data 5", "seed"]
    for top in tops:
        content = f"{top}\n".encode()
        lines += [f"M 100644 inline {top}/churn/file", f"data {len(content)}"]
        lines.append(content.decode().rstrip("\n"))
    stream = ("\n".join(lines) + "\n").encode()
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input=stream, check=True)
    return path


def run_once(base: Path, environments: int, live: int) -> tuple[Finished, int, int, int]:
    branches = [f"feature/bench-{number}" for number in range(environments)]
    dirs = [environment_dirs(PROJECT, branch) for branch in branches]
    dags = build_repo(base / "dags.git", [d.dag_dir for d in dirs])
    gitops = build_repo(base / "gitops.git", [d.gitops_dir for d in dirs])
    with running(TOKEN) as gitlab:
        gitlab.branches = ["main", *branches[:live]]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CI_", "MODELCI_"))}
        env.update(
            CI_PROJECT_PATH=PROJECT,
            CI_COMMIT_REF_NAME="main",
            CI_DEFAULT_BRANCH="main",
            CI_COMMIT_SHA="0" * 40,
            CI_SERVER_URL=gitlab.url,
            MODELCI_GITLAB_TOKEN=TOKEN,
            MODELCI_DAG_REPO_URL=dags.as_uri(),
            MODELCI_GITOPS_REPO_URL=gitops.as_uri(),
        )
        finished = run_process([sys.executable, "-m", "modelci", "cleanup"], base, env)
    removed = finished.output.count("  removing ")
    commits = [int(git.Repo(r).git.rev_list("--count", "main")) - 1 for r in (dags, gitops)]
    return finished, removed, *commits


def figures(quick: bool = False) -> list[Figure]:
    environments, live, repeat = (12, 2, 1) if quick else (1000, 10, 3)
    stale, idle = [], []
    for number in range(repeat):
        with tempfile.TemporaryDirectory(prefix=f"modelci-cleanup-{number}-") as tmp:
            finished, removed, dag_commits, gitops_commits = run_once(Path(tmp), environments, live)
            stale.append(finished)
        with tempfile.TemporaryDirectory(prefix=f"modelci-cleanup-idle-{number}-") as tmp:
            idle.append(run_once(Path(tmp), environments, environments)[0])
    note = (
        f"removed {removed}, commits DAG repo {dag_commits}, GitOps repo {gitops_commits}; "
        "floor: nothing stale"
    )
    label = f"{environments:,} envs, {environments - live:,} stale"
    return [
        Figure(NAME, label, "s", [f.seconds for f in stale], [f.seconds for f in idle], note),
        Figure(NAME, f"peak memory, {label}", "MB", [f.peak_mb for f in stale],
               [f.peak_mb for f in idle]),
    ]  # fmt: skip


if __name__ == "__main__":
    print_table(figures(quick="--quick" in sys.argv))
