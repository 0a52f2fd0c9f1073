"""`modelci fleet`: build the fleet's static site (HTML and inline SVG, no script, nothing
fetched) into a directory GitLab Pages publishes (`public/`). One project's page, or with
`--platform` every project the shared DAG and GitOps repos, S3 and MLflow know. Reads only;
a source that cannot be read makes its sections say so, and the rest is still built."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from ..errors import ModelciError

MAX_ENVIRONMENTS_VARIABLE = "MODELCI_MAX_ENVIRONMENTS"
DEFAULT_DAYS = 90


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--platform",
        action="store_true",
        help="every project the shared repos, S3 and MLflow know (default: this project only)",
    )
    parser.add_argument("--project", help="GitLab project path (default: $CI_PROJECT_PATH)")
    parser.add_argument("--out", default="public", help="directory to write the site to")
    parser.add_argument(
        "--config",
        default="mlops.yaml",
        help="the project's config, for its stands, gate thresholds and monitoring bounds "
        "(used when present; with --platform for this project's own charts)",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=DEFAULT_DAYS,
        help=f"days of monitoring to show (default {DEFAULT_DAYS})",
    )
    parser.add_argument(
        "--max-environments",
        type=int,
        default=None,
        help="the cap of live branch environments per project "
        f"(default ${MAX_ENVIRONMENTS_VARIABLE}, 0: no cap)",
    )


def run(args: argparse.Namespace) -> int:
    from ..config.settings import Settings
    from ..fleet.gather import gather
    from ..fleet.render import render_site

    env = dict(os.environ)
    project = None if args.platform else (args.project or env.get("CI_PROJECT_PATH", ""))
    if project == "":
        raise ModelciError(
            "give --project (or run inside GitLab CI, which sets CI_PROJECT_PATH), or --platform "
            "for every project; nothing was written"
        )
    if args.days < 1:
        raise ModelciError(f"--days is {args.days}; give 1 or more days of monitoring")
    cap = _cap(args.max_environments, env)
    out = _checked_out_dir(Path(args.out))
    own = args.project or env.get("CI_PROJECT_PATH", "")
    config = _project_config(Path(args.config)) if own else None
    settings = Settings.from_env(env)
    started = time.monotonic()
    readers = _readers(settings, env)
    fleet = gather(
        readers,
        _places(settings, env),
        project=project,
        configs={own: config} if config else {},
        cap=cap,
        days=args.days,
    )
    gathered = time.monotonic()
    pages = render_site(fleet)
    drawn = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    for name, page in pages.items():
        (out / name).write_text(page, encoding="utf-8")
    size = sum(len(page.encode()) for page in pages.values())
    print(
        f"fleet: {len(pages)} page(s), {size:,} bytes, in {out}/ (read in "
        f"{gathered - started:.1f} s, drawn in {drawn - gathered:.1f} s)"
    )
    for source in fleet.sources:
        state = f"NOT READ: {source.problem}" if source.problem else "read"
        print(f"  {source.name:<16} {source.requests:>5} requests  {state}")
    return 0


def _cap(given: int | None, env: dict[str, str]) -> int:
    if given is not None:
        value, where = given, "--max-environments"
    else:
        raw = env.get(MAX_ENVIRONMENTS_VARIABLE, "").strip() or "0"
        where = MAX_ENVIRONMENTS_VARIABLE
        try:
            value = int(raw)
        except ValueError:
            raise ModelciError(
                f"{MAX_ENVIRONMENTS_VARIABLE} is {raw!r}: give a whole number (0: no cap); "
                "nothing was written"
            ) from None
    if value < 0:
        raise ModelciError(f"{where} is {value}: give 0 (no cap) or more; nothing was written")
    return value


def _checked_out_dir(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise ModelciError(f"--out {out} is a file, not a directory; nothing was written")
    return out


def _project_config(path: Path):
    """The project's config when the checkout has one; a broken one is an error, not ignored."""
    from ..config.mlops import load_config
    from ..fleet.gather import ProjectConfig

    if not path.is_file():
        return None
    return ProjectConfig.of(load_config(path))


def _readers(settings, env: dict[str, str]):
    """The systems to read; one that is not configured, or cannot even be set up, is left
    out (None) and its sections say why."""
    from ..errors import redact_url
    from ..fleet.gather import Readers
    from ..fleet.model import DAG_REPO, GITLAB, GITOPS_REPO, MLFLOW, S3
    from ..lifecycle.workspace import dag_repo, gitops_repo
    from ..systems.gitlab_api import ServerAccess
    from ..systems.mlflow_search import MlflowSearch
    from ..systems.s3 import S3Store

    readers = Readers()
    readers.where = {
        MLFLOW: redact_url(settings.tracking_uri),
        S3: settings.scratch_uri,
        GITLAB: env.get("CI_SERVER_URL", ""),
        DAG_REPO: redact_url(settings.dag_repo_url),
        GITOPS_REPO: redact_url(settings.gitops_repo_url),
    }
    for name, make in (
        ("mlflow", lambda: MlflowSearch(settings.tracking_uri)),
        ("store", lambda: S3Store(settings.s3_endpoint, settings.s3_region)),
        ("dag_repo", lambda: dag_repo(settings)),
        ("gitops_repo", lambda: gitops_repo(settings)),
    ):
        try:
            setattr(readers, name, make())
        except ModelciError:
            setattr(readers, name, None)
    access = ServerAccess.from_env(env)
    readers.gitlab = None if access.missing else (access.url, access.token)
    return readers


def _places(settings, env: dict[str, str]):
    from ..config.naming import names_for
    from ..errors import strip_userinfo
    from ..fleet.gather import Places
    from ..render.values import model_api_url

    def model_api(project: str, branch: str, model: str, stand: str) -> str:
        return model_api_url(names_for(project, branch, model, stand=stand), settings)

    return Places(
        tracking_uri=strip_userinfo(settings.tracking_uri).rstrip("/"),
        scratch_uri=settings.scratch_uri,
        airflow_url=settings.airflow_url,
        stands_airflow_url=settings.stands_airflow_url,
        gitlab_url=env.get("CI_SERVER_URL", ""),
        model_api=model_api,
    )
