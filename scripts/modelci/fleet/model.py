"""The fleet as data: what every stand serves, each model's audit trail, gated metrics and
monitoring, and the branch environments with what they hold. Pure: `gather.py` fills it from
the systems, `render.py` draws it; neither knows the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

PROJECT_SCOPE = "project"
PLATFORM_SCOPE = "platform"

MLFLOW = "MLflow"
S3 = "S3"
GITLAB = "GitLab"
DAG_REPO = "DAG bundle repo"
GITOPS_REPO = "GitOps repo"
SOURCES = (MLFLOW, S3, GITLAB, DAG_REPO, GITOPS_REPO)
# Which sources each section of a page is built from: a section names those it could not read.
MODEL_SOURCES = (MLFLOW,)
ENVIRONMENT_SOURCES = (DAG_REPO, GITOPS_REPO, S3, GITLAB)


@dataclass(frozen=True)
class Source:
    """One system the page was built from: where, how many requests, and what went wrong."""

    name: str  # one of SOURCES
    where: str  # its address, without credentials
    requests: int = 0
    problem: str = ""  # "" when it was read


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Serving:
    """What one stand serves of one model, and how it got there (the version's audit tags)."""

    stand: str
    version: str
    run_id: str
    since: str  # ISO 8601, "" when not recorded
    by: str
    action: str  # promote, rollback, deploy
    merge_request: str
    pipeline: str
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class AuditRow:
    """One move of a stand's alias, as the version it moved to records it."""

    at: str
    stand: str
    action: str
    version: str
    previous_version: str
    by: str
    merge_request: str
    pipeline: str
    reason: str  # why a version that failed its gate was deployed


@dataclass(frozen=True)
class VersionMetrics:
    version: int
    run_id: str
    gate: str  # passed, failed or ""
    metrics: dict[str, float]


@dataclass(frozen=True)
class Threshold:
    metric: str
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class MonitoringPoint:
    """One monitoring check of one environment of a model."""

    at: datetime
    run_id: str
    verdict: str  # passed, failed, no-data
    decision: str  # the retraining decision: none, skip, triggering, triggered, ...
    psi: dict[str, float]  # feature -> PSI
    data: dict[str, float]  # null_share.<col>, out_of_range.<col> -> share
    quality: float | None  # the ground-truth metric, when there was ground truth


@dataclass(frozen=True)
class MonitoringBounds:
    """What the model's mlops.yaml allows; None fields are not known (another project's)."""

    max_psi: float | None = None
    max_null_share: float | None = None
    quality_metric: str = ""
    quality_min: float | None = None
    quality_max: float | None = None


@dataclass(frozen=True)
class Monitoring:
    environment: str
    points: tuple[MonitoringPoint, ...]
    bounds: MonitoringBounds = MonitoringBounds()


@dataclass(frozen=True)
class ModelView:
    name: str
    registered_model: str
    serving: tuple[Serving, ...]  # one per stand that serves it
    audit: tuple[AuditRow, ...]  # newest first
    versions: tuple[VersionMetrics, ...]  # by version number
    thresholds: tuple[Threshold, ...] = ()
    monitoring: tuple[Monitoring, ...] = ()
    links: tuple[Link, ...] = ()
    stands: tuple[str, ...] = ()  # its project's stands in order; () when its config is unknown


@dataclass(frozen=True)
class BranchEnvironment:
    """A feature environment found in the shared repos or S3."""

    name: str  # b-...
    branch: str  # "" when no branch of the project maps to it
    live: bool | None  # None when the project's branches could not be read
    models: tuple[str, ...]
    places: tuple[str, ...]  # where it was found: DAG bundle repo, GitOps repo, S3
    created: datetime | None = None
    last_push: datetime | None = None
    auto_stop_at: datetime | None = None
    scratch_bytes: int | None = None  # None when S3 could not be read
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class ProjectView:
    path: str  # the GitLab project path; the slug when only that is known
    slug: str
    models: tuple[ModelView, ...]
    environments: tuple[BranchEnvironment, ...]
    archive_bytes: int | None = None  # the project's cache of environment archives
    archive_count: int = 0
    cap: int = 0  # most live branch environments allowed; 0: no cap
    problems: dict[str, str] = field(default_factory=dict)  # source -> what went wrong

    @property
    def live(self) -> tuple[BranchEnvironment, ...]:
        return tuple(env for env in self.environments if env.live)

    @property
    def stale(self) -> tuple[BranchEnvironment, ...]:
        return tuple(env for env in self.environments if env.live is False)

    @property
    def scratch_bytes(self) -> int | None:
        sizes = [env.scratch_bytes for env in self.environments]
        return None if any(size is None for size in sizes) else sum(s or 0 for s in sizes)


@dataclass(frozen=True)
class Fleet:
    scope: str  # PROJECT_SCOPE or PLATFORM_SCOPE
    built_at: datetime
    stands: tuple[str, ...]
    projects: tuple[ProjectView, ...]
    sources: tuple[Source, ...]
    title: str = ""

    def problem(self, source: str) -> str:
        return next((s.problem for s in self.sources if s.name == source), "")
