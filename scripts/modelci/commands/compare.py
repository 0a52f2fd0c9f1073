"""`modelci compare`: in a merge request pipeline, compare each model's candidate (the run
`resolve` would pick for the source branch) with what every stand of `mlops.yaml` serves, and
review it against production (the last stand): its input contract, its predictions on the same
rows, what serving it costs, what changed, and its gated metrics across production's versions.
All of it goes to the job log and to ONE note on the merge request, edited in place by every
later pipeline. A note that cannot be written is a warning, never a failed job; a breaking
change of an online model's inputs fails the job, unless the merge request acknowledges it
(`review.contract.ACK_LABEL` or `ACK_VARIABLE`)."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

from ..cilog import section
from ..errors import ModelciError, strip_userinfo
from ..lifecycle.workspace import Job, add_config_arguments, load_job
from ..review.contract import ACK_LABEL, ACK_VARIABLE, Acknowledgement, acknowledgement
from ..review.note import (
    NOTE_MARKER,
    Candidate,
    Link,
    ModelComparison,
    NoteContext,
    Promotion,
    StandModel,
    render_log,
    render_note,
)

COMMAND = "compare"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..systems.tracking import Tracker

    job = _merge_request_job(load_job(args))
    tracker = Tracker(job.settings.tracking_uri)
    ack = acknowledgement(
        os.environ.get("CI_MERGE_REQUEST_LABELS", ""), os.environ.get(ACK_VARIABLE, "")
    )
    comparisons = []
    for model in job.models(args.model):
        comparison = collect(tracker, job, model)
        if comparison.candidate is not None and job.config.stands:
            comparison = replace(
                comparison, review=review_model(tracker, job, model, comparison, ack)
            )
        comparisons.append(comparison)
    context = NoteContext(
        branch=job.pipeline.branch,
        environment=job.dirs.environment,
        commit=job.pipeline.commit,
        pipeline_url=job.pipeline.pipeline_url,
        gitlab_environment_url=gitlab_environment_url(job),
    )
    with section("modelci_compare", "modelci: candidate against the stands"):
        print(render_log(context, comparisons), flush=True)
    _note(render_note(context, comparisons), job.pipeline.project)
    return _contract_verdict(comparisons, ack)


def _contract_verdict(comparisons: list[ModelComparison], ack: Acknowledgement) -> int:
    """1 when an online model's inputs break the API's clients and nothing acknowledged it."""
    failures = [(c.model, c.contract_failure()) for c in comparisons if c.contract_failure()]
    if not failures:
        return 0
    import sys

    for model, reasons in failures:
        print(
            f"modelci compare: ERROR: model {model!r} breaks the input contract of the model API "
            f"its clients call: {'; '.join(reasons)}. If the clients are ready for it, "
            f"acknowledge it: add the label {ACK_LABEL} to the merge request and run its "
            f"pipeline again (or run the pipeline with the variable {ACK_VARIABLE}=true); "
            "otherwise keep the inputs production takes.",
            file=sys.stderr,
        )
    return 1


def _merge_request_job(job: Job) -> Job:
    """In a merge request pipeline the branch is the merge request's source branch."""
    source = os.environ.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "").strip()
    if not source or source == job.pipeline.branch:
        return job
    return replace(job, pipeline=replace(job.pipeline, branch=source))


# --- what MLflow knows ----------------------------------------------------------------------


def collect(tracker, job: Job, model) -> ModelComparison:
    from ..systems.tracking import PIN_TAG, TAG_GATE, TAG_GATE_REASONS

    names = job.names(model)
    registered = names.registered_model
    stands = [_stand_model(tracker, job, registered, stand.name) for stand in job.config.stands]
    candidate, reason = None, ""
    try:
        run = tracker.find_run(names.experiment, names.environment, job.pipeline.branch)
    except ModelciError as error:  # no passed or pinned run yet: a state to show, not a failure
        reason = str(error)
    else:
        tags = run.data.tags
        candidate = Candidate(
            run_id=run.info.run_id,
            run_url=run_url(job, run.info.experiment_id, run.info.run_id),
            metrics=dict(run.data.metrics),
            gate=tags.get(TAG_GATE, ""),
            gate_reasons=tags.get(TAG_GATE_REASONS, ""),
            pinned=tags.get(PIN_TAG) == names.environment,
        )
    promotion = None
    if candidate is not None and job.config.stands:
        first = job.config.stands[0]
        version, registered_already = version_on_merge(tracker, registered, candidate.run_id)
        promotion = Promotion(first.name, version, registered_already, manual=first.manual)
    return ModelComparison(
        model=model.name,
        registered_model=registered,
        thresholds=tuple(model.gate.metrics),
        candidate=candidate,
        stands=tuple(stands),
        promotion=promotion,
        no_candidate_reason=reason,
        links=tuple(_environment_links(job, model, names)),
    )


