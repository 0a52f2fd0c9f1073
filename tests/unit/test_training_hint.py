"""The train job's reading of a failed training script: its stderr reaches the job's log as
it comes, and a known failure (skops refusing a model's types) gets the change to make."""

from __future__ import annotations

import sys
from pathlib import Path

from skops.io.exceptions import UntrustedTypesFoundException

from modelci.commands.train import STDERR_TAIL_BYTES, run_passing_stderr, training_failure_hint

TREE = "sklearn.tree._tree.Tree"


def test_the_hint_names_the_types_skops_refused_in_its_own_message() -> None:
    message = str(UntrustedTypesFoundException([TREE, "numpy.dtype"]))

    hint = training_failure_hint(f"Traceback ...\nMlflowException: Root error: {message}\n")

    assert f'skops_trusted_types=["numpy.dtype", "{TREE}"]' in hint
    assert "mlflow.sklearn.log_model(model, name='model', skops_trusted_types=" in hint
    assert "serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE" in hint


def test_no_hint_for_other_failures_or_for_text_that_is_no_type_name() -> None:
    assert training_failure_hint("Traceback ...\nValueError: bad input\n") == ""
    assert training_failure_hint("Untrusted types found in the file: ['x; import os'].") == ""
    assert training_failure_hint("Untrusted types found in the file: [__import__('os')].") == ""


def test_stderr_is_passed_through_whole_and_its_end_kept(tmp_path: Path, capfd) -> None:
    script = "import sys; sys.stderr.write('x' * 200_000 + 'the end'); sys.exit(3)"

    code, tail = run_passing_stderr([sys.executable, "-c", script], tmp_path, {})

    assert code == 3
    assert capfd.readouterr().err == "x" * 200_000 + "the end"
    assert len(tail) == STDERR_TAIL_BYTES and tail.endswith("the end")
