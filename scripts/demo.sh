#!/usr/bin/env bash
# The main job on the embedded default: installs what is missing (scripts/bootstrap.sh), then
# runs a complete branch lifecycle of examples/churn through the real CI templates against a
# local MLflow, a local S3 and local git remotes (see scripts/demo.py).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
exec "$ROOT/.venv/bin/python" "$ROOT/scripts/demo.py"