def _stand_model(tracker, job: Job, registered_model: str, stand: str) -> StandModel:
    version = tracker.stand_version(registered_model, stand)
    if version is None:
        return StandModel(stand=stand, version=None)
    if not version.run_id:
        return StandModel(stand=stand, version=version.version)
    run = tracker.get_run(version.run_id)
    return StandModel(
        stand=stand,
        version=version.version,
        run_id=version.run_id,
        run_url=run_url(job, run.info.experiment_id, version.run_id),
        metrics=dict(run.data.metrics),
    )


def version_on_merge(tracker, registered_model: str, run_id: str) -> tuple[str, bool]:
    """The version the first stand will serve: the one already registered from the run, else
    the registered model's latest version + 1 (1 for a model not registered yet)."""
    existing = tracker.version_of_run(registered_model, run_id)
    if existing is not None:
        return existing.version, True
    latest = tracker.latest_version_number(registered_model)
    return str((latest or 0) + 1), False


# --- links ----------------------------------------------------------------------------------


def run_url(job: Job, experiment_id: str, run_id: str) -> str:
    tracking = strip_userinfo(job.settings.tracking_uri).rstrip("/")
    return f"{tracking}/#/experiments/{experiment_id}/runs/{run_id}"


def _environment_links(job: Job, model, names) -> list[Link]:
    from ..render.values import model_api_url

    links = []
    settings = job.settings
    airflow = (settings.stands_airflow_url if names.is_stand else settings.airflow_url).rstrip("/")
    for dag in model.batch.dags:
        dag_id = names.dag_id(dag.kind)
        if airflow:
            links.append(Link(f"Airflow DAG {dag.kind}", f"{airflow}/dags/{dag_id}"))
    if model.online.enabled:
        links.append(Link("model API", model_api_url(names, job.settings)))
    return links


def gitlab_environment_url(job: Job) -> str:
    """The project's environments page filtered to this branch's environment:
    `MODELCI_GITLAB_ENVIRONMENT` (the full name) when given, else `review/<branch>`, the name
    the deploy template gives it with its default `environment_prefix`."""
    project_url = job.pipeline.project_url.rstrip("/")
    name = os.environ.get("MODELCI_GITLAB_ENVIRONMENT", "").strip()
    name = name or f"review/{job.pipeline.branch}"
    if not project_url or not name:
        return ""
    return f"{project_url}/-/environments?search={quote(name, safe='')}"


# --- the note -------------------------------------------------------------------------------


def _note(body: str, pipeline_project: str) -> None:
    from ..systems.gitlab_api import ServerAccess, upsert_note, warn, write_note_or_warn

    iid = os.environ.get("CI_MERGE_REQUEST_IID", "").strip()
    if not iid:
        print("not a merge request pipeline (CI_MERGE_REQUEST_IID is not set): no note")
        return
    access = ServerAccess.from_env(os.environ)
    # The merge request lives in the target project (a fork's pipeline runs in the source).
    project = os.environ.get("CI_MERGE_REQUEST_PROJECT_PATH", "").strip() or pipeline_project
    if access.missing:
        warn(COMMAND, f"no note on merge request !{iid}: {', '.join(access.missing)} not set")
        return
    if not iid.isdigit():
        warn(COMMAND, f"no note: CI_MERGE_REQUEST_IID is {iid!r}, not a number")
        return
    result = write_note_or_warn(
        COMMAND, lambda: upsert_note(access.url, access.token, project, int(iid), NOTE_MARKER, body)
    )
    if result is None:
        return
    if result.created:
        print(f"comparison added to merge request !{iid} (note {result.note_id})")
    elif result.changed:
        print(f"comparison updated on merge request !{iid} (note {result.note_id})")
    else:
        print(f"comparison on merge request !{iid} is up to date (note {result.note_id})")


# --- the review against production ------------------------------------------------------------

