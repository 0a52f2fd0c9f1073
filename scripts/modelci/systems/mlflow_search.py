"""Read-only bulk searches over MLflow's REST API, for pages that show many models at once.

`tracking.Tracker` reads one run or one alias at a time, as a job needs; the fleet page needs
every registered version, every alias and months of monitoring runs, so it pages through
MLflow's search endpoints instead (a page holds up to a thousand items): the requests grow
with the number of pages, not of runs or days. Nothing here writes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ModelciError, redact_url
from .mlflow_rest import (
    RegisteredModel,
    RestClient,
    RestError,
    Run,
    _registered_model,
    _run,
    _version,
)

RUNS_PAGE = 1000  # MLflow's runs/search accepts up to 50,000; a page stays small in memory
VERSIONS_PAGE = 1000
MODELS_PAGE = 1000
EXPERIMENTS_PAGE = 1000
RUN_IDS_PER_SEARCH = 100  # `attributes.run_id IN (...)` with this many ids per search
ATTEMPTS = 3
BACKOFF_SECONDS = 0.5


@dataclass(frozen=True)
class RegisteredVersion:
    """A registered model version with its tags and the aliases pointing at it."""

    name: str
    version: str
    run_id: str
    tags: dict[str, str]
    aliases: tuple[str, ...]  # MLflow's version search leaves them out: see registered_models
    created_ms: int


@dataclass(frozen=True)
class ExperimentInfo:
    experiment_id: str
    name: str


class _CountingClient(RestClient):
    """The REST client, counting the requests it sends (the fleet page reports them)."""

    def __init__(self, tracking_uri: str, timeout_seconds: float) -> None:
        super().__init__(tracking_uri, timeout_seconds)
        self.requests = 0

    def _request(self, method: str, path: str, **kwargs: Any) -> bytes:
        self.requests += 1
        return super()._request(method, path, **kwargs)

    def get(self, endpoint: str, **query: Any) -> dict[str, Any]:
        return self._get(endpoint, **query)

    def post(self, endpoint: str, **body: Any) -> dict[str, Any]:
        return self._post(endpoint, **body)


class MlflowSearch:
    """Paged searches; every failure becomes a ModelciError naming the server and the search."""

    def __init__(self, tracking_uri: str, *, timeout_seconds: float = 30) -> None:
        if not tracking_uri.strip():
            raise ModelciError(
                "MLFLOW_TRACKING_URI is not set; set it to the MLflow server's URL in the "
                "GitLab group's CI/CD variables"
            )
        self._client = _CountingClient(tracking_uri, timeout_seconds)
        self._where = f"MLflow at {redact_url(tracking_uri)}"

    @property
    def requests(self) -> int:
        return self._client.requests

    def experiments(self) -> list[ExperimentInfo]:
        """Every active experiment."""
        found = self._pages(
            "search experiments",
            lambda token: self._client.post(
                "experiments/search",
                max_results=EXPERIMENTS_PAGE,
                view_type="ACTIVE_ONLY",
                **_token(token),
            ),
            "experiments",
        )
        return [ExperimentInfo(str(item["experiment_id"]), item.get("name", "")) for item in found]

    def registered_models(self) -> list[RegisteredModel]:
        """Every registered model and its aliases."""
        found = self._pages(
            "search registered models",
            lambda token: self._client.get(
                "registered-models/search", max_results=MODELS_PAGE, **_token(token)
            ),
            "registered_models",
        )
        return [_registered_model(item) for item in found]

    def model_versions(self, filter_string: str = "") -> list[RegisteredVersion]:
        """Every version matching `filter_string` (every version of every model when empty)."""
        found = self._pages(
            "search model versions",
            lambda token: self._client.get(
                "model-versions/search",
                max_results=VERSIONS_PAGE,
                **({"filter": filter_string} if filter_string else {}),
                **_token(token),
            ),
            "model_versions",
        )
        versions = []
        for item in found:
            parsed = _version(item)
            versions.append(
                RegisteredVersion(
                    name=parsed.name,
                    version=parsed.version,
                    run_id=parsed.run_id,
                    tags=parsed.tags,
                    aliases=parsed.aliases,
                    created_ms=int(item.get("creation_timestamp", 0) or 0),
                )
            )
        return versions

    def runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        order_by: Sequence[str] = ("attributes.start_time ASC",),
    ) -> list[Run]:
        """Every run of the experiments matching the filter, in pages."""
        runs: list[Run] = []
        for chunk in _chunks(list(experiment_ids), RUN_IDS_PER_SEARCH):
            found = self._pages(
                "search runs",
                lambda token, chunk=chunk: self._client.post(
                    "runs/search",
                    experiment_ids=chunk,
                    filter=filter_string,
                    order_by=list(order_by),
                    max_results=RUNS_PAGE,
                    **_token(token),
                ),
                "runs",
            )
            runs += [_run(item) for item in found]
        return runs

    def runs_by_id(self, experiment_ids: Sequence[str], run_ids: Sequence[str]) -> list[Run]:
        """The runs with these ids (searched a hundred ids at a time, not read one by one)."""
        runs: list[Run] = []
        wanted = sorted(set(run_ids))
        for chunk in _chunks(wanted, RUN_IDS_PER_SEARCH):
            quoted = ", ".join(f"'{run_id}'" for run_id in chunk if run_id.isalnum())
            if quoted:
                runs += self.runs(experiment_ids, f"attributes.run_id IN ({quoted})")
        return runs

    # -- plumbing -----------------------------------------------------------------------------

    def _pages(self, what: str, fetch, key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self._paged(what, fetch):
            items += page.get(key, [])
        return items

    def _paged(self, what: str, fetch) -> Iterator[dict[str, Any]]:
        token = ""
        while True:
            page = self._attempt(what, lambda token=token: fetch(token))
            yield page
            token = page.get("next_page_token", "")
            if not token:
                return

    def _attempt(self, what: str, call) -> dict[str, Any]:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return call()
            except RestError as error:
                if not error.transient or attempt == ATTEMPTS:
                    raise ModelciError(self._failure(what, error)) from None
                time.sleep(BACKOFF_SECONDS * attempt)
        raise AssertionError("unreachable")

    def _failure(self, what: str, error: RestError) -> str:
        if error.status in (401, 403):
            return (
                f"{self._where} refused to {what} (HTTP {error.status}): check the credentials "
                "in MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD"
            )
        reason = f"HTTP {error.status}" if error.status else redact_url(str(error))[:200]
        return f"{self._where}: could not {what} ({reason})"


def _token(token: str) -> dict[str, str]:
    return {"page_token": token} if token else {}


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
