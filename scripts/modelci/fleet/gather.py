"""Reading the fleet from the systems, in bulk: MLflow's searches (pages of a thousand), one
listing per S3 prefix, one read of each shared repo's tree, a page of GitLab per hundred
branches or environments of a project. Never one call per run, version or day.

A source that cannot be read is recorded as the problem of that source; the sections built
from it say so, and the rest of the fleet is still built.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..config.naming import (
    BRANCHES_SCRATCH,
    FEATURE_PREFIX,
    feature_environment,
    names_for,
    project_slug_of,
)
from ..errors import ModelciError
from ..lifecycle.promotion import AUDIT_PREFIX
from ..lifecycle.retraining import TAG_DECISION, TAG_KIND, TAG_MONITOR, TAG_MONITOR_DAY
from ..systems.tracking import TAG_ENVIRONMENT, TAG_GATE, TAG_MODEL, TAG_PROJECT
from .model import (
    DAG_REPO,
    GITLAB,
    GITOPS_REPO,
    MLFLOW,
    PLATFORM_SCOPE,
    PROJECT_SCOPE,
    S3,
    AuditRow,
    BranchEnvironment,
    Fleet,
    Link,
    ModelView,
    Monitoring,
    MonitoringBounds,
    MonitoringPoint,
    ProjectView,
    Serving,
    Source,
    Threshold,
    VersionMetrics,
)

MONITORING_SUFFIX = "/monitoring"
ARCHIVES_DIR = "envs"  # lifecycle.modelenv.ARCHIVES_DIR: <scratch>/envs/<project slug>/
PSI_PREFIX = "psi."
DATA_PREFIXES = ("null_share.", "out_of_range.")
QUALITY_METRICS = ("accuracy", "mae", "rmse")
GITLAB_PAGE = 100


@dataclass(frozen=True)
class ProjectConfig:
    """What a project's mlops.yaml says that the page draws against (project scope only)."""

    stands: tuple[str, ...]
    thresholds: Mapping[str, tuple[Threshold, ...]]  # model -> gate thresholds
    bounds: Mapping[str, MonitoringBounds]  # model -> monitoring bounds
    models: tuple[str, ...] = ()

    @classmethod
    def of(cls, config: Any) -> ProjectConfig:
        thresholds, bounds = {}, {}
        for model in config.models:
            thresholds[model.name] = tuple(
                Threshold(m.name, m.min, m.max) for m in model.gate.metrics
            )
            spec = model.monitoring
            if spec is not None:
                truth = spec.ground_truth
                bounds[model.name] = MonitoringBounds(
                    max_psi=spec.max_psi,
                    max_null_share=spec.max_null_share,
                    quality_metric=truth.metric if truth else "",
                    quality_min=truth.min if truth else None,
                    quality_max=truth.max if truth else None,
                )
        return cls(
            tuple(s.name for s in config.stands),
            thresholds,
            bounds,
            tuple(m.name for m in config.models),
        )


@dataclass(frozen=True)
class Places:
    """Where the sources are, and how to link to what they hold."""

    tracking_uri: str  # without credentials, for links
    scratch_uri: str
    airflow_url: str = ""
    stands_airflow_url: str = ""
    gitlab_url: str = ""
    model_api: Callable[[str, str, str, str], str] | None = None  # (project, branch, model, stand)


@dataclass
class Readers:
    """The systems, made by the command (or a test, a benchmark): each may be None when it
    is not configured, and each may fail; `where` is what the page names them by."""

    mlflow: Any = None  # systems.mlflow_search.MlflowSearch
    store: Any = None  # systems.s3.S3Store
    dag_repo: Any = None  # systems.gitrepo.RemoteRepo of the feature environments' branch
    gitops_repo: Any = None
    gitlab: Any = None  # (server URL, token) or None
    where: dict[str, str] = field(default_factory=dict)