CONTRACT, SERVING, CHANGES, CHARTS = "contract", "behaviour and cost", "changes", "charts"
SERVING_SECONDS_VARIABLE = "MODELCI_REVIEW_SERVING_SECONDS"
SAMPLES_VARIABLE = "MODELCI_REVIEW_SAMPLES"  # "<single>,<batch>" latency samples per model
DEFAULT_SERVING_SECONDS = 300.0
MAX_ROWS = 1000  # rows both models predict on; a bigger sample is cut


def review_model(tracker, job: Job, model, comparison: ModelComparison, ack: Acknowledgement):
    """The candidate against the last stand (production), part by part, each timed, each
    either done or unavailable with its reason."""
    from ..review.note import ModelReview
    from ..review.parts import Part

    stand = comparison.stands[-1]
    candidate = comparison.candidate
    assert candidate is not None
    sources = _Sources(tracker, job, model, comparison.registered_model, candidate.run_id, stand)
    contract = _timed(CONTRACT, sources.contract)
    if stand.version is None and contract.value is not None and contract.value.candidate:
        why = f"{stand.stand} serves nothing yet: there is no contract to compare with"
        contract = Part(CONTRACT, contract.seconds, reason=why)
    if stand.version is None:
        why = f"{stand.stand} serves nothing yet: there is nothing to compare with"
        behaviour = cost = Part(SERVING, 0.0, reason=why)
        changes = Part(CHANGES, 0.0, reason=why)
    else:
        serving = _timed(SERVING, lambda: sources.serve(contract.value))
        behaviour = Part(
            SERVING, serving.seconds, serving.value and serving.value[0], serving.reason
        )
        cost = Part(SERVING, serving.seconds, serving.value and serving.value[1], serving.reason)
        changes = _timed(CHANGES, sources.changes)
    charts = _timed(CHARTS, lambda: sources.histories(model.gate.metrics, candidate.metrics))
    return ModelReview(
        production=stand.stand,
        production_version=stand.version,
        online=model.online.enabled,
        flavor=model.flavor,
        ack=ack,
        contract=contract,
        behaviour=behaviour,
        cost=cost,
        changes=changes,
        charts=charts,
    )


def _timed(title: str, compute):
    """`compute()` as a Part: its value, or the reason it failed; how long it took either way.
    Any failure is a reason shown in the note: the review never fails the job by itself."""
    import time

    from ..review.parts import Part

    started = time.monotonic()
    try:
        value = compute()
    except ModelciError as error:
        return Part(title, time.monotonic() - started, reason=str(error))
    except Exception as error:  # a part that breaks is shown, never fatal
        reason = f"{type(error).__name__}: {error}"
        return Part(title, time.monotonic() - started, reason=reason)
    return Part(title, time.monotonic() - started, value)


