"""`modelci serve`: what the InferenceService's container runs when the model has an environment
archive (chart value `environment.archive`).

KServe's storage initializer has already copied `storageUri` to the model directory
(/mnt/models). This command fetches the model's environment archive (the one it was trained
in), unpacks it as `pod-run --env` does, and replaces itself with the MLServer of that
environment, serving the model with `mlserver_mlflow.MLflowRuntime` like KServe's
`kserve-mlserver` runtime. The model is loaded by the libraries it was trained with, not by the
runtime image's. MLServer's own `environment_tarball` is not used: it expects a conda-pack
archive that carries its interpreter, and this archive is a virtualenv linked to the image's
Python when unpacked. Ports and other MLServer settings come from the pod's `MLSERVER_*`
variables, which KServe sets.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from ..errors import ModelciError
from ..lifecycle.modelenv import (
    SERVING_RUNTIME,
    default_cache_dir,
    environment_from_archive,
    variables_for,
)
from ..systems.mlflow_uris import MLMODEL_FILE

MLFLOW_RUNTIME = "mlserver_mlflow.MLflowRuntime"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", required=True, help="s3:// URI of the model's environment archive")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=Path("/mnt/models"),
        help="the MLflow model directory (default: /mnt/models, where KServe puts storageUri)",
    )
    parser.add_argument("--name", required=True, help="the model's name in /v2/models/<name>")


def run(args: argparse.Namespace) -> int:
    from ..systems.s3 import S3Store

    if not (args.model_dir / MLMODEL_FILE).is_file():
        raise ModelciError(
            f"{args.model_dir} holds no MLmodel file: the InferenceService's storageUri must be "
            "the MLflow model directory, which KServe's storage initializer copies there"
        )
    store = S3Store.from_env(os.environ)
    environment = environment_from_archive(store, args.env, default_cache_dir())
    mlserver = environment / "bin" / "mlserver"
    if not mlserver.is_file():
        raise ModelciError(
            f"the environment archive {args.env} has no MLServer ({', '.join(SERVING_RUNTIME)}): "
            "it was built for a repository without online models. Run the branch's pipeline "
            "again with `online.enabled: true` in mlops.yaml: its train job adds them"
        )
    repository = Path(tempfile.mkdtemp(prefix="modelci-serve-"))
    write_model_settings(repository, args.name, args.model_dir.resolve())
    env = variables_for(environment, os.environ)
    print(f"serving {args.name} from {args.model_dir} with the environment {args.env}", flush=True)
    os.chdir(repository)  # MLServer keeps its metrics and worker files under its working dir
    os.execve(mlserver, [str(mlserver), "start", str(repository)], env)
    return 1  # not reached: execve replaces this process


def write_model_settings(repository: Path, name: str, model_dir: Path) -> Path:
    """The MLServer model-settings.json that serves the MLflow model in `model_dir` as `name`."""
    settings = {
        "name": name,
        "implementation": MLFLOW_RUNTIME,
        "parameters": {"uri": str(model_dir)},
    }
    folder = repository / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model-settings.json"
    path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return path
