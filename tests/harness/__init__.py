"""Test harness: starts the real services (SeaweedFS S3, MLflow server) and makes git remotes.

The pytest fixtures that use these helpers live in ``tests/conftest.py``.
"""
