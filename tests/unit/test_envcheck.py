"""Which differences between the libraries a model was logged with and its environment's lock
refuse a deploy: another major or minor version of a package pinned in both."""

from modelci.lifecycle.envcheck import Mismatch, mismatches, pinned_versions

LOCK = """\
mlflow==3.17.2
numpy==2.2.6
scikit-learn==1.6.1
scipy==1.15.3
"""


def test_pins_are_read_with_normalized_names() -> None:
    text = (
        "Scikit_Learn==1.6.1\n# a comment\nnumpy >= 2\n"
        "mlflow[extras]==3.17.2 ; python_version>'3'\n-r other.txt\n"
    )
    assert pinned_versions(text) == {"scikit-learn": "1.6.1", "mlflow": "3.17.2"}


def test_the_same_minor_version_matches() -> None:
    logged = "mlflow==3.17.2\nscikit-learn==1.6.0\nnumpy==2.2.1\ncloudpickle==3.1.0\n"
    assert mismatches(logged, LOCK) == []  # patch releases differ; cloudpickle is not locked


def test_another_minor_or_major_version_is_a_mismatch() -> None:
    logged = "scikit-learn==1.3.2\nnumpy==1.26.4\nscipy==1.15.2\n"
    assert mismatches(logged, LOCK) == [
        Mismatch("numpy", "1.26.4", "2.2.6"),
        Mismatch("scikit-learn", "1.3.2", "1.6.1"),
    ]


def test_nothing_recorded_nothing_to_compare() -> None:
    assert mismatches("", LOCK) == []
