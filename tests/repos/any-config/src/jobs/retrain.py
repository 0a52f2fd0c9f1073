"""A drawn config may name this file as any entrypoint: it trains as train.py does."""

import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[2] / "train.py"), run_name="__main__")
