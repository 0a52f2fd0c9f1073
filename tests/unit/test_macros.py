"""The run values a batch command may name (`${ds}`, ...), and how `modelci pod-run` fills them."""

from __future__ import annotations

import pytest

from modelci.commands.pod_run import with_run_values
from modelci.config.macros import MACROS, env_name, expand, unknown_placeholders
from modelci.errors import ModelciError

VALUES = {"ds": "2024-05-07", "ts": "2024-05-07T00:00:00+00:00", "run_id": "manual__1"}


def test_allowlisted_placeholders_are_replaced() -> None:
    assert expand("--date=${ds}", VALUES) == "--date=2024-05-07"
    assert expand("${ds}/${run_id}", VALUES) == "2024-05-07/manual__1"


def test_a_known_macro_without_a_value_is_empty() -> None:
    # A run started without a logical date has no data interval.
    assert expand("from=${data_interval_start}", VALUES) == "from="


def test_double_dollar_writes_a_literal_placeholder() -> None:
    assert expand("$${ds} and ${ds}", VALUES) == "${ds} and 2024-05-07"
    assert unknown_placeholders("$${anything}") == []


@pytest.mark.parametrize(
    "text", ["${var.value.secret}", "${HOME}", "${ ds }", "${}", "${ds", "${conn.x.password}"]
)
def test_anything_else_is_refused(text: str) -> None:
    assert unknown_placeholders(text)
    with pytest.raises(ValueError, match="unknown placeholder"):
        expand(text, VALUES)


def test_jinja_and_shell_syntax_are_plain_text() -> None:
    for text in ("{{ var.value.secret }}", "$HOME", "$(whoami)", "{% raw %}", "50$"):
        assert unknown_placeholders(text) == []
        assert expand(text, VALUES) == text


def test_every_macro_has_its_own_environment_variable() -> None:
    names = {env_name(macro) for macro in MACROS}
    assert len(names) == len(MACROS)
    assert all(name.startswith("MODELCI_MACRO_") for name in names)
    with pytest.raises(ValueError):
        env_name("var")


def test_pod_run_fills_the_command_from_the_pod_environment() -> None:
    env = {env_name("ds"): "2024-05-07", "OTHER": "x"}
    command = ["python", "score.py", "--date", "${ds}", "{{ ds }}", "${run_id}"]

    assert with_run_values(command, env) == [
        "python",
        "score.py",
        "--date",
        "2024-05-07",
        "{{ ds }}",
        "",
    ]


def test_pod_run_refuses_an_unknown_placeholder() -> None:
    with pytest.raises(ModelciError, match=r"unknown placeholder '\$\{OTHER\}'"):
        with_run_values(["echo", "${OTHER}"], {"OTHER": "secret"})
