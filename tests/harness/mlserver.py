"""MLServer from .venv-mlserver serving one MLflow model, as KServe runs it for
`modelFormat: mlflow`: the model is named after the InferenceService and loaded by
`mlserver_mlflow.MLflowRuntime` from a local directory (KServe's storage initializer copies
`storageUri` to /mnt/models first). Bound to 127.0.0.1, every port free."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelci.commands.serve import write_model_settings
from tests.harness.ports import HOST, reserve_ports
from tests.harness.processes import ServerProcess, StartError, start_with_retries
from tests.harness.tools import MLSERVER_BIN, require

# About 10 s on an idle 2-core machine; loading the model imports mlflow and sklearn.
READY_TIMEOUT_SECONDS = 60.0
REQUEST_TIMEOUT_SECONDS = 30.0
PORT_IN_USE = "address already in use"


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: Any  # the decoded JSON, or the raw text when the body is not JSON


@dataclass(frozen=True)
class ModelServer:
    base_url: str
    model_name: str
    process: ServerProcess | None = field(default=None, repr=False, compare=False)
    startup_seconds: float = field(default=0.0, compare=False)

    def model_url(self, action: str) -> str:
        """`/v2/models/<name>/<action>`, the Open Inference Protocol path KServe exposes."""
        return f"{self.base_url}/v2/models/{self.model_name}/{action}"

    def infer(self, request: dict[str, Any]) -> HttpAnswer:
        return post_json(self.model_url("infer"), request)


def post_json(url: str, document: dict[str, Any]) -> HttpAnswer:
    """POST `document`; an HTTP error status is an answer too, not an exception."""
    request = urllib.request.Request(
        url,
        data=json.dumps(document).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return HttpAnswer(response.status, _decode(response.read()))
    except urllib.error.HTTPError as error:
        return HttpAnswer(error.code, _decode(error.read()))


def _decode(raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def server_env(http_port: int, grpc_port: int, metrics_port: int) -> dict[str, str]:
    # The caller's MLServer, MLflow and AWS settings must not leak in: the model is local.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MLSERVER_", "MLFLOW_", "AWS_"))
    }
    env.update(
        {
            "PATH": f"{MLSERVER_BIN.parent}{os.pathsep}{env.get('PATH', '')}",
            "MLSERVER_HOST": HOST,
            "MLSERVER_HTTP_PORT": str(http_port),
            "MLSERVER_GRPC_PORT": str(grpc_port),
            "MLSERVER_METRICS_PORT": str(metrics_port),
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
    )
    return env


def start_mlserver(workdir: Path, name: str, model_dir: Path) -> ModelServer:
    """Serve the MLflow model in `model_dir` as `name` with the runtime image's MLServer (its own
    virtualenv, as KServe's kserve-mlserver runtime does); return once the model is ready."""
    require(MLSERVER_BIN)

    def command(attempt_dir: Path) -> list[str | Path]:
        repository = attempt_dir / "models"
        write_model_settings(repository, name, model_dir)
        return [MLSERVER_BIN, "start", repository]

    return start_model_server(workdir, name, command)


def start_model_server(
    workdir: Path,
    name: str,
    command: Callable[[Path], list[str | Path]],
    env: Mapping[str, str] | None = None,
) -> ModelServer:
    """Start `command(attempt_dir)` with MLServer's port variables (as KServe sets them) on top
    of `env`; return once model `name` is ready.

    MLServer stops itself when a model fails to load at start-up, so a model it cannot read
    fails here at once, with MLServer's log (the load traceback) in the message.
    """

    def start(attempt: int) -> ModelServer:
        started = time.monotonic()
        # MLServer writes .metrics/ and .envs/ under its working directory.
        attempt_dir = workdir / f"attempt{attempt}"
        attempt_dir.mkdir(parents=True, exist_ok=True)
        argv = command(attempt_dir)
        with reserve_ports() as ports:
            http_port, grpc_port, metrics_port = ports.any(), ports.any(), ports.any()
        process = ServerProcess(
            "MLServer",
            argv,
            attempt_dir / "mlserver.log",
            env={**server_env(http_port, grpc_port, metrics_port), **(env or {})},
            cwd=attempt_dir,
        )
        server = ModelServer(f"http://{HOST}:{http_port}", name, process=process)
        try:
            process.wait_ready(
                lambda: _answers_200(server.model_url("ready")),
                READY_TIMEOUT_SECONDS,
                f"model {name}",
            )
        except StartError as error:
            process.stop()
            # Only a lost race for a port is worth another attempt, not a model that fails.
            lost_port = PORT_IN_USE in process.log_tail().lower()
            raise StartError(str(error), exited=error.exited and lost_port) from None
        except BaseException:
            process.stop()
            raise
        return ModelServer(
            server.base_url, name, process=process, startup_seconds=time.monotonic() - started
        )

    return start_with_retries(start)
