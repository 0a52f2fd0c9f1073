"""The MLflow REST client's pieces that need no server: credentials as MLflow's own client
reads them, the server's error answers, and MLflow 3's logged-model status names.
(tests/integration/test_tracking.py runs every call against a real MLflow server.)"""

from __future__ import annotations

import requests

from modelci.mlflow_rest import _auth_and_tls, _error, _logged_model


def test_a_token_wins_over_a_user_and_tls_settings_pass_through() -> None:
    both = {"MLFLOW_TRACKING_TOKEN": "t", "MLFLOW_TRACKING_USERNAME": "u"}
    assert _auth_and_tls(both) == {"headers": {"Authorization": "Bearer t"}}
    basic = {"MLFLOW_TRACKING_USERNAME": "u", "MLFLOW_TRACKING_PASSWORD": "p"}
    assert _auth_and_tls(basic) == {"auth": ("u", "p")}
    tls = {"MLFLOW_TRACKING_SERVER_CERT_PATH": "/ca.pem", "MLFLOW_TRACKING_CLIENT_CERT_PATH": "/c"}
    assert _auth_and_tls(tls) == {"verify": "/ca.pem", "cert": "/c"}
    assert _auth_and_tls({"MLFLOW_TRACKING_INSECURE_TLS": "true"}) == {"verify": False}
    assert _auth_and_tls({}) == {}


def answer(status: int, body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    return response


def test_an_error_answer_keeps_mlflows_code_and_message() -> None:
    body = b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run abc not found"}'
    error = _error("GET", "/api/2.0/mlflow/runs/get", answer(404, body))
    assert (error.error_code, error.get_http_status_code()) == ("RESOURCE_DOES_NOT_EXIST", 404)
    assert str(error) == "RESOURCE_DOES_NOT_EXIST: Run abc not found"
    proxy = _error("POST", "/api/2.0/mlflow/runs/search", answer(502, b"<html>bad gateway"))
    assert (proxy.error_code, str(proxy)) == ("", "HTTP 502 for POST /api/2.0/mlflow/runs/search")


def test_logged_model_status_reads_as_mlflow_client_names_it() -> None:
    info = {"model_id": "m-1", "name": "model", "status": "LOGGED_MODEL_READY"}
    assert _logged_model({"info": info}).status == "READY"
    pending = {"info": {**info, "status": "LOGGED_MODEL_PENDING"}}
    assert _logged_model(pending).status == "PENDING"
