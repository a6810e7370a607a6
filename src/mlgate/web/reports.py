"""A version's report inside the dashboard (its tables from the stored report data, its plots
from the stored report page, each with a caption), the standalone page to download, and the
plots of two versions paired by kind for the compare page."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from mlgate.access import policy
from mlgate.access.model import Target
from mlgate.api.authorize import access
from mlgate.errors import InvalidInput
from mlgate.registry.model import ModelVersion
from mlgate.training.evaluate import metrics_heading
from mlgate.training.report import VERSION_PLACEHOLDER, kind_of
from mlgate.training.undefined import (
    NOT_DEFINED,
    is_defined,
    metric_rows,
    reason_of,
    stated,
    stated_field,
    stated_optional,
)
from mlgate.web import pages
from mlgate.web.pages import member, page, render

router = APIRouter(prefix="/ui", tags=["web"], include_in_schema=False)
# The standalone page has no script; its CSP allows none.
STANDALONE_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SMALL_P = 1e-4  # p-values below this read "< 0.0001"


@dataclass(frozen=True)
class Figure:
    """One plot of a stored report: its kind (what pairs it across versions), its title, what
    it shows and on what data, and the image as a data: URI."""

    kind: str
    title: str
    caption: str
    uri: str

    @property
    def wide(self) -> bool:
        """Much wider than tall (two panels side by side): the page gives it a whole row."""
        width, height = _size(self.uri)
        return width > 1.6 * height


@router.get("/models/{name}/versions/{version}/report")
@access("read")
@page("ui")
def report(request: Request, name: str, version: str) -> Response:
    """The version's report in the dashboard's layout: metrics, notes, coefficients,
    contributions, and every plot with its caption."""
    number = _number(version)
    me = member(request, "ui", "read", Target(name, version=number))
    services = pages.services_of(request)
    found = services.registry.resolve(name, number)
    stored = services.registry.attachment(found, "report.html")
    data = found.report or {}
    evaluation = data.get("evaluation") or {}
    return render(
        request, "report.html", principal=me, name=name, v=found, data=data,
        heading=metrics_heading(evaluation) if evaluation else "Metrics",
        metrics=metric_rows(found.metrics, evaluation), evaluation=evaluation,
        cv=(data.get("cv") or {}).get("metrics") or {},
        coefficients=_coefficients(data.get("inference")),
        figures=figures(stored, found), lineage=found.lineage,
        can_export=policy.may(me, "export", Target(name, version=number)),
    )  # fmt: skip


@router.get("/models/{name}/versions/{version}/report.html")
@access("read")
@page("ui")
def standalone(request: Request, name: str, version: str) -> Response:
    """The report page as training stored it, self-contained, to download and keep."""
    number = _number(version)
    member(request, "ui", "read", Target(name, version=number))
    services = pages.services_of(request)
    found = services.registry.resolve(name, number)
    raw = services.registry.attachment(found, "report.html")
    text = raw.replace(VERSION_PLACEHOLDER.encode(), f"v{found.number}".encode())
    file_name = f"{found.model_name}-v{found.number}-report.html"
    return Response(
        text,
        media_type="text/html; charset=utf-8",
        headers={
            "content-security-policy": STANDALONE_CSP,
            "cache-control": "no-store",
            "content-disposition": f'attachment; filename="{file_name}"',
        },
    )


# The stored pages write a figure as <figure id='KIND'><figcaption>TITLE</figcaption><img
# alt='TITLE' src='data:...'>[<p class='caption'>CAPTION</p>]</figure> (tabular models; no
# caption before captions were kept) or <figure><img alt="TITLE" src="data:..."><figcaption>
# TITLE</figcaption></figure> (forecasters, generators).
_FIGURE = re.compile(r"<figure\b([^>]*)>(.*?)</figure>", re.S)
_ID = re.compile(r"\bid=(['\"])(.*?)\1")
_IMG = re.compile(
    r"<img alt=(['\"])(.*?)\1 src=(['\"])(data:image/png;base64,[A-Za-z0-9+/=]+)\3>", re.S
)
_CAPTION = re.compile(r"<p class=(['\"])caption\1>(.*?)</p>", re.S)


def figures(stored: bytes, version: ModelVersion) -> list[Figure]:
    """The plots of a stored report page, in its order, each with its caption: the one the
    report data keeps, else the one the page keeps, else what is known of reports drawn before
    plots were captioned."""
    kept = {f["kind"]: f["caption"] for f in (version.report or {}).get("figures", [])}
    out = []
    for attributes, inner in _FIGURE.findall(stored.decode("utf-8", "replace")):
        image = _IMG.search(inner)
        if image is None:
            continue
        title = html.unescape(image.group(2))
        named = _ID.search(attributes)
        kind = html.unescape(named.group(2)) if named else kind_of(title)
        written = _CAPTION.search(inner)
        caption = kept.get(kind) or (html.unescape(written.group(2)) if written else "")
        out.append(Figure(kind, title, caption or _uncaptioned(kind, title, version), image[4]))
    return out


def paired(
    first: list[Figure], second: list[Figure]
) -> list[tuple[str, Figure | None, Figure | None]]:
    """The two versions' plots side by side, by kind: each kind once, in the first version's
    order and then the second's new ones, with None where a version has no such plot (another
    algorithm draws other importances, a network its loss curve). Titled as the first version
    that has the kind titles it."""
    left, right = {f.kind: f for f in first}, {f.kind: f for f in second}
    kinds = list(left) + [k for k in right if k not in left]
    return [((left.get(k) or right[k]).title, left.get(k), right.get(k)) for k in kinds]


def _size(uri: str) -> tuple[int, int]:
    """A PNG's width and height, from its header (IHDR) in the data: URI."""
    head = base64.b64decode(uri.partition(",")[2][:32])
    if len(head) < 24 or head[12:16] != b"IHDR":
        return 0, 0
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _uncaptioned(kind: str, title: str, version: ModelVersion) -> str:
    """What can be said of a plot whose report keeps no caption: a forecaster's or a
    generator's (their pages have none), or one drawn before reports captioned plots."""
    data = version.report or {}
    forecast, generation = data.get("forecast"), data.get("generation")
    if forecast is not None and kind == "forecasts":
        return (
            "The held-out end of the first series (right of the vertical line): what happened, "
            "the network's one-step-ahead forecasts and the seasonal-naive ones; the metrics "
            f"are over {forecast.get('test_windows', '?')} held-out windows of all series."
        )
    if (forecast is not None or generation is not None) and kind == "loss-curve":
        return "The network's loss per epoch while it was fitted (training, and validation)."
    if generation is not None:
        compared = generation.get("compared_rows", "?")
        if kind == "correlations":
            return (
                f"Correlations between the numeric columns in the {compared} table rows compared "
                "(left) and in the synthetic rows (right)."
            )
        return (
            f"{title}: its distribution in the {compared} table rows compared beside the "
            "synthetic rows' (a number's histogram, a category's 15 most frequent values)."
        )
    holdout = (data.get("evaluation") or {}).get("n_holdout")
    if kind == "learning-curve":
        return (
            "Drawn before reports recorded their rows: the model refitted on growing shares of at "
            "most the first 2,000 training rows, scored by 3-fold cross-validation within them "
            "(a held-out third for a network), accuracy for a classifier, R² for a regression."
        )
    if holdout and kind != "loss-curve":
        return f"{title}, on the {holdout:,} holdout rows (drawn before plots were captioned)."
    return f"{title} (drawn before plots were captioned)."


