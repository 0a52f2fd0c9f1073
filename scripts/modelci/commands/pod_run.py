"""`modelci pod-run`: what a batch pod runs. Fetches the model repo's code archive (the exact
commit the pipeline deployed) from S3, unpacks it, and runs the command inside it, with the
run values it names (`${ds}`, ...; see `macros.py`) taken from the pod's environment. With
`--env`, the model's environment archive (the one it was trained in) is unpacked too, and the
command runs with its Python; a missing or corrupt archive stops the pod before the command."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ..errors import ModelciError
from ..macros import MACROS, env_name, expand


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--code", required=True, help="s3:// URI of the code archive (tar.gz)")
    parser.add_argument(
        "--env", help="s3:// URI of the model's environment archive (default: the image's Python)"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")


def run(args: argparse.Namespace) -> int:
    from ..s3 import S3Store

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise ModelciError("pod-run needs a command after --, e.g. -- python score.py")
    command = with_run_values(command, os.environ)
    store = S3Store(
        os.environ.get("MLFLOW_S3_ENDPOINT_URL"), os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    )
    env = dict(os.environ)
    if args.env:
        environment = _environment(store, args.env)
        env.update(
            VIRTUAL_ENV=str(environment),
            PATH=f"{environment / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        )
    archive = store.get_bytes(args.code)
    with tempfile.TemporaryDirectory(prefix="modelci-code-") as workdir:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            tar.extractall(workdir, filter="data")  # refuses absolute paths, `..` and devices
        where = f" with the environment {args.env}" if args.env else ""
        print(f"running {command} in the code of {args.code}{where}", flush=True)
        return subprocess.run(command, cwd=workdir, env=env, check=False).returncode


def _environment(store, uri: str) -> Path:
    """The environment archive at `uri`, unpacked (once per machine and key)."""
    from ..modelenv import (
        ARCHIVE_FILE,
        COMPLETE_MARKER,
        archive_key,
        default_cache_dir,
        unpack_environment,
    )

    key = archive_key(uri)
    if key is None:
        raise ModelciError(
            f"--env {uri!r} is not an environment archive URI (.../<key>/{ARCHIVE_FILE}, as "
            "the train job records it on the MLflow run)"
        )
    target = default_cache_dir() / key
    if not (target / COMPLETE_MARKER).is_file():
        if not store.exists(uri):
            raise ModelciError(
                f"the model's environment archive {uri} does not exist; nothing was run. Run "
                "the branch's pipeline again: its train job builds and uploads it"
            )
        unpack_environment(store.get_bytes(uri), target, key=key, source=uri)
    return target


def with_run_values(command: list[str], env: Mapping[str, str]) -> list[str]:
    """`command` with each `${macro}` replaced by the value the DAG put in the environment."""
    values = {macro: env.get(env_name(macro), "") for macro in MACROS}
    try:
        return [expand(part, values) for part in command]
    except ValueError as error:
        raise ModelciError(f"pod-run: {error} (write $${{ for a literal ${{)") from None
