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

from ..errors import ModelciError
from ..macros import MACROS, env_name, expand
from ..modelenv import default_cache_dir, environment_from_archive


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
    store = S3Store.from_env(os.environ)
    env = dict(os.environ)
    if args.env:
        environment = environment_from_archive(store, args.env, default_cache_dir())
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


def with_run_values(command: list[str], env: Mapping[str, str]) -> list[str]:
    """`command` with each `${macro}` replaced by the value the DAG put in the environment."""
    values = {macro: env.get(env_name(macro), "") for macro in MACROS}
    try:
        return [expand(part, values) for part in command]
    except ValueError as error:
        raise ModelciError(f"pod-run: {error} (write $${{ for a literal ${{)") from None
