"""The MLflow REST client's pieces that need no server: credentials as MLflow's own client
reads them, the server's error answers, and MLflow 3's logged-model status names.
(tests/integration/test_tracking.py runs every call against a real MLflow server.)"""

from __future__ import annotations

import ssl

from modelci.systems.mlflow_rest import (
    _error,
    _headers,
    _logged_model,
    _tls_context,
    _without_userinfo,
)


def test_a_token_wins_over_a_user_and_a_user_over_the_urls_userinfo() -> None:
    url, pair = _without_userinfo("https://ci:s%40cret@mlflow.example.com:5000/prefix")
    assert url == "https://mlflow.example.com:5000/prefix" and pair == ("ci", "s@cret")
    assert _headers({"MLFLOW_TRACKING_TOKEN": "t", "MLFLOW_TRACKING_USERNAME": "u"}, pair) == {
        "Authorization": "Bearer t"
    }
    basic = {"MLFLOW_TRACKING_USERNAME": "u", "MLFLOW_TRACKING_PASSWORD": "p"}
    assert _headers(basic, pair) == {"Authorization": "Basic dTpw"}  # base64 of u:p
    assert _headers({}, pair) == {"Authorization": "Basic Y2k6c0BjcmV0"}  # ci:s@cret
    assert _headers({}, None) == {}
    assert _without_userinfo("http://mlflow:5000") == ("http://mlflow:5000", None)


def test_insecure_tls_is_only_what_is_asked_for() -> None:
    assert _tls_context({}).verify_mode == ssl.CERT_REQUIRED
    insecure = _tls_context({"MLFLOW_TRACKING_INSECURE_TLS": "true"})
    assert insecure.verify_mode == ssl.CERT_NONE and not insecure.check_hostname


def test_an_error_answer_keeps_mlflows_code_and_message() -> None:
    body = b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run abc not found"}'
    error = _error("GET", "/api/2.0/mlflow/runs/get", 404, body)
    assert (error.error_code, error.get_http_status_code()) == ("RESOURCE_DOES_NOT_EXIST", 404)
    assert str(error) == "RESOURCE_DOES_NOT_EXIST: Run abc not found"
    assert not error.transient
    proxy = _error("POST", "/api/2.0/mlflow/runs/search", 502, b"<html>bad gateway")
    assert (proxy.error_code, str(proxy)) == ("", "HTTP 502 for POST /api/2.0/mlflow/runs/search")
    assert proxy.transient  # an overloaded server or proxy is worth another attempt


def test_logged_model_status_reads_as_mlflow_client_names_it() -> None:
    info = {"model_id": "m-1", "name": "model", "status": "LOGGED_MODEL_READY"}
    assert _logged_model({"info": info}).status == "READY"
    pending = {"info": {**info, "status": "LOGGED_MODEL_PENDING"}}
    assert _logged_model(pending).status == "PENDING"
