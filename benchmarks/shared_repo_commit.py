"""Does a deploy job's cost grow with the number of environments already in the shared repo?

For N environments already present in a local bare repo laid out like the GitOps and DAG bundle
repos (`environments/<project_slug>/<env>/<model>/{values.yaml,config.json}` and
`dags/<project_slug>/<env>/<model>__inference.py`, all in one commit written by
`git fast-import`), this times what `RemoteRepo.apply` does for one more environment:

- deploy: a new environment's three files in one commit (the values file is read first and
  updated, as `deploy-online` does),
- re-run: the same deploy again, which must not commit,
- stop: removing the environment's two directories in one commit.

Each figure is the median of a few repetitions (each on a fresh environment name, stopped at
the end, so the repo holds N environments again), with the objects the operation's temporary
clone held afterwards (`RemoteRepo.last_local_objects`: fetched plus written). The bare repo
allows blob filters (`uploadpack.allowFilter`, as GitLab does); one line repeats the deploy
without it. Two small extra lines time `names_for` and `render_dag`.

Run: .venv/bin/python benchmarks/shared_repo_commit.py   (see benchmarks/README.md)
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from modelci.config.mlops import load_config
from modelci.config.naming import Names, environment_dirs, names_for
from modelci.config.settings import Pipeline, Settings
from modelci.config.types import Config, Dag, Model
from modelci.render.dags import render_dag
from modelci.render.values import app_config_text, build_values, update_values_text, values_header
from modelci.systems.gitrepo import Changes, CommitResult, ObjectCounts, Reader, RemoteRepo

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = ROOT / "examples" / "churn" / "mlops.yaml"
SIZES = (10, 100, 1000, 5000)
REPETITIONS = {10: 7, 100: 7, 1000: 7, 5000: 5}
UNFILTERED_REPETITIONS = 3
ENVIRONMENTS_PER_PROJECT = 20
PROJECT = "ml/churn"  # the benchmarked environments belong to the first seeded project
RUN_ID = "0123456789abcdef0123456789abcdef"
STORAGE_URI = "s3://mlops/mlflow-artifacts/1/models/m-0123/artifacts"
CODE_URI = "s3://mlops/scratch/code/0123456789abcdef.tar.gz"
SETTINGS = Settings.from_env(
    {"MODELCI_RUNTIME_IMAGE": "registry.example.com/ml/runtime:1", "MLFLOW_TRACKING_URI": ""}
)


@dataclass(frozen=True)
class Sample:
    seconds: float
    cpu_seconds: float  # this process and every git process it ran (server side included)
    objects: ObjectCounts | None
    committed: bool


@dataclass(frozen=True)
class Workload:
    """What one environment of the example model writes: the content a deploy job produces."""

    model: Model
    dag: Dag
    pipeline: Pipeline

    def names(self, branch: str, project: str = PROJECT) -> Names:
        return names_for(project, branch, self.model.name)

    def pipeline_for(self, names: Names) -> Pipeline:
        return replace(self.pipeline, project=names.project, branch=names.branch)

    def values(self, names: Names) -> dict:
        return build_values(
            self.model,
            names,
            SETTINGS,
            storage_uri=STORAGE_URI,
            run_id=RUN_ID,
            model_version="1",
            pipeline=self.pipeline_for(names),
        )

    def dag_source(self, names: Names) -> str:
        return render_dag(
            names=names,
            model=self.model,
            dag=self.dag,
            pipeline=self.pipeline_for(names),
            image=SETTINGS.runtime_image,
            model_uri=STORAGE_URI,
            run_id=RUN_ID,
            code_uri=CODE_URI,
            s3_secret=SETTINGS.cluster_s3_secret,
            tracking_uri="http://mlflow.example.com",
        )

    def seed_files(self, names: Names) -> dict[str, bytes]:
        """One existing environment's files. JSON is YAML; the seed skips the slow YAML writer."""
        return {
            names.values_path: json.dumps(self.values(names), indent=2).encode(),
            names.app_config_path: app_config_text(names).encode(),
            names.dag_path(self.dag.kind): self.dag_source(names).encode(),
        }


