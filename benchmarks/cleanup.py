"""How long does the scheduled clean-up take over many stale environments?

Builds local bare DAG bundle and GitOps repos holding N feature environments of one project
(`git fast-import`, one commit), of which all but `--live` belong to branches that are gone,
starts the fake GitLab API (tests/integration/fake_gitlab.py; GitLab cannot run here)
listing the live branches, and times a real `modelci cleanup` process (S3 scratch left out).
Prints min/median/max over the repetitions, how many environments were removed, and the
commits made per repo (one each, whatever N).

Run: .venv/bin/python benchmarks/cleanup.py [--environments 1000] [--live 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import git

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from modelci.naming import environment_dirs  # noqa: E402
from tests.integration.fake_gitlab import running  # noqa: E402

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


def run_once(base: Path, environments: int, live: int) -> tuple[float, int, int, int]:
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
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "modelci", "cleanup"], env=env, capture_output=True, text=True
        )
        seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"cleanup failed:\n{result.stderr}")
    removed = result.stdout.count("  removing ")
    commits = [int(git.Repo(r).git.rev_list("--count", "main")) - 1 for r in (dags, gitops)]
    return seconds, removed, *commits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environments", type=int, default=1000)
    parser.add_argument("--live", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = []
    for number in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix=f"modelci-cleanup-{number}-") as tmp:
            results.append(run_once(Path(tmp), args.environments, args.live))
    times = [seconds for seconds, *_ in results]
    _, removed, dag_commits, gitops_commits = results[-1]
    print(
        f"environments {args.environments}, live {args.live}: removed {removed}, "
        f"commits DAG repo {dag_commits}, GitOps repo {gitops_commits}; "
        f"seconds min {min(times):.2f} median {statistics.median(times):.2f} "
        f"max {max(times):.2f} over {len(times)} runs"
    )


if __name__ == "__main__":
    main()
