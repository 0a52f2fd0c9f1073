"""The picture each monitoring check logs: an SVG that parses as XML, shows every column (its
name and its buckets escaped), the PSI per column with the max_psi line, and nothing active."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from modelci.config.types import Monitoring
from modelci.monitoring.checks import evaluate
from modelci.monitoring.drift import Distribution
from modelci.monitoring.drift_svg import drift_svg
from modelci.monitoring.tables import open_table

SVG = "{http://www.w3.org/2000/svg}"


def texts(root: ET.Element) -> list[str]:
    """What each text element draws (its hover title left out)."""
    return [
        (node.text or "") + "".join(child.tail or "" for child in node)
        for node in root.iter(f"{SVG}text")
    ]


def titles(root: ET.Element) -> list[str]:
    return ["".join(node.itertext()) for node in root.iter(f"{SVG}title")]


def written(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_picture_of_a_check_names_each_column_and_the_threshold(tmp_path: Path) -> None:
    hostile = "x<script>alert('1')</script> & \x07"
    regions = ["north", hostile]  # a category of the reference: a bucket's label
    reference = written(
        tmp_path,
        "ref.csv",
        ["tenure months,region"] + [f"{i % 40},{regions[i % 2]}" for i in range(400)],
    )
    today = written(
        tmp_path,
        "today.csv",
        ["tenure months,region"] + [f"{i % 40 + 30},mars" for i in range(400)],
    )
    spec = Monitoring(data="d", reference="r", features=("tenure months", "region"), max_psi=0.25)
    result = evaluate(spec, open_table(reference, "ref"), open_table(today, "today"))
    picture = drift_svg("churn in production: <today> & more", result.distributions, 0.25)

    root = ET.fromstring(picture.encode())  # parses as XML
    assert root.tag == f"{SVG}svg"
    shown = texts(root)
    assert "churn in production: <today> & more" in shown
    assert "PSI per column (max_psi 0.25)" in shown and "max_psi 0.25" in shown
    for column in ("tenure months", "region"):
        assert column in shown  # its PSI bar's label
        assert any(line.startswith(f"{column} (") for line in shown)  # its panel
    label = hostile.replace("\x07", "")
    assert label[:19] + "…" in shown  # a bucket label, as text, cut to fit under its bars
    assert any(title.startswith(f"{label}: reference") for title in titles(root))  # on hover
    assert "\x07" not in picture and "<script" not in picture
    assert not [node for node in root.iter() if node.tag in (f"{SVG}script", f"{SVG}foreignObject")]
    assert "href" not in picture and "http" not in picture.replace(SVG[1:-1], "")
    psi = {d.column: d.psi for d in result.distributions}
    for value in psi.values():  # beside its bar; 17.7 is drawn at the end of the scale
        assert any(line.startswith(f"{value:.4f}") for line in shown), value
    assert f"{psi['region']:.4f} (off the scale)" in shown
    # The threshold line is drawn where the scale puts max_psi, dashed.
    assert any(line.get("stroke-dasharray") for line in root.iter(f"{SVG}line"))


def test_a_column_that_was_not_measured_is_in_the_picture_with_the_reason() -> None:
    missing = Distribution("age", "unmeasured", (), (), (), None, "the reference has no values")
    picture = drift_svg("check", [missing], 0.2)
    shown = texts(ET.fromstring(picture.encode()))
    assert "not measured: the reference has no values" in shown
    assert "age (unmeasured): not measured" in shown


@pytest.mark.parametrize("value", [0.0, 0.19, 0.21, 18.4])
def test_psi_bars_stay_inside_the_picture(value: float) -> None:
    shown = Distribution("x", "discrete", ("0", "1"), (0.5, 0.5), (0.4, 0.6), value)
    root = ET.fromstring(drift_svg("check", [shown], 0.2).encode())
    width = float(root.get("width", "0"))
    for rect in root.iter(f"{SVG}rect"):
        assert float(rect.get("x", "0")) + float(rect.get("width", "0")) <= width
