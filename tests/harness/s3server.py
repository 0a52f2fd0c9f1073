"""SeaweedFS (``weed mini``) as the tests' S3: on 127.0.0.1, every port free, keys enforced,
with the identities a platform configures (`identities.py`): its own `access_key` is the
operator's; `identity(name)` gives the MLflow server's, the branches' and the stands'."""

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tests.harness import identities
from tests.harness.identities import S3Identity
from tests.harness.ports import HOST, reserve_ports
from tests.harness.processes import ServerProcess, start_with_retries
from tests.harness.tools import WEED_BIN, require

BUCKET = "mlops"
REGION = "us-east-1"
READY_TIMEOUT_SECONDS = 30.0
# `weed mini`'s embedded worker dials the admin server at admin HTTP port + 10000 whatever
# -admin.port.grpc says, so the admin gRPC port must sit exactly there.
_ADMIN_GRPC_OFFSET = 10000
_MAX_UNIX_SOCKET_PATH = 108


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str = REGION
    bucket: str = BUCKET
    process: ServerProcess | None = field(default=None, repr=False, compare=False)
    startup_seconds: float = field(default=0.0, compare=False)
    identities: tuple[S3Identity, ...] = field(default=(), repr=False, compare=False)

    @property
    def secret_keys(self) -> list[str]:
        """Every secret key of this store: none may appear in a log."""
        return [self.secret_key, *(identity.secret_key for identity in self.identities)]

    def identity(self, name: str) -> S3Identity:
        return next(identity for identity in self.identities if identity.name == name)

    @property
    def env(self) -> dict[str, str]:
        """The credentials a process reaching this server needs (boto3 reads them)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client(self, *, access_key: str | None = None, secret_key: str | None = None) -> Any:
        """A boto3 S3 client for this server (path-style); other keys test refusals."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=self.region,
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=2,
                read_timeout=20,
                retries={"mode": "standard", "max_attempts": 2},
            ),
        )


def platform_identities(*project_slugs: str) -> tuple[S3Identity, ...]:
    """The operator, the MLflow server, the stands, and the branches of every project (one
    key), plus one branch key per project in `project_slugs`."""
    return (
        identities.operator(BUCKET),
        identities.mlflow_server(BUCKET),
        identities.stands(BUCKET),
        identities.branches(BUCKET),
        *(identities.branches(BUCKET, slug) for slug in project_slugs),
    )


def _weed_argv(workdir: Path, s3_config: Path) -> tuple[list[str], int]:
    with reserve_ports() as ports:
        admin_port = ports.pair(_ADMIN_GRPC_OFFSET)
        port_flags = {
            "master.port": ports.any(),
            "master.port.grpc": ports.any(),
            "volume.port": ports.any(),
            "volume.port.grpc": ports.any(),
            "filer.port": ports.any(),
            "filer.port.grpc": ports.any(),
            "s3.port": ports.any(),
            "s3.port.grpc": ports.any(),
            "admin.port": admin_port,
            "admin.port.grpc": admin_port + _ADMIN_GRPC_OFFSET,
        }
    argv = [
        str(WEED_BIN),
        f"-logdir={workdir / 'logs'}",
        "mini",
        f"-dir={workdir / 'data'}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        f"-s3.config={s3_config}",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-volume.preStopSeconds=0",
        *(f"-{flag}={port}" for flag, port in port_flags.items()),
    ]
    # By default the S3 gateway leaves /tmp/seaweedfs-s3-<port>.sock behind at exit.
    s3_socket, filer_socket = workdir / "s3.sock", workdir / "filer.sock"
    if len(os.fsencode(s3_socket)) < _MAX_UNIX_SOCKET_PATH:
        argv += [f"-s3.localSocket={s3_socket}", f"-filer.localSocket={filer_socket}"]
    return argv, port_flags["s3.port"]


def _answers(server: S3Server) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        server.client().list_buckets()
    except (BotoCoreError, ClientError):
        return False
    return True


def start_seaweedfs(workdir: Path, accounts: tuple[S3Identity, ...] | None = None) -> S3Server:
    """Start SeaweedFS under ``workdir`` with `accounts` (default `platform_identities()`,
    the operator's first) and create the ``mlops`` bucket."""
    require(WEED_BIN)
    workdir.mkdir(parents=True, exist_ok=True)
    accounts = accounts or platform_identities()
    access_key, secret_key = accounts[0].access_key, accounts[0].secret_key
    s3_config = workdir / "s3.json"
    identities.write_s3_config(s3_config, accounts)

    def start(attempt: int) -> S3Server:
        started = time.monotonic()
        attempt_dir = workdir / f"attempt{attempt}"
        (attempt_dir / "logs").mkdir(parents=True)
        argv, s3_port = _weed_argv(attempt_dir, s3_config)
        process = ServerProcess("SeaweedFS", argv, attempt_dir / "weed.log", cwd=attempt_dir)
        server = S3Server(
            f"http://{HOST}:{s3_port}",
            access_key,
            secret_key,
            process=process,
            identities=accounts,
        )
        try:
            process.wait_ready(lambda: _answers(server), READY_TIMEOUT_SECONDS, "S3")
            server.client().create_bucket(Bucket=BUCKET)
        except BaseException:
            process.stop()
            raise
        return replace(server, startup_seconds=time.monotonic() - started)

    return start_with_retries(start)
