# The image every modelci job (and every batch pod) runs: the modelci command at the same
# version as the ci-templates/ of the same commit.
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md /src/
COPY scripts /src/scripts
COPY charts /src/charts
RUN pip install --no-cache-dir /src && rm -rf /src
ENV MLFLOW_DISABLE_TELEMETRY=true
