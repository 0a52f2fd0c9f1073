"""What every pipeline step shares: the config, who is running, the platform settings, and the
per-model state one job hands to the next (a JSON artifact under `.modelci/`)."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..config.mlops import CONFIG_FILE_NAME, load_config
from ..config.naming import EnvironmentDirs, Names, environment_dirs, names_for
from ..config.settings import Pipeline, Settings
from ..config.types import Config, Model
from ..errors import ModelciError

STATE_DIR = Path(".modelci")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=CONFIG_FILE_NAME,
        help=f"the model config file (default: {CONFIG_FILE_NAME})",
    )
    parser.add_argument(
        "--model", action="append", default=[], help="only this model (repeatable; default: all)"
    )


@dataclass(frozen=True)
class Job:
    config: Config
    pipeline: Pipeline
    settings: Settings
    stand: str | None  # set when the pipeline runs for a stand rather than a feature branch

    @property
    def dirs(self) -> EnvironmentDirs:
        """The environment this job deploys, whatever the model: name, repo dirs, S3 prefix."""
        return environment_dirs(self.pipeline.project, self.pipeline.branch, stand=self.stand)

    def names(self, model: Model) -> Names:
        return names_for(self.pipeline.project, self.pipeline.branch, model.name, stand=self.stand)

    def models(self, selected: list[str]) -> list[Model]:
        unknown = sorted(set(selected) - {m.name for m in self.config.models})
        if unknown:
            known = ", ".join(m.name for m in self.config.models)
            raise ModelciError(
                f"--model {unknown[0]!r} is not in {self.config.path}; "
                f"the models there are: {known}"
            )
        return [m for m in self.config.models if not selected or m.name in selected]


def load_job(args: argparse.Namespace, env: dict[str, str] | None = None) -> Job:
    env = dict(os.environ) if env is None else env
    config = load_config(Path(args.config))
    return Job(
        config=config,
        pipeline=Pipeline.from_env(env),
        settings=Settings.from_env(env),
        stand=getattr(args, "stand", None),
    )


# Each step writes its own file, so artifacts of jobs that run side by side never collide;
# reading merges them in pipeline order.
STEPS = ("train", "gate", "resolve", "deploy-batch", "deploy-online")


def state_path(model: str, step: str) -> Path:
    if step not in STEPS:
        raise ValueError(f"unknown pipeline step {step!r}")
    return STATE_DIR / model / f"{step}.json"


def read_state(model: str) -> dict[str, Any]:
    """Everything this pipeline's earlier jobs left for `model`, merged in pipeline order."""
    return _read_state(model)


def _read_state(model: str) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for step in STEPS:
        path = state_path(model, step)
        if path.exists():
            state.update(json.loads(path.read_text(encoding="utf-8")))
    if not state:
        raise ModelciError(
            f"{STATE_DIR / model} holds no state: this job needs the artifacts of the earlier "
            "jobs of its pipeline (check `needs:` in the CI template)"
        )
    return state


@dataclass(frozen=True)
class RunState:
    """What this pipeline's earlier jobs left for a model: its run, and its DAGs once
    deploy-batch ran (kind -> dag_id)."""

    run_id: str
    experiment_id: str
    dags: dict[str, str]


def read_run_state(model: str) -> RunState:
    state = _read_state(model)
    return RunState(
        run_id=state["run_id"], experiment_id=state["experiment_id"], dags=state.get("dags", {})
    )


