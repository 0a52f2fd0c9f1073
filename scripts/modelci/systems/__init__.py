"""One module per external system: MLflow (tracking, mlflow_rest), S3 (s3), the shared git
repos (gitrepo), GitLab's API (gitlab_api) and Argo CD (argocd_webhook). Nothing else in the
package talks to them."""
