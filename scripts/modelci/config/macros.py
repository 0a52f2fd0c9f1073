"""The run-time values a batch DAG's `args` may name: an allowlist, in a syntax of our own.

Airflow renders no field of a generated operator with Jinja, so `{{ ... }}` in `mlops.yaml` is
plain text: a model repository cannot read the shared Airflow's Variables or Connections. What
a batch job legitimately needs from its run (the logical date, the data interval) is offered
as `${name}` placeholders from `MACROS` below. The generated operator hands these values to the
pod as `MODELCI_*` environment variables taken from the task's run context, and
`modelci pod-run` replaces the placeholders in the command before running it. `$${` stands for a
literal `${`. Pure: no Airflow, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# name -> what it holds; docs/data-scientists/environment-and-batch.md repeats this.
MACROS: dict[str, str] = {
    "ds": "the run's logical date, YYYY-MM-DD",
    "ts": "the run's logical date and time, ISO 8601 with offset",
    "data_interval_start": "start of the run's data interval, ISO 8601 with offset",
    "data_interval_end": "end of the run's data interval, ISO 8601 with offset",
    "run_id": "the Airflow DAG run id",
}
ENV_PREFIX = "MODELCI_MACRO_"

# `$${` (escape) or `${name}`; a `${` that does not close is caught as unknown.
_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")


def env_name(macro: str) -> str:
    """The environment variable that carries `macro` into the pod."""
    if macro not in MACROS:
        raise ValueError(f"unknown macro {macro!r}")
    return ENV_PREFIX + macro.upper()


def values_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """The run values a DAG put in the pod's environment, by macro ("" when absent)."""
    return {macro: env.get(env_name(macro), "") for macro in MACROS}


def unknown_placeholders(text: str) -> list[str]:
    """Each `${...}` in `text` that is not an allowlisted macro (as written, e.g. "${x}")."""
    unknown = []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token == "$${":
            continue
        if match.group(1) is None or match.group(1) not in MACROS:
            unknown.append(token)
    return unknown


def expand(text: str, values: Mapping[str, str]) -> str:
    """`text` with every `${macro}` replaced by `values[macro]` and `$${` by `${`.

    Raises ValueError for a placeholder outside the allowlist; a known macro missing from
    `values` (a run without a logical date, say) becomes "".
    """

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$${":
            return "${"
        name = match.group(1)
        if name is None or name not in MACROS:
            raise ValueError(
                f"unknown placeholder {token!r}; the ones offered are "
                + ", ".join(f"${{{m}}}" for m in MACROS)
            )
        return values.get(name, "")

    return _TOKEN.sub(replace, text)
