"""What every pipeline step shares: the config, who is running, the platform settings, and the
per-model state one job hands to the next (a JSON artifact under `.modelci/`)."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import CONFIG_FILE_NAME, Config, Model, load_config
from .errors import ModelciError
from .naming import Names, names_for
from .settings import Pipeline, Settings

STATE_DIR = Path(".modelci")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=CONFIG_FILE_NAME, help=f"the model config file (default: {CONFIG_FILE_NAME})"
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

    def names(self, model: Model) -> Names:
        return names_for(self.pipeline.project, self.pipeline.branch, model.name, stand=self.stand)

    def models(self, selected: list[str]) -> list[Model]:
        unknown = sorted(set(selected) - {m.name for m in self.config.models})
        if unknown:
            known = ", ".join(m.name for m in self.config.models)
            raise ModelciError(
                f"--model {unknown[0]!r} is not in {self.config.path}; the models there are: {known}"
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


def state_path(model: str) -> Path:
    return STATE_DIR / f"{model}.json"


def read_state(model: str) -> dict[str, Any]:
    path = state_path(model)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelciError(
            f"{path} is missing: this job needs the artifacts of the earlier jobs of its pipeline "
            f"(check `needs:` in the CI template)"
        ) from None


def write_state(model: str, **updates: Any) -> dict[str, Any]:
    path = state_path(model)
    state = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    state.update(updates)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return state
