"""The `modelci` command as a user meets it: help, exit codes, and messages that name the file,
field or variable to fix. No servers: commands that would reach one are only run where they
must refuse before reaching it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import git
import pytest
from ruamel.yaml import YAML

from modelci.cli import SUBCOMMANDS, main
from modelci.config.naming import names_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "churn"

# The commands the README promises; losing one breaks every pipeline that calls it.
DOCUMENTED_COMMANDS = (
    "validate",
    "names",
    "train",
    "gate",
    "resolve",
    "deploy-batch",
    "deploy-online",
    "report",
    "stop",
    "compare",
    "promote",
    "rollback",
    "deploy-version",
    "cleanup",
    "render",
    "monitor",
    "pod-run",
    "serve",
    "fleet",
)
NAME_KEYS = {
    "project",
    "branch",
    "model",
    "project_slug",
    "environment",
    "is_stand",
    "namespace",
    "k8s_name",
    "app_name",
    "experiment",
    "registered_model",
    "gitops_dir",
    "s3_prefix",
    "values_path",
    "app_config_path",
    "dag_ids",
    "dag_paths",
}
PROJECT = "ml/churn"
BRANCH = "feature/x"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
# Nothing listens here: a command that tried to reach MLflow or S3 would fail.
CLOSED_URL = "http://127.0.0.1:9"
CI_VARIABLES = {
    "CI_PROJECT_PATH": PROJECT,
    "CI_COMMIT_REF_NAME": BRANCH,
    "CI_COMMIT_SHA": COMMIT,
    "CI_PIPELINE_ID": "42",
    "MLFLOW_TRACKING_URI": CLOSED_URL,
    "MLFLOW_S3_ENDPOINT_URL": CLOSED_URL,
    "MODELCI_SCRATCH_URI": "s3://mlops/modelci-scratch",
    "MODELCI_RUNTIME_IMAGE": "registry.example.com/platform/modelci:0.1.0",
}


def run_modelci(*args: str, cwd: Path, env: dict[str, str] | None = None):
    """`python -m modelci` as a separate process, as CI runs it."""
    return subprocess.run(
        [sys.executable, "-m", "modelci", *args],
        cwd=cwd,
        env={**_clean_environ(), "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _clean_environ() -> dict[str, str]:
    """The process environment without anything of GitLab's (CI itself runs these tests with
    CI=true), MLflow's, S3's or ours: each test adds what its job would have."""
    prefixes = ("CI_", "MLFLOW_", "AWS_", "MODELCI_", "GITLAB_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k != "CI"}


@pytest.fixture
def ci_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The process environment of a CI job on a feature branch, and nothing else of ours."""
    for name in list(os.environ):
        if name.startswith(("CI_", "MLFLOW_", "AWS_", "MODELCI_", "GITLAB_")):
            monkeypatch.delenv(name)
    for name, value in CI_VARIABLES.items():
        monkeypatch.setenv(name, value)
    return dict(CI_VARIABLES)


@pytest.fixture
def model_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example model repository, as the working directory."""
    repo = tmp_path / "churn"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__", "mlruns"))
    monkeypatch.chdir(repo)
    return repo


def files_under(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def break_config(repo: Path, old: str, new: str) -> int:
    """Replace `old` (once) in the repo's mlops.yaml; the 1-based line it was on."""
    config = repo / "mlops.yaml"
    text = config.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} not found exactly once in the example config"
    config.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


# --- help ----------------------------------------------------------------------------------------


def test_help_lists_every_subcommand_with_its_purpose(tmp_path: Path) -> None:
    result = run_modelci("--help", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert set(SUBCOMMANDS) == set(DOCUMENTED_COMMANDS)
    flat = " ".join(result.stdout.split())
    for name in DOCUMENTED_COMMANDS:
        purpose = " ".join(SUBCOMMANDS[name][1].split())
        assert len(purpose.split()) >= 4, f"{name} has no real purpose line: {purpose!r}"
        assert f"{name} {purpose}" in flat, f"`modelci --help` shows no purpose for {name}"


@pytest.mark.parametrize("command", DOCUMENTED_COMMANDS)
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])

    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: modelci {command}")
    assert " ".join(SUBCOMMANDS[command][1].split()) in " ".join(out.split())


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])

    assert exited.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


# --- validate ------------------------------------------------------------------------------------


def test_validate_accepts_the_example(model_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 0

    assert capsys.readouterr().out.strip() == "mlops.yaml: valid (1 model(s): churn)"


def full_template_stands() -> list[str]:
    """The stands ci-templates/full.yml promotes to when its inputs are left alone."""
    header = (ROOT / "ci-templates" / "full.yml").read_text().split("\n---\n")[0]
    spec = YAML(typ="safe").load(header)
    inputs = spec["spec"]["inputs"]
    return [inputs["first_stand"]["default"], inputs["last_stand"]["default"]]


def drop_stands_block(repo: Path) -> None:
    config = repo / "mlops.yaml"
    lines = config.read_text(encoding="utf-8").splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("stands:"))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith((" ", "\n")))
    config.write_text("".join(lines[:start] + lines[end:]), encoding="utf-8")


