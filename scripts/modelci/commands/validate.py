"""`modelci validate`: check the model config file; write nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import CONFIG_FILE_NAME, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=CONFIG_FILE_NAME,
        help=f"the model config file (default: {CONFIG_FILE_NAME})",
    )


def run(args: argparse.Namespace) -> int:
    config = load_config(Path(args.config))
    models = ", ".join(model.name for model in config.models)
    print(f"{config.path}: valid ({len(config.models)} model(s): {models})")
    return 0