@dataclass
class _Read:
    """What was read, source by source, and what failed."""

    problems: dict[str, str] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def attempt(self, source: str, read: Callable[[], Any], empty: Any) -> Any:
        try:
            return read()
        except ModelciError as error:
            self.problems[source] = str(error)
            return empty


def gather(
    readers: Readers,
    places: Places,
    *,
    project: str | None,
    configs: Mapping[str, ProjectConfig] | None = None,
    cap: int = 0,
    days: int = 30,
    now: datetime | None = None,
) -> Fleet:
    """The fleet of `project` (project scope), or of every project the sources know.
    `configs` are the mlops.yaml files at hand, by project path (the job's own project): the
    gate thresholds and monitoring bounds drawn on that project's charts."""
    now = now or datetime.now(UTC)
    configs = configs or {}
    read = _Read()
    slug = project_slug_of(project) if project else None
    since = now - timedelta(days=days)
    mlflow = read.attempt(MLFLOW, lambda: _read_mlflow(readers, read, slug, project, since), None)
    trees = {
        DAG_REPO: read.attempt(
            DAG_REPO, lambda: _tree(readers.dag_repo, "dags", read, DAG_REPO), None
        ),
        GITOPS_REPO: read.attempt(
            GITOPS_REPO, lambda: _tree(readers.gitops_repo, "environments", read, GITOPS_REPO), None
        ),
    }
    scratch = read.attempt(S3, lambda: _read_s3(readers, places, read, slug), None)
    paths = _project_paths(project, mlflow, trees, scratch)
    gitlab = {}
    if readers.gitlab is not None and paths:
        gitlab = read.attempt(GITLAB, lambda: _read_gitlab(readers, read, paths), {})
    elif readers.gitlab is None:
        read.problems[GITLAB] = "MODELCI_GITLAB_TOKEN or CI_SERVER_URL is not set"
    stands = _stands(configs, mlflow)
    projects = []
    for path, project_slug in sorted(paths.items(), key=lambda item: item[0]):
        config = configs.get(path)
        models = _models(mlflow, project_slug, path, places, config) if mlflow else ()
        environments = _environments(
            project_slug, path, trees, scratch, gitlab.get(path) if path in gitlab else None,
            places,
        )  # fmt: skip
        archive_bytes, archive_count = _archives(scratch, project_slug)
        projects.append(
            ProjectView(
                path=path,
                slug=project_slug,
                models=models,
                environments=environments,
                archive_bytes=archive_bytes,
                archive_count=archive_count,
                cap=cap,
                problems=dict(read.problems),
            )
        )
    sources = tuple(
        Source(
            name,
            readers.where.get(name, ""),
            read.requests.get(name, 0),
            read.problems.get(name, ""),
        )
        for name in (MLFLOW, S3, GITLAB, DAG_REPO, GITOPS_REPO)
    )
    return Fleet(
        scope=PROJECT_SCOPE if project else PLATFORM_SCOPE,
        built_at=now,
        stands=stands,
        projects=tuple(projects),
        sources=sources,
        title=project or "The fleet",
    )


# --- MLflow -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Mlflow:
    experiments: dict[str, str]  # id -> name
    aliases: dict[str, dict[str, str]]  # registered model -> alias -> version
    versions: dict[str, list[Any]]  # registered model -> RegisteredVersion list
    runs: dict[str, Any]  # run id -> Run (the versions' runs)
    monitoring: list[Any]  # monitoring runs, oldest first
    project_of_slug: dict[str, str]