class _Sources:
    """What the review reads: MLflow through the tracker, model files and environment archives
    from S3, and the local model servers."""

    def __init__(self, tracker, job: Job, model, registered: str, run_id: str, stand: StandModel):
        self.tracker, self.job, self.registered, self.run_id = tracker, job, registered, run_id
        self.stand = stand
        sample = model.review.sample  # a CSV of the repository, or None
        self.sample = str(Path(job.config.path).parent / sample) if sample else None
        self._documents: dict[str, dict] = {}
        self._candidate_uri: str | None = None

    @property
    def production_uri(self) -> str:
        return f"models:/{self.registered}/{self.stand.version}"

    def candidate_uri(self) -> str:
        if self._candidate_uri is None:
            self._candidate_uri = self.tracker.model_uri_for_run(self.run_id)
        return self._candidate_uri

    def document(self, uri: str) -> dict:
        if uri not in self._documents:
            self._documents[uri] = self.tracker.model_document(uri)
        return self._documents[uri]

    # -- contract --------------------------------------------------------------------------

    def contract(self):
        from ..review.contract import diff_contract, signature_of

        ours = signature_of(self.document(self.candidate_uri()))
        if self.stand.version is None:
            return diff_contract(ours, None)
        return diff_contract(ours, signature_of(self.document(self.production_uri)))

    # -- behaviour and cost ----------------------------------------------------------------

    def serve(self, diff):
        import tempfile

        with tempfile.TemporaryDirectory(prefix="modelci-review-") as work:
            return self._serve(diff, Path(work))

    def _serve(self, diff, work: Path):
        import time

        from ..lifecycle.measure import Samples, ServingInput, measure_side_by_side
        from ..review.behaviour import compare_predictions

        seconds = _float_env(SERVING_SECONDS_VARIABLE, DEFAULT_SERVING_SECONDS)
        deadline = time.monotonic() + seconds
        candidate_dir = self._download(self.candidate_uri(), work / "candidate")
        production_dir = self._download(self.production_uri, work / "production")
        rows = _example_rows(candidate_dir)
        if self.sample:
            rows += _sample_rows(self.sample, self.document(self.candidate_uri()), len(rows))
        if not rows:
            raise ModelciError(
                "the candidate was logged without an input example, so there are no rows to "
                "predict on: log it with input_example=X.head(5)"
            )
        renamed = dict(diff.renamed) if diff is not None else {}
        inputs = []
        for label, directory, uri, run_id in (
            ("candidate", candidate_dir, self.candidate_uri(), self.run_id),
            (
                f"{self.stand.stand} v{self.stand.version}",
                production_dir,
                self.production_uri,
                self.stand.run_id,
            ),
        ):
            archive = self._environment(run_id, label)
            columns, types = _inputs_of(self.document(uri), rows)
            inputs.append(ServingInput(label, directory, archive, columns, types))
        production_rows = [_as_production(row.values, renamed) for row in rows]
        _require_columns(inputs[1], production_rows)
        if time.monotonic() > deadline:
            raise ModelciError(f"no time left to serve the models ({seconds:g} s)")
        ours, theirs = measure_side_by_side(
            inputs[0],
            inputs[1],
            [row.values for row in rows],
            production_rows,
            deadline=deadline,
            samples=_samples(Samples),
        )
        behaviour = compare_predictions(rows, ours.predictions, theirs.predictions, renamed)
        return behaviour, (ours.cost, theirs.cost)

    def _download(self, model_uri: str, where):
        from ..systems.s3 import S3Store

        storage = self.tracker.resolve_storage_uri(
            model_uri, self.job.settings.artifacts_destination
        )
        S3Store.from_env(os.environ).download_prefix(storage, where)
        return where

    def _environment(self, run_id: str, label: str) -> str:
        """The run's environment archive, unpacked here first so the load time measured is
        the server's, not the download's."""
        from ..lifecycle.modelenv import default_cache_dir, environment_from_archive
        from ..systems.s3 import S3Store
        from ..systems.tracking import TAG_ENV_ARCHIVE

        archive = self.tracker.get_run(run_id).data.tags.get(TAG_ENV_ARCHIVE, "") if run_id else ""
        if not archive:
            raise ModelciError(
                f"the {label} model's run has no environment archive (tag {TAG_ENV_ARCHIVE}): "
                "it was not trained by modelci's train job"
            )
        environment_from_archive(S3Store.from_env(os.environ), archive, default_cache_dir())
        return archive

    # -- changes ---------------------------------------------------------------------------

    def changes(self):
        return self._facts(self.run_id), self._facts(self.stand.run_id)

    def _facts(self, run_id: str):
        from ..review.changes import Dataset, RunFacts
        from ..systems.tracking import TAG_ENV_ARCHIVE

        if not run_id:
            return RunFacts({}, {}, (), None)
        run = self.tracker.get_run(run_id)
        datasets = tuple(
            Dataset(
                name=item["name"],
                digest=item["digest"],
                context=item["context"],
                source_type=item["source_type"],
                rows=_profile_rows(item["profile"]),
            )
            for item in self.tracker.run_datasets(run_id)
        )
        lock = _lock_text(run.data.tags.get(TAG_ENV_ARCHIVE, ""))
        return RunFacts(dict(run.data.metrics), dict(run.data.params), datasets, lock)

    # -- charts ----------------------------------------------------------------------------

    def histories(self, thresholds, candidate_metrics):
        from ..review.charts import MAX_HISTORY, metric_history

        served = self.tracker.stand_versions(self.registered, self.stand.stand, MAX_HISTORY)
        if self.stand.version and all(v.version != self.stand.version for v in served):
            current = self.tracker.model_version(self.registered, self.stand.version)
            served = [*served, *([current] if current else [])]
        values = {
            version.version: self.tracker.run_metrics(version.run_id) if version.run_id else {}
            for version in served
        }
        return tuple(
            metric_history(
                threshold,
                [(number, metrics.get(threshold.name)) for number, metrics in values.items()],
                candidate_metrics.get(threshold.name),
            )
            for threshold in thresholds
        )