def load_workload() -> Workload:
    config: Config = load_config(EXAMPLE_CONFIG)
    model = config.models[0]
    dag = next(d for d in model.batch.dags if d.kind == "inference")
    pipeline = Pipeline(
        project=PROJECT,
        project_url="https://gitlab.example.com/ml/churn",
        branch="main",
        default_branch="main",
        commit="0123456789abcdef0123456789abcdef01234567",
        pipeline_id="42",
        pipeline_url="https://gitlab.example.com/ml/churn/-/pipelines/42",
        job_url="https://gitlab.example.com/ml/churn/-/jobs/7",
        user="bench",
    )
    return Workload(model, dag, pipeline)


# --- the seeded repository -------------------------------------------------------------------


def seed_names(workload: Workload, count: int) -> Iterator[Names]:
    """`count` feature environments spread over projects of ENVIRONMENTS_PER_PROJECT each."""
    for index in range(count):
        group = index // ENVIRONMENTS_PER_PROJECT
        project = PROJECT if group == 0 else f"team-{group}/service"
        yield workload.names(f"feature/seed-{index}", project)


def _fast_import_stream(files: dict[str, bytes]) -> bytes:
    message = b"seed environments\n"
    parts = [
        b"commit refs/heads/main\n",
        b"committer seed <seed@bench.invalid> 1700000000 +0000\n",
        b"data %d\n%s" % (len(message), message),
    ]
    for path, content in sorted(files.items()):
        parts.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(content), content))
    return b"".join(parts)


def git(bare: Path, *args: str, stdin: bytes | None = None) -> str:
    result = subprocess.run(
        ["git", f"--git-dir={bare}", *args], input=stdin, capture_output=True, check=True
    )
    return result.stdout.decode()


def build_repo(bare: Path, workload: Workload, count: int) -> None:
    """A bare repo whose `main` holds `count` environments in a single commit."""
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    files: dict[str, bytes] = {"README.md": b"# shared repo (benchmark)\n"}
    for names in seed_names(workload, count):
        files.update(workload.seed_files(names))
    git(bare, "fast-import", "--quiet", stdin=_fast_import_stream(files))
    git(bare, "config", "uploadpack.allowFilter", "true")


def tree_count(bare: Path) -> int:
    """Trees of the tip, the root included: what a blob-less depth-1 fetch must transfer."""
    entries = git(bare, "ls-tree", "-r", "-t", "-z", "main").split("\0")
    return 1 + sum(1 for entry in entries if entry.split(" ")[1:2] == ["tree"])


# --- the operations --------------------------------------------------------------------------


def deploy(repo: RemoteRepo, workload: Workload, names: Names) -> CommitResult:
    """What deploy-online and deploy-batch write for one environment, as one commit."""
    values = workload.values(names)
    header = values_header(workload.pipeline_for(names), names)
    dag_file = workload.dag_source(names).encode()
    dag_dir = environment_dirs(names.project, names.branch).dag_dir

    def build(read: Reader) -> Changes:
        existing = read(names.values_path)
        text = update_values_text(existing.decode() if existing else None, values, header)
        return Changes(
            writes={
                names.values_path: text.encode(),
                names.app_config_path: app_config_text(names).encode(),
                names.dag_path(workload.dag.kind): dag_file,
            }
        )

    return repo.apply([names.gitops_dir, dag_dir], build, f"bench: deploy {names.environment}")


def stop(repo: RemoteRepo, names: Names) -> CommitResult:
    dirs = environment_dirs(names.project, names.branch)
    removes = [dirs.gitops_dir, dirs.dag_dir]
    message = f"bench: stop {dirs.environment}"
    return repo.apply(removes, lambda _read: Changes(removes=removes), message)


def cpu_seconds() -> float:
    """User + system time of this process and of its reaped descendants (git, upload-pack...):
    it leaves out time spent waiting for a core on a busy machine."""
    usages = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(usage.ru_utime + usage.ru_stime for usage in usages)


def timed(repo: RemoteRepo, operation: Callable[[], CommitResult]) -> Sample:
    start, start_cpu = time.perf_counter(), cpu_seconds()
    result = operation()
    return Sample(
        seconds=time.perf_counter() - start,
        cpu_seconds=cpu_seconds() - start_cpu,
        objects=repo.last_local_objects,
        committed=result.sha is not None,
    )


