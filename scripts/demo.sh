#!/usr/bin/env bash
# The main job on the embedded default: installs what the demo runs (scripts/bootstrap.sh demo:
# the package with the MLflow server and SeaweedFS, and gitlab-ci-local; not the Airflow and
# MLServer environments the tests use), then runs a complete branch lifecycle of examples/churn
# through the real CI templates against a local MLflow, a local S3 and local git remotes (see
# scripts/demo.py).
#
#   bash scripts/demo.sh          the lifecycle, then stop the services and exit
#   bash scripts/demo.sh --keep   the same, then keep MLflow, S3 and the git remotes up, with
#                                 their addresses printed, until Ctrl-C
#   bash scripts/demo.sh --repo DIR [--project GROUP/NAME]
#                                 the same lifecycle on your own model repository (its HEAD)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
expect_value=""
for arg in "$@"; do
  if [ -n "$expect_value" ]; then expect_value=""; continue; fi
  case "$arg" in
    --keep) ;;
    --repo | --project) expect_value="$arg" ;;
    -h | --help) usage; exit 0 ;;
    *) echo "demo: unknown argument $arg" >&2; usage >&2; exit 2 ;;
  esac
done
if [ -n "$expect_value" ]; then echo "demo: $expect_value needs a value" >&2; exit 2; fi
# Measured on a 2-core machine: the demo-mode install took 94 s with an empty pip cache and left
# .venv 1.1 GB and .tools 19 MB; the first lifecycle took 60 s and built the model's environment
# (.cache, 0.6 GB) from a warm uv cache.
echo "[demo] The first run installs about 1.8 GB into this checkout (.venv, .tools, .cache) and takes 3 to 5 minutes, depending on the network; later runs take about a minute."
bash "$ROOT/scripts/bootstrap.sh" demo
exec "$ROOT/.venv/bin/python" "$ROOT/scripts/demo.py" "$@"