def _example_rows(model_dir):
    """The rows of the input example MLflow saved with the model (split orient)."""
    import json

    from ..review.behaviour import Row

    for name, key in (
        ("serving_input_example.json", "dataframe_split"),
        ("input_example.json", None),
    ):
        path = model_dir / name
        if not path.is_file():
            continue
        document = json.loads(path.read_text(encoding="utf-8"))
        split = document.get(key) if key else document
        if isinstance(split, dict) and "columns" in split and "data" in split:
            columns = [str(c) for c in split["columns"]]
            return [
                Row("input example", index, dict(zip(columns, values, strict=False)))
                for index, values in enumerate(split["data"][:MAX_ROWS])
            ]
    return []


def _sample_rows(path: str, document: dict, already: int):
    """The rows of the evaluation sample `review.sample` names, typed as the candidate's
    signature says (CSV holds only text), after the `already` rows of the input example."""
    import csv

    from ..review.behaviour import Row
    from ..review.contract import signature_of

    signature = signature_of(document)
    types = {c.name: c.type for c in signature.inputs} if signature else {}
    rows = []
    with Path(path).open(newline="", encoding="utf-8") as handle:
        for index, record in enumerate(csv.DictReader(handle)):
            if already + index >= MAX_ROWS:
                break
            values = {name: _typed(text, types.get(name, "")) for name, text in record.items()}
            rows.append(Row("sample", index, values))
    return rows


def _typed(text: str | None, kind: str):
    text = text if text is not None else ""
    try:
        if kind in ("double", "float"):
            return float(text)
        if kind in ("long", "integer"):
            return int(text)
    except ValueError:
        raise ModelciError(
            f"the review sample holds {text!r} where the model takes a {kind}: fix the sample's "
            "column, or the model's signature"
        ) from None
    if kind == "boolean":
        return text.strip().lower() in ("1", "true", "yes")
    return text


def _inputs_of(document: dict, rows) -> tuple[list[str], dict[str, str]]:
    """The input names and types a model takes: its signature's, else the rows' columns."""
    from ..review.contract import signature_of

    signature = signature_of(document)
    if signature is None:
        return list(rows[0].values) if rows else [], {}
    return [c.name for c in signature.inputs], {c.name: c.type for c in signature.inputs}


def _as_production(values: dict, renamed: dict[str, str]) -> dict:
    """A row under production's column names: a renamed input under its old name."""
    row = dict(values)
    for old, new in renamed.items():
        if new in row:
            row[old] = row.pop(new)
    return row


def _require_columns(serving, rows) -> None:
    missing = [c for c in serving.columns if rows and c not in rows[0]]
    if missing:
        raise ModelciError(
            f"the rows have no column {', '.join(missing)} that {serving.label} takes: there are "
            "no common rows to compare predictions on"
        )


def _lock_text(archive: str) -> str | None:
    """The environment's lock: from the unpacked environment here, else beside the archive."""
    import json

    from ..lifecycle.modelenv import MANIFEST, archive_key, default_cache_dir, lock_beside
    from ..systems.s3 import S3Store

    key = archive_key(archive) if archive else None
    if key is None:
        return None
    manifest = default_cache_dir() / key / MANIFEST
    if manifest.is_file():
        return json.loads(manifest.read_text(encoding="utf-8")).get("lock")
    data = S3Store.from_env(os.environ).get_bytes_or_none(lock_beside(archive))
    return data.decode("utf-8", errors="replace") if data is not None else None


def _profile_rows(profile: str) -> int | None:
    import json

    try:
        rows = json.loads(profile).get("num_rows") if profile else None
    except (ValueError, AttributeError):
        return None
    return rows if isinstance(rows, int) else None


def _float_env(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    try:
        return float(text) if text else default
    except ValueError:
        raise ModelciError(f"{name} is {text!r}: give a number of seconds") from None


def _samples(samples_type):
    text = os.environ.get(SAMPLES_VARIABLE, "").strip()
    if not text:
        return samples_type()
    try:
        single, batch = (int(part) for part in text.split(","))
    except ValueError:
        raise ModelciError(
            f"{SAMPLES_VARIABLE} is {text!r}: give two counts, single and batch, e.g. 20,5"
        ) from None
    return samples_type(max(1, single), max(1, batch))