def _coefficients(found: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The coefficient table as the page shows it: the five columns people read first in one
    table, the rest in a second; each cell formatted, or "not defined (why)"."""
    if not found:
        return None
    terms = found.get("terms") or []
    logistic = found.get("kind") != "OLS"
    multiclass = any(t.get("outcome") for t in terms)
    served = any(t.get("served") is not None for t in terms)
    rows = []
    for t in terms:
        rows.append(
            {
                "term": t["term"],
                "outcome": t.get("outcome") or "",
                "estimate": _cell(stated_field(t, "estimate")),
                "std_error": _cell(stated_field(t, "std_error", ".3g")),
                "interval": _cell(_interval(t)),
                "p": _cell(_p_value(t)),
                "odds": _cell(_odds(t)) if logistic else None,
                "statistic": _cell(stated_field(t, "statistic", ".3f")),
                "standardized": _cell(stated_optional(t, "standardized")),
                "served": _cell(stated_optional(t, "served")) if served else None,
                "vif": _cell(stated_optional(t, "vif", ".3g")),
            }
        )
    why = found.get("undefined") or {}
    shown = {"condition_number": found.get("condition_number"), **(found.get("diagnostics") or {})}
    return {
        "kind": found.get("kind"),
        "logistic": logistic,
        "multiclass": multiclass,
        "served": served,
        "errors": "heteroscedasticity-robust (HC3)"
        if found.get("standard_errors") == "hc3"
        else "classical",
        "served_difference": found.get("served_difference"),
        "rows": rows,
        "diagnostics": [
            (k.replace("_", " "), _cell(stated(v, ".4g", why.get(k)))) for k, v in shown.items()
        ],
    }


def _cell(text: str) -> dict[str, Any]:
    """A table cell: its text, and whether it says why a value is missing (such cells wrap)."""
    return {"text": text, "undefined": text.startswith(NOT_DEFINED)}


def _interval(term: Mapping[str, Any]) -> str:
    low, high = term.get("low"), term.get("high")
    if not is_defined(low) and not is_defined(high):
        return stated(None, reason=reason_of(term, "low") or reason_of(term, "high"))
    return f"{stated_field(term, 'low')} to {stated_field(term, 'high')}"


def _p_value(term: Mapping[str, Any]) -> str:
    value = term.get("p_value")
    if value is not None and is_defined(value) and float(value) < SMALL_P:
        return f"< {SMALL_P:.4f}"
    return stated_field(term, "p_value", ".4f")


def _odds(term: Mapping[str, Any]) -> str:
    """exp(estimate) (exp(low) to exp(high)), or why it has no value."""
    odds = term.get("odds_ratio") or [None, None, None]
    reason = reason_of(term, "odds_ratio")
    if not any(is_defined(v) for v in odds):
        return stated(None, reason=reason)
    low, high = (stated(v, ".4g", reason) for v in odds[1:])
    return f"{stated(odds[0], '.4g', reason)} ({low} to {high})"


def version_number(raw: str) -> int:
    """A page's version path segment (3 or v3) as a number, else InvalidInput."""
    return _number(raw)


def _number(raw: str) -> int:
    raw = raw.strip().lstrip("v")
    if not raw.isdecimal() or len(raw) > 9 or int(raw) < 1:
        raise InvalidInput(f"version must be a version number such as 3; got {raw[:20]!r}")
    return int(raw)
