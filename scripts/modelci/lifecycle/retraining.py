"""A retraining pipeline, started by a failed monitoring check, reporting back.

The monitoring run that triggered it is named in the pipeline's variables; each step of the
pipeline (train, gate, promote) records on that run what became of the retraining, so the
monitoring knows when it is no longer in flight and a person reads every decision in MLflow.
Only ids travel as variables: GitLab expands `$...` in them, and a user's text must never be
expanded.

One drift event starts at most one pipeline. The events of an environment are numbered, and
event n+1 belongs to the monitoring run that created its claim, `<n+1>.json` under
`<data>/.modelci/retrain/`, with S3's `If-None-Match: *`: of two runs that saw event n as
the newest, the store lets exactly one create it, and the other reads who owns it. The owner
passes the event's id to the pipeline (MODELCI_RETRAIN_EVENT), so the pipeline can be found
again through the API: the trigger is never sent twice blindly (gitlab_api), and an event
left in doubt is settled by the next check before anything else is triggered.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..errors import ModelciError

if TYPE_CHECKING:
    from ..monitoring.checks import LastTrigger
    from ..systems.gitlab_api import EventLookup, TriggeredPipeline
    from ..systems.s3 import S3Store
    from ..systems.tracking import Tracker

MODEL_VARIABLE = "MODELCI_RETRAIN"  # the model to retrain
TRIGGER_VARIABLE = "MODELCI_RETRAIN_TRIGGER"  # the monitoring run that triggered it
EVENT_VARIABLE = "MODELCI_RETRAIN_EVENT"  # the drift event it answers: read back to find it

TAG_KIND = "modelci.kind"
TAG_MONITORS_RUN = "modelci.monitors_run"  # the served run a monitoring run checked
TAG_MONITOR = "modelci.monitor"  # passed, failed or no-data
TAG_MONITOR_DAY = "modelci.monitor.day"  # the data's day (the DAG run's ds), YYYY-MM-DD
TAG_MONITOR_FAILURES = "modelci.monitor.failures"
# triggering, then triggered, trigger-failed or trigger-unknown; or skip, none
TAG_DECISION = "modelci.retrain.decision"
TAG_REASON = "modelci.retrain.reason"  # why retraining was (not) wanted; kept whatever follows
TAG_EVENT = "modelci.retrain.event"  # the drift event the run owns, or lost to TAG_OWNER
TAG_OWNER = "modelci.retrain.owner"  # the monitoring run that owns the event, when another
TAG_TRIGGER_ERROR = "modelci.retrain.trigger_error"  # why the trigger failed, or is in doubt
TAG_PIPELINE = "modelci.retrain.pipeline"  # the retraining pipeline's URL (or id)
TAG_OUTCOME = "modelci.retrain.outcome"  # what the retraining pipeline reported
TAG_OUTCOME_AT = "modelci.retrain.outcome_at"
TAG_TRIGGERED_BY = "modelci.retrain.triggered_by"  # on the retrained run: the monitoring run

TRIGGERING = "triggering"  # the run decided to trigger and is at it
TRIGGERED = "triggered"
TRIGGER_FAILED = "trigger-failed"  # no pipeline was started
TRIGGER_UNKNOWN = "trigger-unknown"  # GitLab may have started it: the next check looks
CLAIMS = ".modelci/retrain/"  # under the environment's data prefix (MODELCI_DATA_URI)
# How long GitLab may still be working on a trigger the client stopped waiting for: a look
# that finds no pipeline of an event only this long after its claim settles it as failed
# (GitLab ends a request after 60 s; the trigger gives up after 15 s).
SETTLE = timedelta(minutes=10)
_RUN_ID = re.compile(r"[0-9a-f]{32}")
_CLAIM_NAME = re.compile(r"(\d{8})\.json")


def monitoring_experiment(experiment: str) -> str:
    """The MLflow experiment of a model's monitoring runs, beside its training experiment."""
    return f"{experiment}/monitoring"


@dataclass(frozen=True)
class RetrainRequest:
    """What the trigger asked for: which model, from which monitoring run."""

    model: str
    trigger_run: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetrainRequest | None:
        """The request of a retraining pipeline; None in any other pipeline."""
        model = env.get(MODEL_VARIABLE, "").strip()
        if not model:
            return None
        trigger = env.get(TRIGGER_VARIABLE, "").strip()
        if not _RUN_ID.fullmatch(trigger):
            raise ModelciError(
                f"{MODEL_VARIABLE} is set, so this is a retraining pipeline, but "
                f"{TRIGGER_VARIABLE} is not an MLflow run id ({len(trigger)} characters). "
                "Retraining pipelines are started by `modelci monitor`; to retrain by hand, "
                "run the default branch's pipeline without these variables"
            )
        return cls(model=model, trigger_run=trigger)


