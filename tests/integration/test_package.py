"""The package as the job image installs it, run the way a pipeline runs it.

The wheel built from this checkout is installed with its runtime dependencies from PyPI (not
the dev extra) into a fresh virtualenv, next to the uv the Dockerfile pins; then every `modelci`
subcommand runs from that virtualenv's `bin/modelci`, with a PATH that has none of this
checkout's tools, against real services: SeaweedFS S3, an MLflow server and bare git remotes,
with the CI variables GitLab and the platform team would set. A module the product imports but
does not declare fails here, not in a user's first pipeline.

No Docker engine runs here, so the image itself is not built: the Dockerfile is checked
statically instead. The files it copies must build the very wheel tested here, it must install
that wheel without the dev extra, and it must install git (the DAG bundle and GitOps commits)
and the uv that `modelci train` builds the model's environment with (the same pin the clean
virtualenv gets).

The virtualenv is cached under .cache/package-venv/ by the wheel's content (see
tests/harness/package.py): the first run installs from PyPI, a re-run reuses it.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import tomllib
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import git
import pytest
from mlflow import MlflowClient

from modelci.cli import SUBCOMMANDS
from modelci.config.macros import env_name
from modelci.config.naming import environment_dirs, names_for
from tests.harness.gitremotes import GitRemotes
from tests.harness.lifecycle import GITLAB_HOST, LocalPlatform, make_model_repo
from tests.harness.mlflowserver import MlflowServer
from tests.harness.package import (
    DOCKERFILE,
    build_wheel,
    clean_env,
    copy_repository,
    dockerfile_uv_version,
    installed_distributions,
    normalize,
    product_venv,
    wheel_digest,
)
from tests.harness.s3server import S3Server
from tests.harness.tools import ROOT
from tests.integration.fake_gitlab import running

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = "ml/churn"
MODEL = "churn"
COMMAND_TIMEOUT_SECONDS = 900  # train builds the model's environment on its first run


def requirement_name(requirement: str) -> str:
    return normalize(re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0])


RUNTIME = {requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
DEV_ONLY = {
    requirement_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["dev"]
} - RUNTIME


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's files as a clone has them, frozen for the module: the wheel and the
    Dockerfile's build context both come from here, whatever changes in the work tree."""
    return copy_repository(tmp_path_factory.mktemp("checkout") / "modelci")


@pytest.fixture(scope="module")
def wheel(checkout: Path) -> Path:
    return build_wheel(checkout, checkout.parent / "wheel")


@pytest.fixture(scope="module")
def product(checkout: Path, wheel: Path) -> Path:
    """The clean virtualenv: this wheel, its runtime dependencies and uv, nothing else."""
    return product_venv(wheel, checkout / DOCKERFILE.name)


def test_wheel_carries_chart_and_templates(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "modelci/cli.py",
        "modelci/commands/train.py",
        "modelci/render/templates/dag.py.j2",
        "modelci/render/dags.py",
        "modelci/systems/s3.py",
        "modelci/lifecycle/stands.py",
        "modelci/monitoring/drift.py",
        "modelci/review/note.py",
        "modelci/chart/Chart.yaml",
        "modelci/chart/values.schema.json",
        "modelci/config/mlops.schema.json",
        "modelci/chart/templates/inferenceservice.yaml",
    } <= names


