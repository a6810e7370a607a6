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


def test_an_interval_band_draws_the_estimate_inside_its_interval_and_zero() -> None:
    points = [(50.0, 0.2, None, None), (100.0, 0.1, -0.05, 0.25), (150.0, 0.12, 0.01, 0.2)]
    svg = str(charts.interval_band(points, title="difference <over> time", x_label="rows"))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "difference &lt;over&gt; time" in svg  # escaped
    assert svg.count("<polygon") == 1  # the band, over the two bounded points only
    assert svg.count("<circle") == 3 and "unbounded" in svg and "[-0.05, +0.25]" in svg
    assert "stroke-dasharray" in svg  # the zero line
    lone = str(charts.interval_band([(1.0, 0.0, None, None)], title="one", x_label="rows"))
    assert "<polygon" not in lone and "<polyline" not in lone and lone.count("<circle") == 1


def test_a_waterfalls_labels_get_the_room_the_longest_needs() -> None:
    """`column = value` labels were cut at 150 px ("tract = month-to-month"): the label column
    now fits the longest (a very long one ends in "…", whole in its tooltip) and the plot keeps
    its width."""
    short = _parse(charts.waterfall(0.0, [("a = 1", 0.5)], title="t"))
    steps = [("contract = month-to-month", 0.8), ("monthly_charges = 54.51", -0.1)]
    long = _parse(charts.waterfall(-1.8, steps, title="t"))
    assert int(long.get("width", "0")) > int(short.get("width", "0"))
    labels = [t for t in long.iter(f"{SVG}text") if t.get("text-anchor") == "end"]
    room = float(labels[0].get("x", "0"))
    assert room >= len("contract = month-to-month") * charts.CHAR_PX
    assert [t.text for t in labels][1:3] == ["contract = month-to-month", "monthly_charges = 54.51"]
    # The number beside a bar at the right end ("-1.835 log-odds") stays inside the drawing.
    end = _parse(charts.waterfall(-1.835, [("a = 1", -24.19)], title="t", unit="log-odds"))
    numbers = [t for t in end.iter(f"{SVG}text") if t.get("text-anchor") is None]
    assert all(
        float(t.get("x", "0")) + len(t.text or "") * 6.6 <= int(end.get("width", "0"))
        for t in numbers
    )
    huge = _parse(charts.waterfall(0.0, [("x" * 60 + " = 1", 1.0)], title="t"))
    shown = next(t.text for t in huge.iter(f"{SVG}text") if (t.text or "").startswith("xxx"))
    assert shown is not None and len(shown) == charts.LABEL_CHARS and shown.endswith("…")
    tooltips = [r.find(f"{SVG}title") for r in huge.iter(f"{SVG}rect")]
    assert any(t is not None and (t.text or "").startswith("x" * 60 + " = 1") for t in tooltips)
