"""Serve the candidate and production side by side, the way a stand serves them, and measure.

It starts two local `modelci serve` processes (MLServer
from each model's own environment archive, as the InferenceService's container runs it),
sends both the same rows over HTTP (the Open Inference Protocol KServe exposes), and reads
their memory from /proc. Both servers are up at once and the requests alternate between them,
so whatever else loads the machine loads both alike. Everything has a deadline; the servers
are stopped (their whole process group) whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelciError
from ..review.cost import ServingCost

HOST = "127.0.0.1"
# MLflow signature column types -> Open Inference Protocol datatypes.
V2_DATATYPES = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
}
_STOP_SECONDS = 5.0


@dataclass(frozen=True)
class ServingInput:
    """One model to serve: its local MLflow model directory and its environment archive."""

    label: str  # "candidate", "production v3": for messages
    model_dir: Path
    env_archive: str  # s3:// URI
    columns: Sequence[str]  # the input names it takes, in its signature's order
    types: Mapping[str, str]  # input name -> signature type


@dataclass(frozen=True)
class Samples:
    single: int = 20
    batch: int = 5


@dataclass(frozen=True)
class Measured:
    cost: ServingCost
    predictions: list[Any]  # one per row, from a batch request


def model_bytes(model_dir: Path) -> int:
    return sum(path.stat().st_size for path in model_dir.rglob("*") if path.is_file())


def v2_request(serving: ServingInput, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One input per column the model takes, read as a pandas DataFrame."""
    inputs = []
    for column in serving.columns:
        values = [row.get(column) for row in rows]
        datatype = V2_DATATYPES.get(serving.types.get(column, ""), "") or _datatype(values)
        inputs.append({"name": column, "shape": [len(rows)], "datatype": datatype, "data": values})
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}


