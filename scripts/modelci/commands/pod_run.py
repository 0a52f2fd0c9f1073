"""`modelci pod-run`: what a batch pod runs. Fetches the model repo's code archive (the exact
commit the pipeline deployed) from S3, unpacks it, and runs the command inside it, with the
run values it names (`${ds}`, ...; see `macros.py`) taken from the pod's environment. What the
command writes to MODELCI_OUTPUT_DIR is uploaded to the environment's data prefix
(MODELCI_DATA_URI) when it succeeds. With
`--env`, the model's environment archive (the one it was trained in) is unpacked too, and the
command runs with its Python; a missing or corrupt archive stops the pod before the command."""

from __future__ import annotations

import argparse
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ..config.macros import expand, values_from_env
from ..errors import ModelciError
from ..lifecycle.modelenv import default_cache_dir, environment_from_archive

OUTPUT_VARIABLE = "MODELCI_OUTPUT_DIR"  # where the command writes what goes to the data prefix
DATA_VARIABLE = "MODELCI_DATA_URI"  # the environment's data prefix, set by the DAG


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--code", required=True, help="s3:// URI of the code archive (tar.gz)")
    parser.add_argument(
        "--env", help="s3:// URI of the model's environment archive (default: the image's Python)"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")


def run(args: argparse.Namespace) -> int:
    from ..systems.s3 import S3Store

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
    with tempfile.TemporaryDirectory(prefix="modelci-pod-") as scratch:
        workdir, output = Path(scratch) / "code", Path(scratch) / "output"
        output.mkdir()
        # Unpacked as it downloads: the archive is never held in memory, whatever its size.
        with (
            store.open_object(args.code) as stream,
            tarfile.open(fileobj=stream, mode="r|gz") as tar,
        ):
            tar.extractall(workdir, filter="data")  # refuses absolute paths, `..` and devices
        env[OUTPUT_VARIABLE] = str(output)
        env.update(local_model(store, env, Path(scratch) / "model"))
        where = f" with the environment {args.env}" if args.env else ""
        print(f"running {command} in the code of {args.code}{where}", flush=True)
        code = subprocess.run(command, cwd=workdir, env=env, check=False).returncode
        if code == 0:
            upload_output(store, output, os.environ.get(DATA_VARIABLE, ""))
        return code


def local_model(store, env: Mapping[str, str], where: Path) -> dict[str, str]:
    """MODEL_URI as a local directory when it is an s3:// one: the model is downloaded here,
    as KServe's storage initializer does for the server, so that the model's environment
    needs no S3 client of its own (MLflow would need boto3 in it to read s3://)."""
    uri = env.get("MODEL_URI", "")
    if not uri.startswith("s3://"):
        return {}
    count = store.download_prefix(uri, where)
    print(f"downloaded the model {uri} ({count} files)", flush=True)
    return {"MODEL_URI": str(where), "MODELCI_MODEL_STORAGE_URI": uri}


def upload_output(store, output: Path, data_uri: str) -> None:
    """Put what the command wrote in MODELCI_OUTPUT_DIR under the environment's data prefix,
    keeping relative paths (scores/2026-12-01.csv -> <data prefix>scores/2026-12-01.csv)."""
    files = sorted(path for path in output.rglob("*") if path.is_file())
    if files and not data_uri:
        print(
            f"pod-run: WARNING: {DATA_VARIABLE} is not set; {len(files)} output file(s) kept "
            "in the pod only",
            flush=True,
        )
        return
    for path in files:
        target = data_uri.rstrip("/") + "/" + path.relative_to(output).as_posix()
        store.put_bytes(target, path.read_bytes())
        print(f"uploaded {target}", flush=True)


def with_run_values(command: list[str], env: Mapping[str, str]) -> list[str]:
    """`command` with each `${macro}` replaced by the value the DAG put in the environment."""
    values = values_from_env(env)
    try:
        return [expand(part, values) for part in command]
    except ValueError as error:
        raise ModelciError(f"pod-run: {error} (write $${{ for a literal ${{)") from None