def test_a_config_without_stands_agrees_with_the_full_template_as_it_comes(
    model_repo: Path,
) -> None:
    drop_stands_block(model_repo)

    result = run_modelci("validate", "--stands", " ".join(full_template_stands()), cwd=model_repo)

    assert result.returncode == 0, result.stderr
    assert "stands" not in (model_repo / "mlops.yaml").read_text()


def test_stands_the_template_does_not_promote_to_are_refused_before_training(
    model_repo: Path,
) -> None:
    break_config(model_repo, "  - name: staging         # promoted automatically\n", "")
    before = files_under(model_repo)

    result = run_modelci("validate", "--stands", "staging production", cwd=model_repo)

    assert result.returncode == 1
    assert (
        "mlops.yaml: stands are production, but the CI template promotes to staging then "
        "production" in result.stderr
    )
    assert "the first merge would fail" in result.stderr
    assert "`stands: [{name: staging}, {name: production, manual: true}]`" in result.stderr
    assert "first_stand and last_stand" in result.stderr
    assert "Traceback" not in result.stderr
    assert files_under(model_repo) == before


def test_bad_config_exits_2_naming_file_line_field_and_fix(model_repo: Path) -> None:
    line = break_config(model_repo, "flavor: sklearn", "flavor: sklern")
    before = files_under(model_repo)

    result = run_modelci("validate", cwd=model_repo)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("modelci validate: error: ")
    assert f"mlops.yaml:{line}:" in result.stderr
    assert "models[0].flavor" in result.stderr
    assert 'Did you mean "sklearn"?' in result.stderr
    assert "Traceback" not in result.stderr
    assert files_under(model_repo) == before