def test_clean_install_has_the_runtime_dependencies_only(product: Path) -> None:
    installed = installed_distributions(product)

    assert "modelci" in installed
    assert not RUNTIME - set(installed), f"missing: {sorted(RUNTIME - set(installed))}"
    assert {"jsonschema", "mlflow-skinny", "uv"} <= set(installed)
    # The dev extra (MLflow's server, pytest, the Helm SDK, ...) is not in the image.
    assert "mlflow" in DEV_ONLY and "pytest" in DEV_ONLY
    assert not DEV_ONLY & set(installed), f"dev-only: {sorted(DEV_ONLY & set(installed))}"
    env = clean_env(product)
    check = subprocess.run(
        [str(product / "bin" / "python"), "-m", "pip", "check"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    where = subprocess.run(
        [
            str(product / "bin" / "python"),
            "-c",
            "import modelci.render.values as v; print(v.__file__); print(v.chart_dir())",
        ],
        cwd=product,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(p).is_relative_to(product) for p in where), where


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").iterdir()))
def test_every_example_validates_and_renders_from_the_clean_install(
    product: Path, tmp_path: Path, example: str
) -> None:
    """What a data scientist runs on a laptop with only the package: no CI, MLflow or S3."""
    repo = tmp_path / example
    shutil.copytree(ROOT / "examples" / example, repo, ignore=shutil.ignore_patterns("mlruns"))
    for command in ("validate", "render"):
        result = subprocess.run(
            [str(product / "bin" / "modelci"), command, "--project", "ml/x", "--branch", "f/x"]
            if command == "render"
            else [str(product / "bin" / "modelci"), command],
            cwd=repo,
            env=clean_env(product),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "==> dags/ml-x-" in result.stdout


def test_dockerfile_installs_this_wheel_with_git_and_uv(
    checkout: Path, wheel: Path, product: Path, tmp_path: Path
) -> None:
    """Static, as no Docker engine runs here: the image's base Python satisfies
    requires-python, it installs git and the uv the clean virtualenv got, and the files it
    copies build the same wheel as this checkout, installed with its dependencies."""
    text = (checkout / DOCKERFILE.name).read_text(encoding="utf-8")
    instructions = [
        line.strip()
        for line in text.replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    base = re.fullmatch(r"FROM python:(\d+)\.(\d+)[-\w.]*", instructions[0])
    assert base, instructions[0]
    wanted = re.fullmatch(r">=(\d+)\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert wanted
    assert tuple(map(int, base.groups())) >= tuple(map(int, wanted.groups()))
    runs = [i for i in instructions if i.startswith("RUN ")]
    assert any(re.search(r"apt-get install\b.*\sgit(\s|$)", r) for r in runs), runs
    assert installed_distributions(product)["uv"] == dockerfile_uv_version(checkout / "Dockerfile")

    context = tmp_path / "context"
    for instruction in instructions:
        if instruction.startswith("COPY "):
            *sources, destination = instruction.split()[1:]
            assert not destination.startswith("--"), instruction
            for source in sources:
                target = context / destination.lstrip("/")
                if destination.endswith("/"):
                    target = target / Path(source).name
                copy_tree(checkout / source, target)
    installs = [m for r in runs for m in re.finditer(r"\bpip install\b[^&]*?\s(/\S+)", r)]
    (install,) = installs
    assert not re.search(r"--no-deps|\[|\s-e\s", install.group(0)), install.group(0)
    rebuilt = build_wheel(context / install.group(1).lstrip("/"), tmp_path / "image-wheel")
    assert wheel_digest(rebuilt) == wheel_digest(wheel)


def copy_tree(source: Path, target: Path) -> None:
    """Copy as Docker's COPY does: a directory's contents, symlinks kept."""
    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)


@dataclass
class Modelci:
    """Runs `bin/modelci` of the clean virtualenv in a model repo, as a CI job would."""

    venv: Path
    cwd: Path
    env: dict[str, str]
    ran: list[str] = field(default_factory=list)

    def __call__(self, *args: str) -> str:
        command = [str(self.venv / "bin" / "modelci"), *args]
        result = subprocess.run(
            command,
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
        self.ran.append(args[0])
        shown = f"modelci {' '.join(args)} exited {result.returncode}\n"
        shown += f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        assert result.returncode == 0, shown
        assert "Traceback" not in result.stderr, shown
        return result.stdout


@pytest.fixture
def pipeline(
    product: Path, s3: S3Server, mlflow_server: MlflowServer, git_remotes: GitRemotes, tmp_path
) -> tuple[Modelci, LocalPlatform, str]:
    branch = f"feature/package-{secrets.token_hex(3)}"  # its own runs on the session's server
    repo = make_model_repo(tmp_path / "churn", project=PROJECT, branch=branch)
    sha = git.Repo(repo).head.commit.hexsha
    platform = LocalPlatform(s3, mlflow_server, git_remotes.dags, git_remotes.gitops)
    server = f"https://{GITLAB_HOST}"
    gitlab = {  # what GitLab sets in every job of a push pipeline
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_SERVER_URL": server,
        "CI_PROJECT_PATH": PROJECT,
        "CI_PROJECT_URL": f"{server}/{PROJECT}",
        "CI_DEFAULT_BRANCH": "main",
        "CI_COMMIT_REF_NAME": branch,
        "CI_COMMIT_BRANCH": branch,
        "CI_COMMIT_SHA": sha,
        "CI_PIPELINE_SOURCE": "push",
        "CI_PIPELINE_ID": "4242",
        "CI_PIPELINE_URL": f"{server}/{PROJECT}/-/pipelines/4242",
        "CI_JOB_URL": f"{server}/{PROJECT}/-/jobs/777",
        "GITLAB_USER_LOGIN": "data-scientist",
        "MODELCI_CONFIG": "mlops.yaml",
        "MODELCI_REQUIREMENTS": "requirements.txt",
    }
    env = clean_env(product, {**platform.ci_variables(), **gitlab})
    return Modelci(product, repo, env), platform, branch


def remote_files(bare: Path, prefix: str) -> set[str]:
    listing = git.Repo(bare).git.ls_tree("-r", "--name-only", "main", "--", prefix)
    return set(listing.split())


def scratch_keys(platform: LocalPlatform, prefix: str) -> list[str]:
    response = platform.s3.client().list_objects_v2(Bucket=platform.s3.bucket, Prefix=prefix)
    return [item["Key"] for item in response.get("Contents", [])]


def serve_once(modelci: Modelci, platform: LocalPlatform, name: str) -> None:
    """What the model server's container runs, from the clean install: MLServer from the run's
    environment archive (a cache of its own), on the model the storage initializer downloads;
    one V2 request answered."""
    from tests.e2e.test_model_environment import download
    from tests.harness.mlserver import start_model_server
    from tests.integration.test_serving import example_frame, v2_request

    resolved = json.loads((modelci.cwd / ".modelci" / MODEL / "resolve.json").read_text())
    work = modelci.cwd.parent / "model-server"
    model_dir = download(platform, resolved["storage_uri"], work / "mnt-models")
    command = [str(modelci.venv / "bin" / "modelci"), "serve", "--env"]
    command += [resolved["environment_uri"], "--name", name, "--model-dir", str(model_dir)]
    env = {k: v for k, v in modelci.env.items() if k.startswith(("AWS_", "MLFLOW_S3_"))}
    env["MODELCI_ENV_CACHE"] = str(work / "env-cache")
    server = start_model_server(work, name, lambda _attempt: list(command), env)
    try:
        answer = server.infer(v2_request(model_dir, *example_frame(model_dir)))
    finally:
        server.process.stop()
    assert answer.status == 200, answer.body
    modelci.ran.append("serve")


def test_every_subcommand_from_the_clean_install(
    pipeline: tuple[Modelci, LocalPlatform, str],
) -> None:
    modelci, platform, branch = pipeline
    names = names_for(PROJECT, branch, MODEL)
    dirs = environment_dirs(PROJECT, branch)

    usage = modelci("--help")
    assert set(SUBCOMMANDS) <= set(re.findall(r"^\s{4}([a-z-]+)\s", usage, re.MULTILINE))
    assert "valid (1 model(s): churn)" in modelci("validate", "--config", "mlops.yaml")
    derived = json.loads(modelci("names", "--model", MODEL))
    assert derived["environment"] == names.environment
    assert derived["values_path"] == names.values_path
    dry_run = modelci("render", "--config", "mlops.yaml")
    assert f"==> {names.values_path} <==" in dry_run

    # The entrypoint runs in the model's own environment (its requirements.txt, built with
    # uv): the product's virtualenv has neither scikit-learn nor MLflow's full package.
    modelci("train", "--config", "mlops.yaml")
    state = json.loads((modelci.cwd / ".modelci" / MODEL / "train.json").read_text())
    run = _get_json(f"{platform.mlflow.tracking_uri}/api/2.0/mlflow/runs/get", state["run_id"])
    assert run["info"]["status"] == "FINISHED", run["info"]
    assert "accuracy" in {metric["key"] for metric in run["data"].get("metrics", [])}

    modelci("gate", "--config", "mlops.yaml")
    assert (modelci.cwd / ".modelci" / "gate-report.xml").exists()
    resolved = modelci("resolve", "--config", "mlops.yaml")
    assert state["run_id"] in resolved
    (code_uri,) = re.findall(r"^code of \w+ at (s3://\S+)$", resolved, re.MULTILINE)
    # Resolve does the S3 writes the deploys need: the code, and the archive the pods run in.
    chosen = json.loads((modelci.cwd / ".modelci" / MODEL / "resolve.json").read_text())
    assert chosen["code_uri"] == code_uri and chosen["environment_uri"]
    scratch = modelci.env["MODELCI_SCRATCH_URI"].removeprefix(f"s3://{platform.s3.bucket}/")
    record = platform.s3.client().get_object(
        Bucket=platform.s3.bucket, Key=f"{scratch}/{dirs.s3_prefix}env-archives.txt"
    )
    assert record["Body"].read().decode().split() == [chosen["environment_uri"]]

    modelci("deploy-batch", "--config", "mlops.yaml")
    dags = remote_files(platform.dag_repo, dirs.dag_dir)
    assert dags and dags <= set(derived["dag_paths"].values()), dags

    modelci("deploy-online", "--config", "mlops.yaml")
    serve_once(modelci, platform, names.k8s_name)
    assert remote_files(platform.gitops_repo, dirs.gitops_dir) == {
        names.values_path,
        names.app_config_path,
    }

    modelci("report", "--config", "mlops.yaml")
    report = (modelci.cwd / ".modelci" / "report.env").read_text(encoding="utf-8")
    assert report.startswith("MODELCI_ENVIRONMENT_URL=http"), report

    # What a batch pod runs: the code archive deploy-batch uploaded, a trivial command in it.
    listed = modelci("pod-run", "--code", code_uri, "--", "ls")
    assert {"mlops.yaml", "train.py", "score.py"} <= set(listed.split())

    assert "candidate" in modelci("compare", "--config", "mlops.yaml").lower()

    # What the monitoring DAG's pod runs, on a day whose scores look like the training data.
    data_uri = f"{modelci.env['MODELCI_SCRATCH_URI']}/{dirs.s3_prefix}data/{MODEL}/"
    reference = MlflowClient(platform.mlflow.tracking_uri).download_artifacts(
        state["run_id"], "reference.csv", str(modelci.cwd.parent)
    )
    bucket, _, prefix = data_uri.removeprefix("s3://").partition("/")
    platform.s3.client().put_object(
        Bucket=bucket, Key=f"{prefix}scores/2026-12-01.csv", Body=Path(reference).read_bytes()
    )
    pod = {
        "MODELCI_PROJECT": PROJECT,
        "MODELCI_EXPERIMENT": names.experiment,
        "MODELCI_ENVIRONMENT": names.environment,
        "MODELCI_DATA_URI": data_uri,
        "MLFLOW_RUN_ID": state["run_id"],
        env_name("ds"): "2026-12-01",
    }
    monitor = Modelci(modelci.venv, modelci.cwd, {**modelci.env, **pod}, modelci.ran)
    assert "retraining: none (every check passed)" in monitor(
        "monitor", "--config", "mlops.yaml", "--model", MODEL
    )

    # The default branch's jobs after the merge, from the same clean install: the branch's
    # run goes to staging (and the branch's environment is stopped), then onwards.
    code_key = code_uri.removeprefix(f"s3://{platform.s3.bucket}/")
    assert scratch_keys(platform, code_key) == [code_key]
    on_main = {"CI_COMMIT_REF_NAME": "main", "CI_COMMIT_BRANCH": "main"}
    main = Modelci(modelci.venv, modelci.cwd, {**modelci.env, **on_main}, modelci.ran)
    promoted = main("promote", "--config", "mlops.yaml", "--branch", branch)
    (version,) = re.findall(r"staging now serves version (\d+)", promoted)
    main("promote", "--config", "mlops.yaml", "--stand", "production")
    main("rollback", "--config", "mlops.yaml", "--stand", "production", "--version", version)
    deployed = main("deploy-version", "--model", MODEL, "--stand", "staging", "--version", version)
    assert f"staging already serves version {version}" in deployed
    assert not remote_files(platform.dag_repo, dirs.dag_dir)
    assert not remote_files(platform.gitops_repo, dirs.gitops_dir)
    assert scratch_keys(platform, code_key) == []
    assert "already absent" in modelci("stop")

    # The scheduled clean-up: nothing is left to remove, the branch list comes from GitLab.
    with running("glpat-package-secret") as gitlab:
        gitlab.branches = ["main", branch]
        api = {"CI_SERVER_URL": gitlab.url, "MODELCI_GITLAB_TOKEN": gitlab.token}
        scheduled = Modelci(modelci.venv, modelci.cwd, {**main.env, **api}, modelci.ran)
        planned = scheduled("cleanup", "--dry-run")
        # The fleet page of the scheduled pipeline: a static site, nothing to run beside it.
        scheduled("fleet", "--config", "mlops.yaml", "--project", PROJECT, "--out", "public")
    # The session's S3 may hold other tests' environments of this project; ours is live.
    assert "environment(s) found" in planned and names.environment not in planned
    site = (modelci.cwd / "public" / "index.html").read_text(encoding="utf-8")
    assert "<script" not in site and PROJECT in site

    assert set(modelci.ran) == {"--help", *SUBCOMMANDS}


def _get_json(url: str, run_id: str) -> dict:
    with urllib.request.urlopen(f"{url}?run_id={run_id}", timeout=30) as response:
        return json.loads(response.read())["run"]
