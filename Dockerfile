# The image every modelci job (and every batch pod) runs: the modelci command at the same
# version as the ci-templates/ of the same commit, with its runtime dependencies only (no dev
# extra: MLflow's client, mlflow-skinny, not its server), git for the commits to the DAG bundle
# and GitOps repos, and uv, with which `modelci train` builds the model repo's own environment
# from its requirements file. tests/integration/test_package.py installs the same wheel and the
# same uv into a clean virtualenv and runs every subcommand from there.
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir uv==0.13.9
COPY pyproject.toml README.md /src/
COPY scripts /src/scripts
COPY charts /src/charts
RUN pip install --no-cache-dir /src && rm -rf /src
ENV MLFLOW_DISABLE_TELEMETRY=true