def _datatype(values: Sequence[Any]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"


def measure_side_by_side(
    candidate: ServingInput,
    production: ServingInput,
    rows: Sequence[Mapping[str, Any]],
    production_rows: Sequence[Mapping[str, Any]],
    *,
    deadline: float,
    samples: Samples = Samples(),
    env: Mapping[str, str] | None = None,
) -> tuple[Measured, Measured]:
    """Serve both, predict on `rows` (production gets `production_rows`: the same rows under
    its own column names), time single and batch requests alternately; before `deadline`
    (time.monotonic()) or a ModelciError."""
    base = dict(os.environ if env is None else env)
    with _served(candidate, base) as ours, _served(production, base) as theirs:
        _wait_ready((ours, theirs), deadline)
        requests = (
            (v2_request(candidate, rows), v2_request(candidate, rows[:1])),
            (v2_request(production, production_rows), v2_request(production, production_rows[:1])),
        )
        predictions = [
            server.predict(batch, len(rows), deadline)
            for server, (batch, _) in zip((ours, theirs), requests, strict=True)
        ]
        timings: list[dict[str, list[float]]] = [
            {"single": [], "batch": []},
            {"single": [], "batch": []},
        ]
        for kind, count, which in (("single", samples.single, 1), ("batch", samples.batch, 0)):
            for _ in range(count):
                for index, server in enumerate((ours, theirs)):
                    timings[index][kind].append(server.timed(requests[index][which], deadline))
        costs = [
            ServingCost(
                model_bytes=model_bytes(serving.model_dir),
                load_seconds=server.load_seconds,
                single_ms=timings[index]["single"],
                batch_ms=timings[index]["batch"],
                batch_rows=len(rows),
                peak_memory_bytes=server.peak_memory(),
            )
            for index, (serving, server) in enumerate(((candidate, ours), (production, theirs)))
        ]
    return Measured(costs[0], predictions[0]), Measured(costs[1], predictions[1])


class _Server:
    def __init__(self, serving: ServingInput, base_env: Mapping[str, str]) -> None:
        self.serving = serving
        self.name = "model"
        self.workdir = Path(tempfile.mkdtemp(prefix="modelci-review-serve-"))
        self.log = self.workdir / "serve.log"
        http, grpc, metrics = _free_ports(3)
        self.url = f"http://{HOST}:{http}/v2/models/{self.name}"
        env = {k: v for k, v in base_env.items() if not k.startswith("MLSERVER_")}
        env.update(
            {
                "MLSERVER_HOST": HOST,
                "MLSERVER_HTTP_PORT": str(http),
                "MLSERVER_GRPC_PORT": str(grpc),
                "MLSERVER_METRICS_PORT": str(metrics),
            }
        )
        command = [
            sys.executable,
            "-m",
            "modelci",
            "serve",
            "--env",
            serving.env_archive,
            "--model-dir",
            str(serving.model_dir),
            "--name",
            self.name,
        ]
        self.started = time.monotonic()
        self.load_seconds = 0.0
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.workdir,
                start_new_session=True,  # its own process group: MLServer's workers stop too
            )

    def ready(self) -> bool:
        """Whether the model is ready now; its load time is taken the first time it is."""
        if self.load_seconds:
            return True
        if self.process.poll() is not None:
            raise ModelciError(
                f"the {self.serving.label} model's server stopped (exit "
                f"{self.process.returncode}) before it was ready: {self._log_tail()}"
            )
        if _get_ok(f"{self.url}/ready"):
            self.load_seconds = time.monotonic() - self.started
            return True
        return False

    def predict(self, request: dict[str, Any], rows: int, deadline: float) -> list[Any]:
        status, body = _post(f"{self.url}/infer", request, deadline)
        if status != 200 or not isinstance(body, dict) or not body.get("outputs"):
            detail = body.get("error") if isinstance(body, dict) else body
            raise ModelciError(
                f"the {self.serving.label} model refused the rows (HTTP {status}): "
                f"{str(detail)[:400]}"
            )
        data = body["outputs"][0].get("data") or []
        if len(data) != rows:  # a multi-column output comes flattened: one row each
            width = max(1, len(data) // max(1, rows))
            data = [data[i * width : (i + 1) * width] for i in range(rows)]
        return list(data)

    def timed(self, request: dict[str, Any], deadline: float) -> float:
        started = time.perf_counter()
        status, body = _post(f"{self.url}/infer", request, deadline)
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            raise ModelciError(f"the {self.serving.label} model answered HTTP {status}: {body}")
        return elapsed

    def peak_memory(self) -> int | None:
        """The peak resident memory (VmHWM) of the server and its workers, summed."""
        pids = _process_tree(self.process.pid)
        total, found = 0, False
        for pid in pids:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) * 1024
                        found = True
        return total if found else None

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(_STOP_SECONDS)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-1500:]
        return "(no log)"


def _wait_ready(servers: Sequence[_Server], deadline: float) -> None:
    """Both polled in turn, so each one's load time is its own."""
    while time.monotonic() < deadline:
        if all([server.ready() for server in servers]):
            return
        time.sleep(0.1)
    late = [server.serving.label for server in servers if not server.load_seconds]
    raise ModelciError(f"the model server of {' and '.join(late)} was not ready in time")


@contextlib.contextmanager
def _served(serving: ServingInput, base_env: Mapping[str, str]) -> Iterator[_Server]:
    server = _Server(serving, base_env)
    try:
        yield server
    finally:
        server.stop()


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def _get_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _post(url: str, document: dict[str, Any], deadline: float) -> tuple[int, Any]:
    timeout = max(1.0, deadline - time.monotonic())
    request = urllib.request.Request(
        url,
        data=json.dumps(document).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _decode(response.read())
    except urllib.error.HTTPError as error:
        return error.code, _decode(error.read())
    except (urllib.error.URLError, OSError) as error:
        raise ModelciError(f"no answer from a model server at {url}: {error}") from None


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError:
        return raw.decode("utf-8", errors="replace")[:400]