def _read_mlflow(
    readers: Readers, read: _Read, slug: str | None, project: str | None, since: datetime
) -> _Mlflow | None:
    search = readers.mlflow
    if search is None:
        raise ModelciError("MLFLOW_TRACKING_URI is not set")
    try:
        experiments = {e.experiment_id: e.name for e in search.experiments()}
        if project:
            experiments = {
                key: name for key, name in experiments.items() if name.startswith(f"{project}/")
            }
        models = [m for m in search.registered_models() if _mine(m.name, slug)]
        aliases = {m.name: m.aliases for m in models}
        versions: dict[str, list[Any]] = defaultdict(list)
        for version in search.model_versions(f"name LIKE '{slug}.%'" if slug else ""):
            if _mine(version.name, slug):
                versions[version.name].append(version)
        training = [k for k, n in experiments.items() if not n.endswith(MONITORING_SUFFIX)]
        watching = [k for k, n in experiments.items() if n.endswith(MONITORING_SUFFIX)]
        run_ids = [v.run_id for found in versions.values() for v in found if v.run_id]
        runs = {run.info.run_id: run for run in search.runs_by_id(training, run_ids)}
        since_ms = int(since.timestamp() * 1000)
        monitoring = search.runs(
            watching,
            f"tags.`{TAG_KIND}` = 'monitoring' and attributes.start_time >= {since_ms}",
        ) if watching else []  # fmt: skip
    finally:
        read.requests[MLFLOW] += search.requests
    project_of_slug = {}
    for run in [*runs.values(), *monitoring]:
        path = run.data.tags.get(TAG_PROJECT, "")
        if path:
            project_of_slug[project_slug_of(path)] = path
    for name in experiments.values():
        path = name.removesuffix(MONITORING_SUFFIX).rpartition("/")[0]
        if path and project_slug_of(path) not in project_of_slug:
            project_of_slug[project_slug_of(path)] = path
    return _Mlflow(experiments, aliases, dict(versions), runs, monitoring, project_of_slug)


def _mine(registered: str, slug: str | None) -> bool:
    return slug is None or registered.startswith(f"{slug}.")


def _stands(configs: Mapping[str, ProjectConfig], mlflow: _Mlflow | None) -> tuple[str, ...]:
    """The stands in their order: the configs' first, then the other aliases found."""
    ordered = [stand for config in configs.values() for stand in config.stands]
    found = {alias for aliases in (mlflow.aliases.values() if mlflow else ()) for alias in aliases}
    ordered += [s for s in ("staging", "production") if s in found]
    return tuple(dict.fromkeys(ordered + sorted(found)))


def _models(
    mlflow: _Mlflow,
    slug: str,
    path: str,
    places: Places,
    config: ProjectConfig | None,
) -> tuple[ModelView, ...]:
    # Every model the project trains (its MLflow experiment), registered yet or not.
    trained = {
        f"{slug}.{name.rpartition('/')[2]}"
        for name in mlflow.experiments.values()
        if not name.endswith(MONITORING_SUFFIX) and name.rpartition("/")[0] == path
    }
    registered = sorted(
        name for name in set(mlflow.aliases) | set(mlflow.versions) | trained if _mine(name, slug)
    )
    monitoring = _monitoring_by_model(mlflow.monitoring, slug)
    views = []
    for name in registered:
        model = name[len(slug) + 1 :]
        versions = sorted(mlflow.versions.get(name, []), key=lambda v: int(v.version))
        views.append(
            ModelView(
                name=model,
                registered_model=name,
                stands=config.stands if config else (),
                serving=_serving(name, model, path, versions, mlflow, places),
                audit=_audit(versions),
                versions=tuple(
                    VersionMetrics(
                        int(v.version),
                        v.run_id,
                        _run_tag(mlflow, v.run_id, TAG_GATE),
                        _run_metrics(mlflow, v.run_id),
                    )
                    for v in versions
                ),
                thresholds=config.thresholds.get(model, ()) if config else (),
                monitoring=tuple(
                    Monitoring(
                        env,
                        tuple(points),
                        config.bounds.get(model, MonitoringBounds())
                        if config
                        else MonitoringBounds(),
                    )
                    for env, points in sorted(monitoring.get(model, {}).items())
                ),
                links=(Link("MLflow registered model", f"{places.tracking_uri}/#/models/{name}"),)
                if places.tracking_uri
                else (),
            )
        )
    return tuple(views)


