"""Airflow cluster policy for modelci's two Git DAG bundles: a platform team copies this file to
`$AIRFLOW_HOME/config/airflow_local_settings.py` (or adds its `dag_policy` to theirs).

Anyone who can push a feature branch can write the feature environments' bundle, so a file
there could declare a stand's `dag_id` and take the stand's DAG over. With this policy a DAG in
that bundle must be a feature environment's (`<project>__b-<branch>__<model>__<kind>`); any
other is an import error of that file. That stops a mistake, not an attacker: the policy runs
in the process that parses the file, after the file's own code, which can switch it off. So
the stands' bundle is parsed by an Airflow of its own (docs/platform/security.md). Standalone on
purpose: Airflow's environment does not have modelci installed.
"""

from airflow.exceptions import AirflowClusterPolicyViolation

# The bundle on MODELCI_DAG_REPO_BRANCH (docs/platform/setup.md).
FEATURE_BUNDLE = "modelci_branches"
FEATURE_PREFIX = "b-"  # every feature environment's name starts with it; no stand's does


def dag_policy(dag) -> None:
    if f"/{FEATURE_BUNDLE}/" not in str(dag.fileloc):
        return
    parts = dag.dag_id.split("__")
    if len(parts) != 4 or not parts[1].startswith(FEATURE_PREFIX):
        raise AirflowClusterPolicyViolation(
            f"DAG {dag.dag_id!r} is in bundle {FEATURE_BUNDLE}, which holds only feature "
            "environments' DAGs (<project>__b-<branch>__<model>__<kind>); a stand's DAG comes "
            "from the stands bundle only"
        )
