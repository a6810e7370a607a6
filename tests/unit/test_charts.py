"""The dashboard's SVG charts: one bar per point, scaled to the largest, labels escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from mlgate.web import charts

SVG = "{http://www.w3.org/2000/svg}"


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(
        str(markup).replace("<svg ", "<svg xmlns='http://www.w3.org/2000/svg' ", 1)
    )


def test_bars_scale_to_the_largest_value_and_say_each_value() -> None:
    svg = _parse(charts.bars([("mon", 2), ("tue", 0), ("wed", 8)], title="calls", unit="calls"))
    rects = svg.findall(f"{SVG}rect")
    heights = [float(r.get("height", "0")) for r in rects]
    assert len(rects) == 3
    assert heights[1] == 0.0
    assert abs(heights[2] / heights[0] - 4.0) < 1e-6  # 8 is four times 2
    titles = [r.find(f"{SVG}title").text for r in rects]  # type: ignore[union-attr]
    assert titles == ["mon: 2 calls", "tue: 0 calls", "wed: 8 calls"]
    assert svg.get("role") == "img" and svg.get("aria-label") == "calls"


def test_labels_are_escaped_and_an_empty_series_draws_an_empty_chart() -> None:
    markup = charts.bars([("<script>", 1.0)], title="a & b")
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    assert "a &amp; b" in markup
    empty = _parse(charts.bars([], title="nothing"))
    assert empty.findall(f"{SVG}rect") == []


def test_spark_draws_a_bar_per_day_and_large_numbers_are_shortened() -> None:
    svg = _parse(charts.spark([0, 1, 5, 0], title="4 days"))
    assert len(svg.findall(f"{SVG}rect")) == 4
    big = charts.bars([("x", 2_500_000)], title="big")
    assert re.search(r">2\.5M<", big)