def _run_tag(mlflow: _Mlflow, run_id: str, tag: str) -> str:
    run = mlflow.runs.get(run_id)
    return run.data.tags.get(tag, "") if run else ""


def _run_metrics(mlflow: _Mlflow, run_id: str) -> dict[str, float]:
    run = mlflow.runs.get(run_id)
    return dict(run.data.metrics) if run else {}


def _audit_fields(tags: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """stand -> field -> value, from `modelci.stand.<stand>.<field>` tags."""
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for key, value in tags.items():
        if key.startswith(f"{AUDIT_PREFIX}."):
            stand, _, name = key[len(AUDIT_PREFIX) + 1 :].partition(".")
            if stand and name:
                found[stand][name] = value
    return found


def _serving(
    registered: str, model: str, path: str, versions: Sequence[Any], mlflow: _Mlflow, places: Places
) -> tuple[Serving, ...]:
    by_number = {v.version: v for v in versions}
    served = []
    for stand, number in sorted(mlflow.aliases.get(registered, {}).items()):
        version = by_number.get(number)
        tags = version.tags if version else {}
        audit = _audit_fields(tags).get(stand, {})
        run_id = version.run_id if version else ""
        served.append(
            Serving(
                stand=stand,
                version=number,
                run_id=run_id,
                since=audit.get("at", ""),
                by=audit.get("by", ""),
                action=audit.get("action", ""),
                merge_request=audit.get("merge_request", ""),
                pipeline=audit.get("pipeline", ""),
                links=_stand_links(registered, model, path, stand, number, run_id, mlflow, places),
            )
        )
    return tuple(served)


def _stand_links(
    registered: str, model: str, path: str, stand: str, number: str, run_id: str,
    mlflow: _Mlflow, places: Places,
) -> tuple[Link, ...]:  # fmt: skip
    links = []
    if places.tracking_uri:
        links.append(
            Link("MLflow version", f"{places.tracking_uri}/#/models/{registered}/versions/{number}")
        )
        run = mlflow.runs.get(run_id)
        if run is not None:
            links.append(
                Link(
                    "MLflow run",
                    f"{places.tracking_uri}/#/experiments/{run.info.experiment_id}/runs/{run_id}",
                )
            )
    try:
        names = names_for(path, "main", model, stand=stand)
    except ValueError:
        return tuple(links)
    airflow = (places.stands_airflow_url or places.airflow_url).rstrip("/")
    if airflow:
        links.append(
            Link("Airflow DAGs", f"{airflow}/dags?search={names.project_slug}__{stand}__{model}")
        )
    if places.model_api is not None:
        links.append(Link("Model API", places.model_api(path, "main", model, stand)))
    if places.gitlab_url and "/" in path:
        links.append(
            Link(
                "GitLab environment",
                f"{places.gitlab_url.rstrip('/')}/{path}/-/environments?search={stand}",
            )
        )
    return tuple(links)


def _audit(versions: Sequence[Any]) -> tuple[AuditRow, ...]:
    rows = []
    for version in versions:
        for stand, fields in _audit_fields(version.tags).items():
            if "action" not in fields:
                continue
            rows.append(
                AuditRow(
                    at=fields.get("at", ""),
                    stand=stand,
                    action=fields["action"],
                    version=version.version,
                    previous_version=fields.get("previous_version", ""),
                    by=fields.get("by", ""),
                    merge_request=fields.get("merge_request", ""),
                    pipeline=fields.get("pipeline", ""),
                    reason=fields.get("gate_override", ""),
                )
            )
    return tuple(sorted(rows, key=lambda row: (row.at, row.stand, int(row.version)), reverse=True))


def _checked_day(day: str, start_time_ms: int) -> datetime:
    """The data's day a monitoring run checked (its DAG run's ds), else when the check ran."""
    try:
        return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return datetime.fromtimestamp(start_time_ms / 1000, UTC)


def _monitoring_by_model(
    runs: Iterable[Any], slug: str
) -> dict[str, dict[str, list[MonitoringPoint]]]:
    """model -> environment -> points, oldest first."""
    found: dict[str, dict[str, list[MonitoringPoint]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        tags = run.data.tags
        if project_slug_of(tags.get(TAG_PROJECT, "")) != slug:
            continue
        metrics = run.data.metrics
        quality = next((metrics[m] for m in QUALITY_METRICS if m in metrics), None)
        found[tags.get(TAG_MODEL, "?")][tags.get(TAG_ENVIRONMENT, "?")].append(
            MonitoringPoint(
                at=_checked_day(tags.get(TAG_MONITOR_DAY, ""), run.info.start_time),
                run_id=run.info.run_id,
                verdict=tags.get(TAG_MONITOR, ""),
                decision=tags.get(TAG_DECISION, ""),
                psi={
                    k[len(PSI_PREFIX) :]: v for k, v in metrics.items() if k.startswith(PSI_PREFIX)
                },
                data={k: v for k, v in metrics.items() if k.startswith(DATA_PREFIXES)},
                quality=quality,
            )
        )
    for environments in found.values():
        for points in environments.values():
            points.sort(key=lambda point: point.at)
    return found


# --- the shared repos, S3 and GitLab --------------------------------------------------------


def _tree(repo: Any, top: str, read: _Read, source: str) -> dict[str, dict[str, set[str]]] | None:
    """project slug -> environment -> models, from one read of the repo's tree."""
    if repo is None:
        raise ModelciError(f"the {source}'s URL is not set")
    read.requests[source] += 1
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in repo.list_files(top):
        parts = path.split("/")
        if len(parts) < 4:
            continue
        _, slug, environment, rest = parts[0], parts[1], parts[2], parts[3]
        found[slug][environment].add(rest.partition("__")[0] if top == "dags" else rest)
    return found


@dataclass(frozen=True)
class _Scratch:
    environments: dict[str, dict[str, tuple[int, datetime]]]  # slug -> env -> (bytes, oldest)
    archives: dict[str, tuple[int, int]]  # slug -> (bytes, count)


def _read_s3(readers: Readers, places: Places, read: _Read, slug: str | None) -> _Scratch | None:
    store = readers.store
    if store is None or not places.scratch_uri:
        raise ModelciError("MODELCI_SCRATCH_URI is not set")
    base = places.scratch_uri.rstrip("/")
    branches = f"{base}/{BRANCHES_SCRATCH}" + (f"/{slug}" if slug else "")
    archives_at = f"{base}/{ARCHIVES_DIR}" + (f"/{slug}" if slug else "")
    objects, count = store.list_sizes(branches)
    read.requests[S3] += count
    environments: dict[str, dict[str, list]] = defaultdict(dict)
    for uri, (size, at) in objects.items():
        parts = uri[len(f"{base}/{BRANCHES_SCRATCH}/") :].split("/")
        if len(parts) < 3:
            continue
        entry = environments[parts[0]].setdefault(parts[1], [0, at])
        entry[0] += size
        entry[1] = min(entry[1], at)
    stored, count = store.list_sizes(archives_at)
    read.requests[S3] += count
    archives: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for uri, (size, _) in stored.items():
        parts = uri[len(f"{base}/{ARCHIVES_DIR}/") :].split("/")
        if len(parts) >= 3:
            archives[parts[0]][0] += size
            archives[parts[0]][1] += uri.endswith("/environment.tar.gz")
    return _Scratch(
        {s: {e: (v[0], v[1]) for e, v in envs.items()} for s, envs in environments.items()},
        {s: (v[0], v[1]) for s, v in archives.items()},
    )


def _archives(scratch: _Scratch | None, slug: str) -> tuple[int | None, int]:
    if scratch is None:
        return None, 0
    return scratch.archives.get(slug, (0, 0))


def _project_paths(
    project: str | None, mlflow: _Mlflow | None, trees: Mapping[str, Any], scratch: _Scratch | None
) -> dict[str, str]:
    """Project path -> slug, for every project a source knows (the slug alone when none
    gives its path)."""
    if project:
        return {project: project_slug_of(project)}
    known = dict(mlflow.project_of_slug) if mlflow else {}
    slugs = set(known)
    if mlflow:
        slugs |= {name.partition(".")[0] for name in set(mlflow.aliases) | set(mlflow.versions)}
    for tree in trees.values():
        slugs |= set(tree or {})
    if scratch is not None:
        slugs |= set(scratch.environments) | set(scratch.archives)
    return {known.get(slug, slug): slug for slug in slugs}


@dataclass(frozen=True)
class _GitLabProject:
    branches: dict[str, str]  # branch -> newest commit's time
    environments: dict[str, Any]  # branch -> EnvironmentInfo


def _read_gitlab(
    readers: Readers, read: _Read, paths: Mapping[str, str]
) -> dict[str, _GitLabProject]:
    from ..systems.gitlab_api import project_branch_tips, project_environments

    url, token = readers.gitlab
    found = {}
    for path in paths:
        if "/" not in path:  # only its slug is known: GitLab cannot be asked
            continue
        tips = project_branch_tips(url, token, path)
        environments = project_environments(url, token, path)
        read.requests[GITLAB] += _pages(len(tips)) + _pages(len(environments))
        found[path] = _GitLabProject(
            {tip.name: tip.committed for tip in tips},
            {env.name.partition("/")[2]: env for env in environments if "/" in env.name},
        )
    return found


def _pages(items: int) -> int:
    return max(1, -(-items // GITLAB_PAGE))


def _environments(
    slug: str,
    path: str,
    trees: Mapping[str, Any],
    scratch: _Scratch | None,
    gitlab: _GitLabProject | None,
    places: Places,
) -> tuple[BranchEnvironment, ...]:
    found: dict[str, dict[str, Any]] = defaultdict(lambda: {"places": [], "models": set()})
    for source, tree in trees.items():
        for environment, models in (tree or {}).get(slug, {}).items():
            if environment.startswith(FEATURE_PREFIX):
                found[environment]["places"].append(source)
                found[environment]["models"] |= models
    scratch_envs = scratch.environments.get(slug, {}) if scratch else {}
    for environment in scratch_envs:
        if environment.startswith(FEATURE_PREFIX):
            found[environment]["places"].append(S3)
    branch_of = {feature_environment(b): b for b in gitlab.branches} if gitlab else {}
    # A GitLab environment outlives its branch when the stop job did not run: it still names
    # the branch, and when it was made.
    recorded = (
        {feature_environment(b): (b, e) for b, e in gitlab.environments.items()} if gitlab else {}
    )
    result = []
    for name, seen in sorted(found.items()):
        branch, info = recorded.get(name, ("", None))
        branch = branch_of.get(name, branch)
        held = scratch_envs.get(name)
        result.append(
            BranchEnvironment(
                name=name,
                branch=branch,
                live=(name in branch_of if gitlab is not None else None),
                models=tuple(sorted(seen["models"])),
                places=tuple(seen["places"]),
                created=_time(info.created_at) if info else (held[1] if held else None),
                last_push=_time(gitlab.branches.get(branch, "")) if gitlab else None,
                auto_stop_at=_time(info.auto_stop_at) if info else None,
                scratch_bytes=(held[0] if held else 0) if scratch is not None else None,
                links=_environment_links(places, path, branch),
            )
        )
    return tuple(result)


def _environment_links(places: Places, path: str, branch: str) -> tuple[Link, ...]:
    if not (places.gitlab_url and branch and "/" in path):
        return ()
    return (Link("GitLab branch", f"{places.gitlab_url.rstrip('/')}/{path}/-/tree/{branch}"),)


def _time(value: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
