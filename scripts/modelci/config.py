"""The model config file (`mlops.yaml`) a data scientist keeps in a model repository.

This module holds the typed, validated form of the file. It is pure: no I/O beyond reading
the file itself, no knowledge of MLflow, git, S3 or GitLab.
"""

from __future__ import annotations

from dataclasses import dataclass

CONFIG_FILE_NAME = "mlops.yaml"
DAG_KINDS = ("training", "inference", "monitoring")


@dataclass(frozen=True)
class Resources:
    cpu: str  # Kubernetes quantity, always a string: "500m", "1"
    memory: str  # Kubernetes quantity: "512Mi", "2Gi"
    gpu: int = 0  # nvidia.com/gpu count


@dataclass(frozen=True)
class MetricThreshold:
    name: str  # an MLflow metric key the training run logs
    min: float | None = None  # pass when value >= min
    max: float | None = None  # pass when value <= max


@dataclass(frozen=True)
class Gate:
    metrics: tuple[MetricThreshold, ...]
    compare_with_production: bool = True
    tolerance: float = 0.0  # absolute degradation allowed against the production model


@dataclass(frozen=True)
class Train:
    entrypoint: str  # path relative to the repository root
    args: tuple[str, ...] = ()
    resources: Resources = Resources(cpu="1", memory="2Gi")


@dataclass(frozen=True)
class Dag:
    kind: str  # one of DAG_KINDS, unique per model
    entrypoint: str  # path relative to the repository root
    args: tuple[str, ...] = ()
    schedule: str | None = None  # cron expression or preset ("@daily"); None: triggered by hand
    retries: int = 1
    resources: Resources = Resources(cpu="1", memory="2Gi")


@dataclass(frozen=True)
class Batch:
    dags: tuple[Dag, ...] = ()


@dataclass(frozen=True)
class Online:
    enabled: bool = False
    min_replicas: int = 1
    max_replicas: int = 1
    resources: Resources = Resources(cpu="1", memory="2Gi")


@dataclass(frozen=True)
class Model:
    name: str  # [a-z][a-z0-9-]*, at most 20 characters, unique in the file
    flavor: str  # the MLflow flavor the training script logs with ("sklearn", "pyfunc", ...)
    train: Train
    gate: Gate
    batch: Batch = Batch()
    online: Online = Online()


@dataclass(frozen=True)
class Stand:
    name: str  # e.g. "staging", "production"
    manual: bool = False  # promotion into this stand needs a manual, protected job


@dataclass(frozen=True)
class Config:
    path: str  # the file it was read from, as given
    version: int
    python: str  # "3.11": the Python version of the model code
    image: str | None  # image for batch pods; None: the platform's runtime image
    models: tuple[Model, ...]
    stands: tuple[Stand, ...]

    def model(self, name: str) -> Model:
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(name)
