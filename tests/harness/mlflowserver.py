"""A real ``mlflow server``: sqlite backend, artifacts proxied to the SeaweedFS bucket."""

import base64
import json
import os
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.ports import HOST, reserve_ports
from tests.harness.processes import ServerProcess, start_with_retries
from tests.harness.s3server import S3Server
from tests.harness.tools import MLFLOW_BIN, require

ARTIFACTS_DESTINATION = "s3://mlops/mlflow-artifacts"
# 10-20 s on an idle 2-core machine, over 35 s seen under load.
READY_TIMEOUT_SECONDS = 90.0


@dataclass(frozen=True)
class MlflowServer:
    tracking_uri: str
    s3: S3Server = field(repr=False)
    artifacts_destination: str = ARTIFACTS_DESTINATION
    process: ServerProcess | None = field(default=None, repr=False, compare=False)
    startup_seconds: float = field(default=0.0, compare=False)

    @property
    def env(self) -> dict[str, str]:
        """What a client process needs to track runs here (a fresh dict each time)."""
        return {
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "MLFLOW_S3_ENDPOINT_URL": self.s3.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.s3.access_key,
            "AWS_SECRET_ACCESS_KEY": self.s3.secret_key,
            "AWS_DEFAULT_REGION": self.s3.region,
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }


def server_env(s3: S3Server) -> dict[str, str]:
    # The caller's own MLflow and AWS settings must not leak into the test server.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_"))}
    env.update(
        {
            # Without this the server forks job workers that take gigabytes of memory.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_S3_ENDPOINT_URL": s3.endpoint_url,
            **_server_keys(s3),
            "AWS_DEFAULT_REGION": s3.region,
        }
    )
    return env


def _server_keys(s3: S3Server) -> dict[str, str]:
    """The MLflow server's own S3 identity, when the store has the platform's identities."""
    if any(identity.name == "mlflow-server" for identity in s3.identities):
        return s3.identity("mlflow-server").env
    return {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


AUTH_ADMIN = ("admin", "admin-password-for-tests")
# MLflow's basic-auth app: every user may read everything and create experiments (its creator
# manages it); writing to a registered model needs a permission on it, which its creator has.
_AUTH_CONFIG = """[mlflow]
default_permission = READ
database_uri = sqlite:///{database}
admin_username = {admin}
admin_password = {password}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
"""


def _create_users(tracking_uri: str, users: Mapping[str, str]) -> None:
    admin = base64.b64encode(":".join(AUTH_ADMIN).encode()).decode()
    for username, password in users.items():
        request = urllib.request.Request(
            f"{tracking_uri}/api/2.0/mlflow/users/create",
            data=json.dumps({"username": username, "password": password}).encode(),
            headers={"Authorization": f"Basic {admin}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200, response.read()


# MLflow's auth app checks the password of every request against werkzeug's default hash,
# scrypt: about 90 ms of CPU per request, which on 2 cores was minutes of the suite (Django's
# docs give tests the same advice). The users are created through MLflow's API as a platform
# would; then their stored hashes are swapped for one-round PBKDF2 ones, which the same
# `check_password_hash` verifies: every request is still authenticated by MLflow itself.
_TEST_PASSWORD_HASH = "pbkdf2:sha256:1"


def _rehash_passwords(auth_database: Path, passwords: Mapping[str, str]) -> None:
    from werkzeug.security import generate_password_hash

    with closing(sqlite3.connect(auth_database)) as connection, connection:
        for username, password in passwords.items():
            changed = connection.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?",
                (generate_password_hash(password, _TEST_PASSWORD_HASH), username),
            ).rowcount
            assert changed == 1, f"no MLflow user {username} in {auth_database}"


def start_mlflow(
    workdir: Path, s3: S3Server, *, users: Mapping[str, str] | None = None
) -> MlflowServer:
    """Start ``mlflow server`` with its database under ``workdir``; return once /health answers.

    With `users` (name -> password), the server runs MLflow's basic-auth app with those users
    besides `AUTH_ADMIN`."""
    require(MLFLOW_BIN)
    env = server_env(s3)

    def start(attempt: int) -> MlflowServer:
        started = time.monotonic()
        attempt_dir = workdir / f"attempt{attempt}"
        attempt_dir.mkdir(parents=True)
        with reserve_ports() as ports:
            port = ports.any()
        argv = [
            MLFLOW_BIN,
            "server",
            "--backend-store-uri",
            f"sqlite:///{attempt_dir / 'mlflow.db'}",
            "--artifacts-destination",
            ARTIFACTS_DESTINATION,
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            "1",
        ]
        if users is not None:
            config = attempt_dir / "basic_auth.ini"
            config.write_text(
                _AUTH_CONFIG.format(
                    database=attempt_dir / "auth.db", admin=AUTH_ADMIN[0], password=AUTH_ADMIN[1]
                )
            )
            argv += ["--app-name", "basic-auth"]
            env["MLFLOW_AUTH_CONFIG_PATH"] = str(config)
            env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = "csrf-key-of-this-test-server"
        process = ServerProcess(
            "MLflow server", argv, attempt_dir / "mlflow.log", env=env, cwd=attempt_dir
        )
        tracking_uri = f"http://{HOST}:{port}"
        try:
            process.wait_ready(
                lambda: _healthy(f"{tracking_uri}/health"), READY_TIMEOUT_SECONDS, "/health"
            )
            if users:
                _create_users(tracking_uri, users)
            if users is not None:
                _rehash_passwords(attempt_dir / "auth.db", {AUTH_ADMIN[0]: AUTH_ADMIN[1], **users})
        except BaseException:
            process.stop()
            raise
        return MlflowServer(
            tracking_uri, s3, process=process, startup_seconds=time.monotonic() - started
        )

    return start_with_retries(start)