def measure(
    bare: Path, workload: Workload, repetitions: int, label: str
) -> dict[str, list[Sample]]:
    repo = RemoteRepo(bare.as_uri(), "main")
    samples: dict[str, list[Sample]] = {"deploy": [], "re-run": [], "stop": []}
    warm_up = workload.names(f"feature/warm-up-{label}")  # fills the OS cache; not timed
    deploy(repo, workload, warm_up)
    stop(repo, warm_up)
    for repetition in range(repetitions):
        names = workload.names(f"feature/bench-{label}-{repetition}")
        samples["deploy"].append(timed(repo, lambda n=names: deploy(repo, workload, n)))
        samples["re-run"].append(timed(repo, lambda n=names: deploy(repo, workload, n)))
        samples["stop"].append(timed(repo, lambda n=names: stop(repo, n)))
    return samples


# --- printing --------------------------------------------------------------------------------

HEADER = (
    f"{'envs':>5}  {'repo trees':>10}  {'filter':<6}  {'operation':<9}  {'median ms':>9}  "
    f"{'min-max ms':>13}  {'cpu ms':>6}  {'commits':>7}  {'trees':>6}  {'blobs':>6}  commit"
)


def row(count: int, trees: int, filtered: bool, operation: str, samples: list[Sample]) -> str:
    millis = [s.seconds * 1000 for s in samples]
    cpu = statistics.median(s.cpu_seconds * 1000 for s in samples)
    objects = samples[-1].objects
    c, t, b = (objects.commits, objects.trees, objects.blobs) if objects else ("-", "-", "-")
    committed = {s.committed for s in samples}
    commit = "yes" if committed == {True} else "no" if committed == {False} else "mixed"
    spread = f"{min(millis):.0f}-{max(millis):.0f}"
    return (
        f"{count:>5}  {trees:>10}  {'on' if filtered else 'OFF':<6}  {operation:<9}  "
        f"{statistics.median(millis):>9.0f}  {spread:>13}  {cpu:>6.0f}  "
        f"{c:>7}  {t:>6}  {b:>6}  {commit}"
    )


def per_call_micros(function: Callable[[int], object], calls: int) -> float:
    start = time.perf_counter()
    for index in range(calls):
        function(index)
    return (time.perf_counter() - start) / calls * 1e6


def small_lines(workload: Workload) -> list[str]:
    naming = per_call_micros(lambda i: names_for(PROJECT, f"feature/Branch-{i}", "churn"), 20000)
    names = workload.names("feature/render")
    workload.dag_source(names)  # template compiled once per process; not part of a render
    rendering = per_call_micros(lambda _i: workload.dag_source(names), 300)
    return [
        f"names_for: {naming:.1f} us per call ({1e6 / naming:,.0f} calls/s, 20000 distinct "
        "branches)",
        f"render_dag (example config, inference DAG): {rendering / 1000:.2f} ms per render "
        "(300 renders)",
    ]


def main() -> int:
    started = time.perf_counter()
    workload = load_workload()
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout
    print(f"modelci shared-repo benchmark, {date.today()}, {git_version.strip()}, "
          f"Python {platform.python_version()}, {platform.machine()}")  # fmt: skip
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print("objects = what the operation's temporary clone held afterwards (fetched + written)")
    print(HEADER)
    with tempfile.TemporaryDirectory(prefix="modelci-bench-") as tmp:
        for count in SIZES:
            bare = Path(tmp) / f"shared-{count}.git"
            build_repo(bare, workload, count)
            trees = tree_count(bare)
            samples = measure(bare, workload, REPETITIONS[count], f"n{count}")
            for operation, values in samples.items():
                print(row(count, trees, True, operation, values))
            if count == SIZES[-1]:
                git(bare, "config", "uploadpack.allowFilter", "false")
                unfiltered = measure(bare, workload, UNFILTERED_REPETITIONS, "nofilter")
                print(row(count, trees, False, "deploy", unfiltered["deploy"]))
            sys.stdout.flush()
    for line in small_lines(workload):
        print(line)
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
