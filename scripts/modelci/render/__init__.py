"""What the pipeline writes, built from data: Airflow DAG code, Helm values for the KServe
chart, SparkApplications, and the plan of files for the shared repos. Pure."""
