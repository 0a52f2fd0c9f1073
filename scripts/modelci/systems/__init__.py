"""One place per external system; nothing else in the package talks to them.

MLflow: `tracking` (Tracker: `mlflow_base` plus the mixins `mlflow_runs`, `mlflow_models`,
`mlflow_registry`; model URIs in `mlflow_uris`), `mlflow_rest` (the REST client) and
`mlflow_search` (bulk searches). S3: `s3` (S3Store: `s3_base` plus `s3_objects` and
`s3_prefixes`). The shared git repos: `gitrepo` (with `gittrees`, trees edited without a
checkout); a model repository's own commit: `gitarchive`. GitLab's API: `gitlab_api`.
Argo CD: `argocd_webhook`.
"""