def record_outcome(tracker, request: RetrainRequest, outcome: str) -> None:
    """Tell the triggering monitoring run what became of the retraining (and the log). A
    note, never the job's result: when MLflow refuses it (the promote job's stand user has no
    permission on the project's experiment under MLflow auth), the job says so and goes on,
    so a promotion that happened is not reported as failed, nor a failure hidden."""
    tags = {TAG_OUTCOME: outcome, TAG_OUTCOME_AT: datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        tracker.set_tags(request.trigger_run, tags)
    except ModelciError as error:
        print(
            f"warning: the outcome was not recorded on monitoring run {request.trigger_run}: "
            f"{error}",
            file=sys.stderr,
            flush=True,
        )
    print(
        f"retraining of {request.model} (triggered by monitoring run {request.trigger_run}): "
        f"{outcome}",
        flush=True,
    )


# --- one pipeline per drift event ---------------------------------------------------------------


def event_id(model: str, environment: str, served_run: str, number: int, at: datetime) -> str:
    """A drift event's id: `<model>-<environment>-<served run, 8 hex>-<check date>-<number>`,
    unique in the project by its number, readable without a look-up, free of `$`."""
    return f"{model}-{environment}-{served_run[:8]}-{at:%Y%m%d}-{number}"


@dataclass(frozen=True)
class Claim:
    """Drift event `number` of an environment and the monitoring run that owns it."""

    number: int
    event: str
    run: str  # the monitoring run that owns the event: the only one that triggers for it
    at: datetime  # when it was claimed (the owner's clock)

    def to_json(self) -> bytes:
        fields = {"event": self.event, "run": self.run, "at": self.at.isoformat()}
        return json.dumps(fields).encode()

    @classmethod
    def from_json(cls, number: int, data: bytes, uri: str) -> Claim:
        try:
            fields = json.loads(data)
            at = datetime.fromisoformat(fields["at"])
            return cls(number, str(fields["event"]), str(fields["run"]), at)
        except (ValueError, KeyError, TypeError) as error:
            raise ModelciError(
                f"the retraining claim {uri} is not one modelci wrote ({error}); delete it, "
                "and the next failed check claims the event again"
            ) from None


class EventClaims:
    """The claims of one environment's drift events: `<data>/.modelci/retrain/<n>.json`,
    each created once, by a conditional write, and never changed."""

    def __init__(self, store: S3Store, data_uri: str) -> None:
        self._store = store
        self.uri = data_uri.rstrip("/") + "/" + CLAIMS

    def newest(self) -> Claim | None:
        names = (uri.rsplit("/", 1)[-1] for uri in self._store.list_objects(self.uri))
        numbers = [int(found[1]) for name in names if (found := _CLAIM_NAME.fullmatch(name))]
        return self._read(max(numbers)) if numbers else None

    def take(self, mine: Claim) -> Claim:
        """Claim event `mine.number` for `mine.run`: `mine` when this run created the claim,
        else the claim another run made first (its run owns the event)."""
        uri = self._uri(mine.number)
        if not self._store.create_bytes(uri, mine.to_json()):
            return self._read(mine.number)  # another run's, or ours if a retried write made it
        if self._store.create_bytes(uri, mine.to_json()):
            raise ModelciError(
                f"the S3 store let {uri} be created twice: it ignores conditional writes "
                "(`If-None-Match: *`), so two monitoring runs could each start a retraining of "
                "one drift event. Use a store that honours them (AWS S3, MinIO, SeaweedFS "
                "after 4.16)"
            )
        return mine

    def _read(self, number: int) -> Claim:
        uri = self._uri(number)
        return Claim.from_json(number, self._store.get_bytes(uri), uri)

    def _uri(self, number: int) -> str:
        return f"{self.uri}{number:08d}.json"


@dataclass(frozen=True)
class GitLabAccess:
    """How a monitoring pod reaches GitLab: the DAG's variables and the trigger Secret's keys.
    The trigger token starts pipelines; the API token, optional, reads them back."""

    url: str  # MODELCI_GITLAB_URL
    project: str  # MODELCI_PROJECT
    ref: str  # MODELCI_RETRAIN_REF: the default branch
    trigger_token: str  # MODELCI_TRIGGER_TOKEN
    read_token: str  # MODELCI_GITLAB_TOKEN: `read_api`, Maintainer (reads pipeline variables)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GitLabAccess:
        from ..systems.gitlab_api import TOKEN_VARIABLE, TRIGGER_TOKEN_VARIABLE

        return cls(
            url=env.get("MODELCI_GITLAB_URL", "").strip(),
            project=env.get("MODELCI_PROJECT", "").strip(),
            ref=env.get("MODELCI_RETRAIN_REF", "").strip() or "main",
            trigger_token=env.get(TRIGGER_TOKEN_VARIABLE, "").strip(),
            read_token=env.get(TOKEN_VARIABLE, "").strip(),
        )

    def require_trigger(self) -> None:
        """An error naming what the pod lacks to trigger at all."""
        from ..systems.gitlab_api import TRIGGER_TOKEN_VARIABLE

        missing = [
            name
            for name, value in (
                ("MODELCI_GITLAB_URL", self.url),
                (TRIGGER_TOKEN_VARIABLE, self.trigger_token),
            )
            if not value
        ]
        if missing:
            raise ModelciError(
                f"{' and '.join(missing)} is not set in the pod: create the platform's trigger "
                "Secret (docs/data-scientists/monitoring.md)"
            )

    def trigger(self, variables: Mapping[str, str], event: str) -> TriggeredPipeline:
        """Start the pipeline of `event`, with `variables` and the event's, at most once
        (gitlab_api.trigger_event_pipeline)."""
        from ..systems.gitlab_api import trigger_event_pipeline

        return trigger_event_pipeline(
            self.url,
            self.trigger_token,
            self.project,
            self.ref,
            {**variables, EVENT_VARIABLE: event},
            self.lookup(event),
        )

    def lookup(self, event: str) -> EventLookup:
        """How to find the pipeline of `event`."""
        from ..systems.gitlab_api import EventLookup

        return EventLookup(token=self.read_token, key=EVENT_VARIABLE, value=event)

    def find(self, claim: Claim) -> TriggeredPipeline | None:
        """The pipeline of the claim's event, None when there is none; an error when it
        cannot be looked for."""
        from ..systems.gitlab_api import TOKEN_VARIABLE, find_event_pipeline

        if not self.url or not self.read_token:
            raise ModelciError(
                f"{TOKEN_VARIABLE} is not set in the pod, so GitLab's pipelines cannot be read "
                "(add it to the trigger Secret: docs/data-scientists/monitoring.md)"
            )
        return find_event_pipeline(
            self.url, self.project, self.ref, self.lookup(claim.event), claim.at
        )


def pending_trigger(
    tracker: Tracker, claim: Claim, gitlab: GitLabAccess, now: datetime
) -> LastTrigger | None:
    """The retraining of the newest drift event while it still counts: triggered, being
    triggered, or in doubt; None when it never started. An event in doubt is looked for in
    GitLab: found, its run is recorded as triggered; not found `SETTLE` after its claim, as
    failed; else (or when GitLab cannot be asked) it counts as in flight."""
    tags, started = _owner_record(tracker, claim)
    decision = tags.get(TAG_DECISION, TRIGGERING)
    if decision == TRIGGERED:
        return _last(started, tags.get(TAG_OUTCOME, ""), tags.get(TAG_PIPELINE, "?"))
    if decision not in (TRIGGERING, TRIGGER_UNKNOWN):
        return None  # it failed to start, or the run did not own the event after all
    try:
        found = gitlab.find(claim)
    except ModelciError as error:
        print(
            f"warning: the pipeline of drift event {claim.event} could not be looked for "
            f"({error}); the event counts as in flight",
            file=sys.stderr,
            flush=True,
        )
        return _last(claim.at, "", f"of event {claim.event}, not confirmed")
    if found is not None:
        where = found.web_url or found.id
        tracker.set_tags(claim.run, {TAG_DECISION: TRIGGERED, TAG_PIPELINE: where})
        print(f"drift event {claim.event}: its pipeline {where} exists (recorded)", flush=True)
        return _last(started, tags.get(TAG_OUTCOME, ""), where)
    if now - claim.at < SETTLE:
        return _last(claim.at, "", f"of event {claim.event}, not seen in GitLab yet")
    error = f"no pipeline of drift event {claim.event} exists {_ago(now - claim.at)} after it"
    before = tags.get(TAG_TRIGGER_ERROR, "")
    settled = f"{before}; settled later: {error}" if before else error
    tracker.set_tags(claim.run, {TAG_DECISION: TRIGGER_FAILED, TAG_TRIGGER_ERROR: settled[-4000:]})
    print(f"drift event {claim.event}: {error}: it never started", flush=True)
    return None


def _owner_record(tracker: Tracker, claim: Claim) -> tuple[dict[str, str], datetime]:
    """The tags of the run that owns `claim` and when it started; none and the claim's time
    when MLflow cannot say (the event is then in doubt)."""
    try:
        run = tracker.get_run(claim.run)
    except ModelciError:
        return {}, claim.at
    return dict(run.data.tags), datetime.fromtimestamp(run.info.start_time / 1000, UTC)


def _last(at: datetime, outcome: str, pipeline: str) -> LastTrigger:
    """Imported here: the commands that only report outcomes do not load the checks."""
    from ..monitoring.checks import LastTrigger

    return LastTrigger(at=at, outcome=outcome, pipeline=pipeline)


def _ago(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 60)} min"