def test_every_problem_is_reported_at_once(
    model_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flavor_line = break_config(model_repo, "flavor: sklearn", "flavor: sklern")
    entry_line = break_config(model_repo, "entrypoint: train.py", "entrypoint: trian.py")

    assert main(["validate"]) == 2

    err = capsys.readouterr().err
    assert f"mlops.yaml:{flavor_line}:" in err and "models[0].flavor" in err
    assert f"mlops.yaml:{entry_line}:" in err and "models[0].train.entrypoint" in err
    assert "trian.py" in err and "does not exist" in err


@pytest.mark.parametrize("command", ["validate", "train", "gate", "deploy-batch", "render"])
def test_a_missing_config_exits_2_naming_the_path(
    command: str, tmp_path: Path, ci_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere" / "mlops.yaml"

    assert main([command, "--config", str(missing)]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"modelci {command}: error: {missing}: file not found" in captured.err
    assert "create it or fix the path" in captured.err
    assert not (tmp_path / ".modelci").exists()


@pytest.mark.parametrize("command", ["train", "gate", "resolve", "deploy-online", "report"])
def test_every_step_checks_the_config_before_anything_else(
    command: str,
    model_repo: Path,
    ci_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = break_config(model_repo, "min: 0.7", "min: high")

    assert main([command]) == 2  # not 1 from the unreachable MLflow: nothing was contacted

    err = capsys.readouterr().err
    assert f"mlops.yaml:{line}:" in err and "models[0].gate.metrics[0].min" in err
    assert not (model_repo / ".modelci").exists()


def test_an_unknown_model_is_refused_listing_the_known_ones(
    model_repo: Path, ci_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", "--model", "chrun"]) == 1

    err = capsys.readouterr().err
    assert "--model 'chrun' is not in mlops.yaml" in err
    assert "the models there are: churn" in err


# --- names ---------------------------------------------------------------------------------------


def test_names_prints_every_documented_name_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["names", "--project", PROJECT, "--branch", BRANCH, "--model", "churn"]) == 0

    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == NAME_KEYS
    expected = names_for(PROJECT, BRANCH, "churn")
    assert printed["environment"] == expected.environment
    assert printed["environment"].startswith("b-feature-x-")
    assert printed["values_path"] == expected.values_path
    assert printed["dag_paths"]["inference"] == expected.dag_path("inference")
    assert printed["is_stand"] is False


def test_names_of_several_models_and_of_a_stand(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["names", "--project", PROJECT, "--branch", "main", "--stand", "production"]
    assert main([*argv, "--model", "churn", "--model", "upsell"]) == 0

    printed = json.loads(capsys.readouterr().out)
    assert [entry["model"] for entry in printed] == ["churn", "upsell"]
    assert {entry["environment"] for entry in printed} == {"production"}
    assert all(entry["is_stand"] for entry in printed)


def test_names_reads_project_and_branch_from_ci(
    ci_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["names", "--model", "churn"]) == 0

    assert json.loads(capsys.readouterr().out)["branch"] == BRANCH


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--model", "Churn_Model"], "invalid model name 'Churn_Model'"),
        (["--model", "churn", "--stand", "b-prod"], "invalid stand name 'b-prod'"),
    ],
)
def test_names_refuses_bad_names_saying_why(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["names", "--project", PROJECT, "--branch", BRANCH, *argv]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert expected in captured.err and "a-z, 0-9 and '-'" in captured.err


def test_names_outside_ci_asks_for_project_and_branch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CI_PROJECT_PATH", raising=False)
    monkeypatch.delenv("CI_COMMIT_REF_NAME", raising=False)

    assert main(["names", "--model", "churn"]) == 1

    assert "give --project and --branch" in capsys.readouterr().err


# --- render --------------------------------------------------------------------------------------


def test_render_prints_every_file_a_pipeline_writes_and_touches_nothing(
    model_repo: Path, ci_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = files_under(model_repo)

    assert main(["render"]) == 0  # MLflow and S3 point at a closed port: nothing was contacted

    out = capsys.readouterr().out
    names = names_for(PROJECT, BRANCH, "churn")
    headers = {line[4:-4] for line in out.splitlines() if line.startswith("==> ")}
    assert headers == {
        names.dag_path("inference"),
        names.dag_path("monitoring"),
        names.values_path,
        names.app_config_path,
    }
    assert f"name: {names.k8s_name}\n" in out
    assert f"DAG_ID = '{names.dag_id('inference')}'" in out
    assert files_under(model_repo) == before  # no .modelci/ state, no other file


def test_render_refuses_values_the_chart_would_refuse(
    model_repo: Path, ci_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", "--storage-uri", "ftp://models/churn"]) == 2

    captured = capsys.readouterr()
    names = names_for(PROJECT, BRANCH, "churn")
    assert captured.out == ""  # refused before printing a single file
    assert names.values_path in captured.err
    assert "storageUri: 'ftp://models/churn'" in captured.err
    assert "expected s3://bucket/path" in captured.err


def test_render_without_an_image_shows_where_it_goes(
    model_repo: Path,
    ci_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("MODELCI_RUNTIME_IMAGE")

    assert main(["render"]) == 0

    assert "IMAGE = '<MODELCI_RUNTIME_IMAGE>'" in capsys.readouterr().out


@pytest.mark.parametrize("variable", ["CI_PROJECT_PATH", "CI_COMMIT_REF_NAME", "CI_COMMIT_SHA"])
def test_a_predefined_variable_missing_in_ci_is_named_with_the_real_cause(
    variable: str, model_repo: Path
) -> None:
    env = {k: v for k, v in CI_VARIABLES.items() if k != variable}

    result = run_modelci("train", cwd=model_repo, env={**env, "CI": "true"})

    assert result.returncode == 1
    assert result.stderr.startswith(
        f"modelci train: error: GitLab's predefined variable {variable} is empty in this job"
    )
    assert "`variables:`" in result.stderr  # what overrides it; not a group setting to make
    assert "Settings > CI/CD" not in result.stderr
    assert "Traceback" not in result.stderr
    assert not (model_repo / ".modelci").exists()


def test_a_predefined_variable_outside_ci_says_so(model_repo: Path) -> None:
    env = {k: v for k, v in CI_VARIABLES.items() if k != "CI_PROJECT_PATH"}

    result = run_modelci("train", cwd=model_repo, env=env)

    assert result.returncode == 1
    assert "CI_PROJECT_PATH is not set" in result.stderr
    assert "this is not running in GitLab CI" in result.stderr
    assert "Traceback" not in result.stderr


def test_render_on_a_laptop_takes_the_project_and_branch_from_git(
    model_repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [*CI_VARIABLES, "CI"]:
        monkeypatch.delenv(name, raising=False)
    repo = git.Repo.init(model_repo, initial_branch="feature/laptop")
    repo.git.add(A=True)
    repo.git.commit("-qm", "model", "--author", "DS <ds@example.com>")
    repo.create_remote("origin", "git@gitlab.example.com:ml/churn.git")

    assert main(["render"]) == 0

    out = capsys.readouterr().out
    names = names_for("ml/churn", "feature/laptop", "churn")
    assert f"==> {names.dag_path('inference')} <==" in out
    assert f"==> {names.values_path} <==" in out
    assert repo.head.commit.hexsha in out
    assert main(["render", "--project", "team/other", "--branch", "fix-1"]) == 0
    assert names_for("team/other", "fix-1", "churn").values_path in capsys.readouterr().out


def test_credentials_in_the_tracking_uri_are_never_printed_or_rendered(
    model_repo: Path,
    ci_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The DAG files go to a shared git repo; a password in them is a leaked secret.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://ci-bot:pa55w0rd-xyz@mlflow.example.com")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3-secret-xyz")

    assert main(["render"]) == 0

    out = capsys.readouterr().out
    assert "mlflow.example.com" in out
    assert "pa55w0rd-xyz" not in out
    assert "s3-secret-xyz" not in out