@dataclass(frozen=True)
class ResolvedModel:
    """What `modelci resolve` chose for a model: what every deploy step writes."""

    run_id: str
    experiment_id: str
    model_uri: str  # models:/m-<id> or runs:/<id>/<path>, as MLflow names it
    storage_uri: str  # the s3:// directory holding MLmodel: what KServe and pods read
    model_version: str | None = None  # the registered version, once promoted to a stand
    environment_uri: str | None = None  # the environment archive the run trained in
    code_uri: str | None = None  # the code archive batch pods fetch, staged by resolve

    def as_state(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def read_resolved_state(model: str) -> ResolvedModel:
    """The state a deploy step needs: what `modelci resolve` chose for `model`."""
    state = _read_state(model)
    if "storage_uri" not in state:
        raise ModelciError(
            f"{STATE_DIR / model} holds no resolved model: run `modelci resolve` first (in CI "
            "the deploy jobs need the resolve job, which fails when no run passed the gate)"
        )
    return ResolvedModel(**{name: state.get(name) for name in _RESOLVED_FIELDS})


_RESOLVED_FIELDS = tuple(field.name for field in fields(ResolvedModel))


def clear_state(model: str) -> None:
    """Forget what an earlier pipeline left for `model` in this checkout: a new run starts."""
    for step in STEPS:
        state_path(model, step).unlink(missing_ok=True)


def write_state(model: str, step: str, **values: Any) -> None:
    path = state_path(model, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n", encoding="utf-8")


DAG_REPO_TOKEN = "MODELCI_DAG_REPO_TOKEN"
GITOPS_REPO_TOKEN = "MODELCI_GITOPS_REPO_TOKEN"


def dag_repo(settings: Settings, *, stands: bool = False):
    """The Airflow DAG bundle repo: the branch its feature-environment GitDagBundle tracks, or
    with `stands` the protected branch the stands' bundle tracks."""
    return _shared_repo(
        settings.dag_repo_url,
        settings.stands_branch if stands else settings.dag_repo_branch,
        "MODELCI_DAG_REPO_URL",
        DAG_REPO_TOKEN,
        settings.push_budget_seconds,
        stands=stands,
    )


def gitops_repo(settings: Settings, *, stands: bool = False):
    """The GitOps repo: the revision the feature environments' ApplicationSet reads, or with
    `stands` the protected branch the stands' ApplicationSet reads."""
    return _shared_repo(
        settings.gitops_repo_url,
        settings.stands_branch if stands else settings.gitops_repo_branch,
        "MODELCI_GITOPS_REPO_URL",
        GITOPS_REPO_TOKEN,
        settings.push_budget_seconds,
        stands=stands,
    )


def _shared_repo(
    url: str,
    branch: str,
    url_variable: str,
    token_variable: str,
    push_budget_seconds: float,
    *,
    stands: bool,
):
    from ..config.settings import STAND_CREDENTIALS
    from ..systems.gitrepo import RemoteRepo

    if not url:
        raise ModelciError(
            f"{url_variable} is not set; set it in the GitLab group's CI/CD variables "
            "(see docs/platform/setup.md, 'CI/CD variables')"
        )
    has_token = bool(os.environ.get(token_variable))
    if stands and not has_token and url.lower().startswith(("http://", "https://")):
        raise ModelciError(
            f"{STAND_CREDENTIALS[token_variable]} is not set in this job, and stands are "
            f"written to branch {branch!r} only with it: GitLab hands protected CI/CD variables "
            "only to pipelines of protected branches and tags. Run the stand jobs on the "
            "default branch (protected), or have the platform team add the variable as "
            "protected and masked (docs/platform/setup.md, 'Stands and credentials')."
        )
    return RemoteRepo(
        url,
        branch,
        token_env=token_variable if has_token else None,
        author=("modelci", "modelci@noreply"),
        push_budget_seconds=push_budget_seconds,
    )


def commit_message(summary: str, pipeline: Pipeline, environment: str) -> str:
    """Who, what and why, for every commit the pipeline makes in a shared repo."""
    return (
        f"{summary}\n\n"
        f"Project: {pipeline.project}\n"
        f"Branch: {pipeline.branch}\n"
        f"Environment: {environment}\n"
        f"Commit: {pipeline.commit}\n"
        f"Pipeline: {pipeline.pipeline_url or pipeline.pipeline_id}\n"
        f"Triggered-by: {pipeline.user}\n"
    )
