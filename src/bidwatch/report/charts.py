"""Server-side SVG charts for report.html.

Each function returns one self-contained ``<svg>`` as :class:`markupsafe.Markup`. The page has
a strict Content-Security-Policy and embeds hundreds of charts, so every chart is built by
:func:`_el`, which escapes every attribute value and text node, and holds no script, no event
handler, no link and no ``id`` (ids would collide between charts). Coordinates are rounded to
0.1 px to keep the page small; the same input gives byte-identical output.

Translated strings come in ``labels``; a key that is missing falls back to the English text in
:data:`DEFAULT_LABELS` so that a new chart never breaks a page whose translations lag behind.
:data:`LABEL_KEYS` lists the keys each chart reads. Templates containing ``{n}`` (and
``{m}``) get counts substituted. The chart's accessible name (``<title>`` and ``aria-label``)
is the keyword ``title``, else ``labels["title_<chart>"]``, else an English default.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from markupsafe import Markup, escape

from bidwatch.report.i18n import labels

__all__ = [
    "DEFAULT_LABELS",
    "LABEL_KEYS",
    "activity",
    "bids_chart",
    "growth_chart",
    "network",
    "price_chart",
    "rotation",
    "waterfall",
]

Unit = Literal["si", "wan"]
"""How amounts are shortened: ``si`` 1.2k / 3.4M / 5.6B, ``wan`` 12万 / 3.4亿 (for zh)."""

WIDTH = 720
SVG_NS = "http://www.w3.org/2000/svg"
RED = "#c0392b"  # collusion
AMBER = "#d68910"  # materials
DARK = "#1f2d3d"  # winners, totals
GREY = "#7f8c8d"
LIGHT = "#d5d8dc"
FAINT = "#eaecee"
INK = "#2c3e50"
MUTED = "#566573"
TRACE = "#2471a3"  # shared traces: not red, which already means risk
SPAN_OPACITY = 0.35
FONT = (
    "font-family:system-ui,-apple-system,'Segoe UI','Noto Sans CJK SC','Microsoft YaHei',sans-serif"
)

# The report's English labels: one wording for the page and its charts.
DEFAULT_LABELS: Mapping[str, str] = labels("en")

LABEL_KEYS: Mapping[str, tuple[str, ...]] = {
    "bids_chart": (
        "title_bids",
        "empty",
        "amount",
        "estimate",
        "winner",
        "band",
        "flagged_bidder",
        "missing",
    ),
    "waterfall": ("title_waterfall", "empty", "total", "others", "points"),
    "activity": ("title_activity", "empty", "bids", "wins"),
    "network": ("title_network", "empty", "wins", "risk", "cobids", "traces", "more"),
    "rotation": ("title_rotation", "empty", "undated"),
    "growth_chart": (
        "title_growth",
        "empty",
        "amount",
        "growth",
        "limit",
        "flagged",
        "skipped_points",
        "sampled",
    ),
    "price_chart": (
        "title_price",
        "empty",
        "ratio",
        "reference",
        "range",
        "flagged",
        "missing",
    ),
}

# ---------------------------------------------------------------------------------------------
# Building blocks


_ATTR_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*")
# Characters XML 1.0 forbids: one of them in a bidder name would make the whole page unparsable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

Attr = str | int | float | None


def _clean(value: object) -> str:
    """Data as plain text: never Markup (which escape() would pass through), XML-safe."""
    return _NOT_XML.sub("", str(value))


def _num(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"chart coordinate is not finite: {value!r}")
    rounded = round(float(value), 1)
    if rounded == 0:
        return "0"
    text = f"{rounded:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _el(tag: str, attrs: Mapping[str, Attr] | None = None, *children: Markup | str) -> Markup:
    """One element; attribute values and str children are escaped, Markup children kept."""
    parts = [tag]
    for key, value in (attrs or {}).items():
        if value is None:
            continue
        if not _ATTR_NAME.fullmatch(key) or key.lower().startswith("on"):
            raise ValueError(f"refusing SVG attribute name {key!r}")
        text = _num(value) if isinstance(value, int | float) else _clean(value)
        parts.append(f'{key}="{escape(text)}"')
    head = " ".join(parts)
    if not children:
        return Markup(f"<{head}/>")
    body = "".join(
        str(child) if isinstance(child, Markup) else str(escape(_clean(child)))
        for child in children
    )
    return Markup(f"<{head}>{body}</{tag}>")


def _text(
    x: float,
    y: float,
    content: str,
    *,
    anchor: str | None = None,
    size: float | None = None,
    fill: str = INK,
    bold: bool = False,
    cls: str | None = None,
    tip: str | None = None,
    transform: str | None = None,
    halo: bool = False,
) -> Markup:
    attrs: dict[str, Attr] = {
        "x": x,
        "y": y,
        "fill": fill,
        "text-anchor": anchor,
        "font-size": size,
        "font-weight": "bold" if bold else None,
        "class": cls,
        "transform": transform,
    }
    if halo:  # a white outline keeps a label readable over the lines it crosses
        attrs |= {"stroke": "#ffffff", "stroke-width": 3, "paint-order": "stroke"}
    if tip is not None and tip != content:
        return _el("text", attrs, _el("title", None, tip), content)
    return _el("text", attrs, content)


def _line(
    x1: float,
    y1: float,
    x2: float,
    y2: float,
    *,
    stroke: str,
    width: float = 1.0,
    dash: str | None = None,
    opacity: float | None = None,
    cls: str | None = None,
    tip: str | None = None,
) -> Markup:
    attrs: dict[str, Attr] = {
        "x1": x1,
        "y1": y1,
        "x2": x2,
        "y2": y2,
        "stroke": stroke,
        "stroke-width": width,
        "stroke-dasharray": dash,
        "stroke-opacity": opacity,
        "class": cls,
    }
    if tip is None:
        return _el("line", attrs)
    return _el("line", attrs, _el("title", None, tip))


def _rect(
    x: float,
    y: float,
    w: float,
    h: float,
    *,
    fill: str,
    opacity: float | None = None,
    cls: str | None = None,
    tip: str | None = None,
) -> Markup:
    attrs: dict[str, Attr] = {
        "x": x,
        "y": y,
        "width": max(w, 0.0),
        "height": max(h, 0.0),
        "fill": fill,
        "fill-opacity": opacity,
        "class": cls,
    }
    if tip is None:
        return _el("rect", attrs)
    return _el("rect", attrs, _el("title", None, tip))


def _circle(
    cx: float,
    cy: float,
    r: float,
    *,
    fill: str | None,  # None: inherited from a <g>, which saves bytes on charts of many marks
    stroke: str | None = None,
    stroke_width: float | None = None,
    opacity: float | None = None,
    cls: str | None = None,
    tip: str | None = None,
) -> Markup:
    attrs: dict[str, Attr] = {
        "cx": cx,
        "cy": cy,
        "r": r,
        "fill": fill,
        "fill-opacity": opacity,
        "stroke": stroke,
        "stroke-width": stroke_width,
        "class": cls,
    }
    if tip is None:
        return _el("circle", attrs)
    return _el("circle", attrs, _el("title", None, tip))


def _svg(height: float, title: str, kind: str, *children: Markup) -> Markup:
    return _el(
        "svg",
        {
            "xmlns": SVG_NS,
            "viewBox": f"0 0 {WIDTH} {_num(height)}",
            "width": "100%",
            "height": height,
            "preserveAspectRatio": "xMinYMin meet",
            "role": "img",
            "aria-label": title,
            "class": f"bw-chart bw-{kind}",
            "style": f"{FONT};font-size:11px;max-width:{WIDTH}px",
        },
        _el("title", None, title),
        *children,
    )


def _label(labels: Mapping[str, str], key: str, default_key: str | None = None) -> str:
    value = labels.get(key)
    if value is None or value == "":
        value = DEFAULT_LABELS[default_key or key]
    return _clean(value)


def _title(labels: Mapping[str, str], kind: str, title: str | None) -> str:
    # not labels["title"]: a page's shared translations would give every chart the page's title
    if title:
        return _clean(title)
    return _label(labels, f"title_{kind}")


def _fill(template: str, **values: int) -> str:
    """Counts into a note; str.replace, not str.format, so other braces cannot raise. A template
    without ``{n}`` (a shared label such as "skipped") gets the count appended."""
    if "{n}" not in template and "n" in values:
        template += " ({n})"
    for key, value in values.items():
        template = template.replace("{" + key + "}", str(value))
    return template


def _empty(title: str, kind: str, message: str, notes: Sequence[str] = ()) -> Markup:
    lines = [_text(8, 24, message, fill=MUTED, cls="bw-empty")]
    lines += [
        _text(8, 42 + 16 * i, note, fill=MUTED, cls="bw-note") for i, note in enumerate(notes)
    ]
    return _svg(40 + 16 * len(notes), title, kind, *lines)


# No amount, ratio or score is this large; beyond it an axis span would overflow to inf.
_LARGEST = 1e18


def _finite(value: object) -> float | None:
    """A drawable number, or None for None, NaN, inf, text and absurd magnitudes."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if abs(number) <= _LARGEST else None


def _count(value: object) -> int:
    number = _finite(value)
    return max(int(number), 0) if number is not None else 0


def _width_units(text: str) -> float:
    return sum(1.8 if unicodedata.east_asian_width(ch) in "WF" else 1.0 for ch in text)


def _text_width(text: str, size: float = 11.0) -> float:
    # a generous guess (sans-serif averages about 0.55 em): better cut early than overflow
    return _width_units(text) * size * 0.6


def _shorten(text: str, width: float, size: float = 11.0) -> str:
    """``text`` cut with an ellipsis to fit ``width`` px; the full text goes in a <title>."""
    units = width / (size * 0.6)
    if _width_units(text) <= units:
        return text
    out = ""
    used = 1.0  # the ellipsis
    for ch in text:
        used += 1.8 if unicodedata.east_asian_width(ch) in "WF" else 1.0
        if used > units:
            break
        out += ch
    return out + "…"


# ---------------------------------------------------------------------------------------------
# Numbers and axes


_SCALES: Mapping[str, tuple[tuple[float, str], ...]] = {
    "si": ((1e9, "B"), (1e6, "M"), (1e3, "k")),
    "wan": ((1e8, "亿"), (1e4, "万")),
}


def _scale(magnitude: float, unit: Unit) -> tuple[float, str]:
    if unit not in _SCALES:
        raise ValueError(f"unit must be 'si' or 'wan', got {unit!r}")
    for size, suffix in _SCALES[unit]:
        if magnitude >= size:
            return size, suffix
    return 1.0, ""


def _strip_zeros(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def _compact(value: float, unit: Unit = "si") -> str:
    """About three significant digits: 1.23M, 45.6k, 120万."""
    value = float(f"{value:.3g}")  # first, so that 999,999 becomes 1M and not 1000k
    size, suffix = _scale(abs(value), unit)
    scaled = value / size
    if abs(scaled) < 1:
        text = f"{scaled:.3g}"
    else:
        digits = 0 if abs(scaled) >= 100 else 1 if abs(scaled) >= 10 else 2
        text = _strip_zeros(f"{scaled:.{digits}f}")
    return "0" if text in ("0", "-0") else text + suffix


def _full(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return _strip_zeros(f"{value:,.2f}")


def _points(value: float, *, sign: bool = False) -> str:
    text = _strip_zeros(f"{value:.1f}")
    if text == "-0":
        text = "0"
    return f"+{text}" if sign and value > 0 else text


def _fixed(values: Sequence[float], size: float, suffix: str) -> list[str]:
    """Tick labels sharing the fewest decimals that show every tick exactly."""
    scaled = [v / size for v in values]
    digits = 0
    while digits < 4 and any(abs(round(s, digits) - s) > 1e-6 * max(1.0, abs(s)) for s in scaled):
        digits += 1
    return ["0" if abs(s) < 1e-12 else f"{s:.{digits}f}{suffix}" for s in scaled]


def _amount_ticks(unit: Unit) -> Callable[[Sequence[float]], list[str]]:
    def fmt(ticks: Sequence[float]) -> list[str]:
        size, suffix = _scale(max(abs(t) for t in ticks), unit)
        return _fixed(ticks, size, suffix)

    return fmt


def _plain_ticks(ticks: Sequence[float]) -> list[str]:
    return _fixed(ticks, 1.0, "")


def _percent_ticks(ticks: Sequence[float]) -> list[str]:
    return _fixed(ticks, 0.01, "%")


def _percent(value: float) -> str:
    return _strip_zeros(f"{value * 100:.1f}") + "%"


def _axis(
    lo: float, hi: float, count: int = 5, *, integer: bool = False
) -> tuple[float, float, list[float]]:
    """Nice ticks covering [lo, hi]; a zero range is widened so nothing divides by zero."""
    if hi < lo:
        lo, hi = hi, lo
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi), 1.0):
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = 10 * magnitude
    # no 2.5 multiple: its ticks need one decimal more (1.025M) for no gain in reading
    for multiple in (1, 2, 5, 10):
        if raw <= multiple * magnitude * (1 + 1e-9):
            step = multiple * magnitude
            break
    if integer:
        step = max(1.0, float(round(step)))
    start = math.floor(lo / step + 1e-9) * step
    end = math.ceil(hi / step - 1e-9) * step
    ticks = [round(start + i * step, 10) for i in range(round((end - start) / step) + 1)]
    return ticks[0], ticks[-1], ticks


@dataclass(frozen=True)
class _Scale:
    lo: float
    hi: float
    x0: float
    x1: float

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo
        if span <= 0:
            return (self.x0 + self.x1) / 2
        return self.x0 + (min(max(value, self.lo), self.hi) - self.lo) / span * (self.x1 - self.x0)


# ---------------------------------------------------------------------------------------------
# Legends


@dataclass(frozen=True)
class _Key:
    kind: Literal["dot", "rect", "line"]
    color: str
    text: str
    stroke: str | None = None
    dash: str | None = None
    width: float = 2.0
    r: float = 4.0
    opacity: float | None = None


def _swatch(key: _Key, x: float, y: float) -> Markup:
    if key.kind == "dot":
        return _circle(
            x + 6,
            y,
            key.r,
            fill=key.color,
            stroke=key.stroke,
            stroke_width=1.5 if key.stroke else None,
        )
    if key.kind == "rect":
        return _rect(x, y - 5, 12, 10, fill=key.color, opacity=key.opacity)
    return _line(x, y, x + 12, y, stroke=key.color, width=key.width, dash=key.dash)


def _legend(
    keys: Sequence[_Key], x0: float, y0: float, right: float, *, vertical: bool = False
) -> tuple[Markup, float]:
    """Keys laid left to right (wrapping) or one per line; returns the legend and its bottom."""
    if not keys:
        return Markup(""), y0 - 6
    parts: list[Markup] = []
    x, y = x0, y0
    for index, key in enumerate(keys):
        room = right - x0 - 20
        text = _shorten(key.text, room)
        width = 20 + _text_width(text) + 14
        if index and (vertical or x + width > right):
            x, y = x0, y + 16
        parts.append(_swatch(key, x, y))
        parts.append(_text(x + 18, y + 4, text, tip=key.text))
        x += width
    return _el("g", {"class": "bw-legend"}, *parts), y + 8


# ---------------------------------------------------------------------------------------------
# Dot rows: one labelled row per item on a horizontal value axis (bids, unit prices)


@dataclass(frozen=True)
class _Dot:
    label: str
    value: float
    tip: str
    fill: str
    r: float = 4.0
    stroke: str | None = None
    cls: str = "bw-mark"
    pinned: int = 0  # label priority: 2 winner, 1 flagged, 0 the rest
    label_fill: str = INK
    bold: bool = False


@dataclass(frozen=True)
class _Span:
    lo: float
    hi: float | None  # None: to the end of the axis
    fill: str
    cls: str
    tip: str


@dataclass(frozen=True)
class _Rule:
    value: float
    stroke: str
    cls: str
    tip: str
    dash: str | None = "5,3"


def _row_height(rows: int, *, roomy: int = 20, height: float = 360.0) -> float:
    if rows <= roomy:
        return 18.0
    return max(2.0, min(18.0, height / rows))


def _pick_labelled(rows: Sequence[_Dot], row_h: float, gap: float = 11.0) -> set[int]:
    """Rows whose labels fit without overlapping: winners first, then flagged, then the rest."""
    if row_h >= gap:
        return set(range(len(rows)))
    chosen: list[float] = []
    picked: set[int] = set()
    order = sorted(range(len(rows)), key=lambda i: -rows[i].pinned)
    for index in order:
        y = index * row_h
        if all(abs(y - other) >= gap for other in chosen):
            chosen.append(y)
            picked.add(index)
    return picked


def _dot_rows(
    *,
    title: str,
    kind: str,
    dots: Sequence[_Dot],
    extent: Sequence[float],
    spans: Sequence[_Span],
    rules: Sequence[_Rule],
    keys: Sequence[_Key],
    axis_label: str,
    tick_format: Callable[[Sequence[float]], list[str]],
    notes: Sequence[str],
    floor_zero: bool = False,
) -> Markup:
    left, right = 176.0, WIDTH - 24.0
    legend, bottom = _legend(keys, 8, 14, WIDTH - 8)
    top = bottom + 10
    lo, hi = min(extent), max(extent)
    if floor_zero:
        lo = min(lo, 0.0)
    lo, hi, ticks = _axis(lo, hi, 6)
    x = _Scale(lo, hi, left, right)
    row_h = _row_height(len(dots))
    plot_bottom = top + row_h * len(dots)
    parts: list[Markup] = [legend]
    for span in spans:
        x_lo = x(span.lo)
        x_hi = x(span.hi) if span.hi is not None else right
        parts.append(
            _rect(
                x_lo,
                top - 4,
                x_hi - x_lo,
                plot_bottom - top + 8,
                fill=span.fill,
                opacity=SPAN_OPACITY,
                cls=span.cls,
                tip=span.tip,
            )
        )
    for tick in ticks:
        parts.append(_line(x(tick), top - 4, x(tick), plot_bottom + 4, stroke=FAINT))
    for rule in rules:
        parts.append(
            _line(
                x(rule.value),
                top - 6,
                x(rule.value),
                plot_bottom + 4,
                stroke=rule.stroke,
                width=1.5,
                dash=rule.dash,
                cls=rule.cls,
                tip=rule.tip,
            )
        )
    labelled = _pick_labelled(dots, row_h)
    size = 11.0 if row_h >= 11 else 10.0
    radius_cap = max(1.8, row_h * 0.45)
    for index, dot in enumerate(dots):
        cy = top + row_h * (index + 0.5)
        if row_h >= 8:
            parts.append(_line(left, cy, x(dot.value), cy, stroke=FAINT))
        parts.append(
            _circle(
                x(dot.value),
                cy,
                min(dot.r, radius_cap) if not dot.pinned else dot.r,
                fill=dot.fill,
                stroke=dot.stroke,
                stroke_width=2 if dot.stroke else None,
                cls=dot.cls,
                tip=dot.tip,
            )
        )
        if index in labelled:
            parts.append(
                _text(
                    left - 8,
                    cy + size * 0.35,
                    _shorten(dot.label, left - 16, size),
                    anchor="end",
                    size=size,
                    fill=dot.label_fill,
                    bold=dot.bold,
                    tip=dot.label,
                )
            )
    axis_y = plot_bottom + 4
    parts.append(_line(left, axis_y, right, axis_y, stroke=MUTED))
    for tick, text in zip(ticks, tick_format(ticks), strict=True):
        parts.append(_text(x(tick), axis_y + 14, text, anchor="middle", size=10, fill=MUTED))
    parts.append(_text((left + right) / 2, axis_y + 30, axis_label, anchor="middle", fill=MUTED))
    y = axis_y + 30
    for note in notes:
        y += 16
        parts.append(_text(8, y, note, fill=MUTED, cls="bw-note"))
    return _svg(y + 10, title, kind, *parts)


# ---------------------------------------------------------------------------------------------
# Charts


def bids_chart(
    bids: Sequence[Mapping[str, Any]],
    *,
    estimate: float | None,
    band: tuple[float, float] | None,
    labels: Mapping[str, str],
    title: str | None = None,
    unit: Unit = "si",
) -> Markup:
    """One tender's bids, lowest at the top, on a horizontal amount axis.

    Each bid is a dot in its own row with a ``<title>`` (name, full amount, winner). The winner
    is a larger dark dot (class ``bw-winner``, bold label), bidders named in a finding are red
    (ringed red when they also won), ``estimate`` is a dashed vertical line and ``band`` a shaded
    range. With many bids the rows get thinner and only the labels that fit are written, the
    winner's and flagged bidders' first. Bids without a finite amount are counted in a note.
    """
    title = _title(labels, "bids", title)
    dots: list[_Dot] = []
    missing = 0
    winner_text = _label(labels, "winner")
    for bid in bids:
        amount = _finite(bid.get("amount"))
        if amount is None:
            missing += 1
            continue
        name = _clean(bid.get("label") if bid.get("label") not in (None, "") else "—")
        winner = bool(bid.get("winner"))
        flagged = bool(bid.get("flagged"))
        tip = f"{name} · {_full(amount)}" + (f" · {winner_text}" if winner else "")
        if winner:
            dot = _Dot(
                name,
                amount,
                tip,
                DARK,
                r=5.5,
                stroke=RED if flagged else None,
                cls="bw-mark bw-winner" + (" bw-flagged" if flagged else ""),
                pinned=2,
                label_fill=DARK,
                bold=True,
            )
        elif flagged:
            dot = _Dot(
                name, amount, tip, RED, r=4.5, cls="bw-mark bw-flagged", pinned=1, label_fill=RED
            )
        else:
            dot = _Dot(name, amount, tip, GREY)
        dots.append(dot)
    notes = [_fill(_label(labels, "missing"), n=missing)] if missing else []
    if not dots:
        return _empty(title, "bids", _label(labels, "empty"), notes)
    dots.sort(key=lambda d: (d.value, d.label))
    extent = [d.value for d in dots]
    keys: list[_Key] = []
    if any("bw-winner" in d.cls for d in dots):
        keys.append(_Key("dot", DARK, winner_text, r=5))
    if any("bw-flagged" in d.cls for d in dots):
        keys.append(_Key("dot", RED, _label(labels, "flagged_bidder")))
    spans: list[_Span] = []
    band_lo = _finite(band[0]) if band else None
    band_hi = _finite(band[1]) if band else None
    if band_lo is not None and band_hi is not None:
        band_lo, band_hi = min(band_lo, band_hi), max(band_lo, band_hi)
        text = f"{_label(labels, 'band')} {_compact(band_lo, unit)}–{_compact(band_hi, unit)}"
        spans.append(_Span(band_lo, band_hi, "#e6b0aa", "bw-band", text))
        keys.append(_Key("rect", "#e6b0aa", text, opacity=SPAN_OPACITY))
        extent += [band_lo, band_hi]
    rules: list[_Rule] = []
    est = _finite(estimate)
    if est is not None:
        text = f"{_label(labels, 'estimate')} {_compact(est, unit)}"
        rules.append(_Rule(est, MUTED, "bw-estimate", f"{_label(labels, 'estimate')} {_full(est)}"))
        keys.append(_Key("line", MUTED, text, dash="5,3", width=1.5))
        extent.append(est)
    return _dot_rows(
        title=title,
        kind="bids",
        dots=dots,
        extent=extent,
        spans=spans,
        rules=rules,
        keys=keys,
        axis_label=_label(labels, "amount"),
        tick_format=_amount_ticks(unit),
        notes=notes,
    )


def price_chart(
    items: Sequence[Mapping[str, Any]],
    *,
    low: float,
    high: float | None,
    labels: Mapping[str, str],
    title: str | None = None,
) -> Markup:
    """Unit price / reference price per item, sorted by ratio (lowest, the likeliest substandard
    material, at the top), on an axis from 0 with the reference line at 1.0 and the accepted
    range [low, high] shaded (to the end of the axis when ``high`` is None). Flagged items are
    amber and labelled first. Items without a finite ratio are counted in a note."""
    title = _title(labels, "price", title)
    dots: list[_Dot] = []
    missing = 0
    for item in items:
        ratio = _finite(item.get("ratio"))
        if ratio is None:
            missing += 1
            continue
        name = _clean(item.get("label") if item.get("label") not in (None, "") else "—")
        flagged = bool(item.get("flagged"))
        tip = f"{name} · {_strip_zeros(f'{ratio:.3f}')}×"
        if flagged:
            dots.append(
                _Dot(
                    name,
                    ratio,
                    tip,
                    AMBER,
                    r=4.5,
                    cls="bw-mark bw-flagged",
                    pinned=1,
                    label_fill=AMBER,
                )
            )
        else:
            dots.append(_Dot(name, ratio, tip, GREY))
    notes = [_fill(_label(labels, "missing"), n=missing)] if missing else []
    if not dots:
        return _empty(title, "price", _label(labels, "empty"), notes)
    dots.sort(key=lambda d: (d.value, d.label))
    extent = [d.value for d in dots] + [1.0]
    lo = _finite(low)
    hi = _finite(high)
    spans: list[_Span] = []
    keys: list[_Key] = [_Key("line", DARK, f"{_label(labels, 'reference')} 1.0", dash="5,3")]
    if lo is not None:
        if hi is not None:
            lo, hi = min(lo, hi), max(lo, hi)
            text = (
                f"{_label(labels, 'range')} {_strip_zeros(f'{lo:.2f}')}–{_strip_zeros(f'{hi:.2f}')}"
            )
            extent.append(hi)
        else:
            text = f"{_label(labels, 'range')} ≥ {_strip_zeros(f'{lo:.2f}')}"
        extent.append(lo)
        spans.append(_Span(lo, hi, LIGHT, "bw-range", text))
        keys.append(_Key("rect", LIGHT, text, opacity=SPAN_OPACITY))
    if any(d.pinned for d in dots):
        keys.append(_Key("dot", AMBER, _label(labels, "flagged")))
    rules = [_Rule(1.0, DARK, "bw-reference", f"{_label(labels, 'reference')} 1.0")]
    return _dot_rows(
        title=title,
        kind="price",
        dots=dots,
        extent=extent,
        spans=spans,
        rules=rules,
        keys=keys,
        axis_label=_label(labels, "ratio"),
        tick_format=_plain_ticks,
        notes=notes,
        floor_zero=True,
    )


def waterfall(
    items: Sequence[tuple[str, float]],
    *,
    total: float,
    labels: Mapping[str, str],
    title: str | None = None,
    color: str = RED,
    top: int = 12,
) -> Markup:
    """Contributions to a score as a horizontal waterfall, largest first.

    Each step (class ``bw-step``) starts where the previous one ended; past ``top`` items the
    rest are folded into one "others" step. The last bar (class ``bw-total``) runs from 0 to
    ``total`` as given, so a rounding gap between the steps and the total stays visible.
    Items without finite points are left out. ``color`` is the steps' colour (amber for
    materials risk); it must be a ``#rrggbb`` colour.
    """
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", color):
        raise ValueError(f"waterfall color must look like #c0392b, got {color!r}")
    title = _title(labels, "waterfall", title)
    steps = [
        (_clean(name), value) for name, points in items if (value := _finite(points)) is not None
    ]
    steps.sort(key=lambda step: -abs(step[1]))
    if len(steps) > top:
        rest = steps[top:]
        steps = [
            *steps[:top],
            (f"{_label(labels, 'others')} ({len(rest)})", sum(p for _, p in rest)),
        ]
    goal = _finite(total)
    if goal is None:
        goal = sum(p for _, p in steps)
    if not steps and goal == 0:
        return _empty(title, "waterfall", _label(labels, "empty"))
    ends: list[float] = []
    running = 0.0
    for _, points in steps:
        running += points
        ends.append(running)
    lo, hi, ticks = _axis(min(0.0, goal, *ends), max(0.0, goal, *ends), 6)
    left, right = 200.0, WIDTH - 56.0
    x = _Scale(lo, hi, left, right)
    row_h, bar_h, top_y = 22.0, 14.0, 12.0
    parts: list[Markup] = []
    for tick in ticks:
        parts.append(
            _line(x(tick), top_y - 4, x(tick), top_y + row_h * (len(steps) + 1), stroke=FAINT)
        )
    start = 0.0
    total_text = _label(labels, "total")
    for index, ((name, _), end) in enumerate(zip(steps, ends, strict=True)):
        y = top_y + row_h * index + (row_h - bar_h) / 2
        # edges are rounded before the width so a step's end is exactly the next one's start
        a, b = round(x(min(start, end)), 1), round(x(max(start, end)), 1)
        points = end - start
        fill = color if points >= 0 else GREY
        parts.append(
            _rect(
                a,
                y,
                max(b - a, 1.0) if points else 0.0,
                bar_h,
                fill=fill,
                cls="bw-step",
                tip=f"{name}: {_points(points, sign=True)}",
            )
        )
        parts.append(_text(b + 4, y + bar_h - 3, _points(points, sign=True), size=10, fill=MUTED))
        parts.append(
            _text(left - 8, y + bar_h - 3, _shorten(name, left - 16), anchor="end", tip=name)
        )
        next_y = top_y + row_h * (index + 1) + (row_h - bar_h) / 2
        parts.append(
            _line(x(end), y + bar_h, x(end), next_y, stroke=GREY, dash="2,2", cls="bw-connector")
        )
        start = end
    y = top_y + row_h * len(steps) + (row_h - bar_h) / 2
    a, b = round(x(min(0.0, goal)), 1), round(x(max(0.0, goal)), 1)
    parts.append(
        _rect(a, y, b - a, bar_h, fill=DARK, cls="bw-total", tip=f"{total_text}: {_points(goal)}")
    )
    parts.append(_text(b + 4, y + bar_h - 3, _points(goal), size=10, fill=DARK, bold=True))
    parts.append(_text(left - 8, y + bar_h - 3, total_text, anchor="end", bold=True))
    axis_y = top_y + row_h * (len(steps) + 1) + 2
    parts.append(_line(left, axis_y, right, axis_y, stroke=MUTED))
    for tick, text in zip(ticks, _plain_ticks(ticks), strict=True):
        parts.append(_text(x(tick), axis_y + 14, text, anchor="middle", size=10, fill=MUTED))
    parts.append(
        _text(
            (left + right) / 2, axis_y + 30, _label(labels, "points"), anchor="middle", fill=MUTED
        )
    )
    return _svg(axis_y + 40, title, "waterfall", *parts)


def activity(
    periods: Sequence[str],
    bids: Sequence[int],
    wins: Sequence[int],
    *,
    labels: Mapping[str, str],
    title: str | None = None,
) -> Markup:
    """A firm's bids per period as grey bars with its wins as narrower dark bars inside them.

    Periods are drawn in the order given; with many periods only every k-th period label is
    written (each bar keeps a ``<title>`` with the period and both counts). Negative counts are
    an error in the caller's data and raise ValueError.
    """
    if not len(periods) == len(bids) == len(wins):
        raise ValueError(
            f"activity: periods, bids and wins must have the same length, got "
            f"{len(periods)}, {len(bids)} and {len(wins)}"
        )
    for name, values in (("bids", bids), ("wins", wins)):
        for index, value in enumerate(values):
            if value is None or value < 0:
                raise ValueError(
                    f"activity: {name}[{index}] (period {periods[index]!r}) is {value!r}; "
                    "counts must be 0 or more"
                )
    title = _title(labels, "activity", title)
    if not periods:
        return _empty(title, "activity", _label(labels, "empty"))
    bids_text, wins_text = _label(labels, "bids"), _label(labels, "wins")
    legend, bottom = _legend(
        [_Key("rect", GREY, bids_text, opacity=0.6), _Key("rect", DARK, wins_text)],
        8,
        14,
        WIDTH - 8,
    )
    top = bottom + 10
    height = 160.0
    left, right = 44.0, WIDTH - 12.0
    _, peak, ticks = _axis(0.0, float(max(1, *bids, *wins)), 4, integer=True)
    y = _Scale(0.0, peak, top + height, top)
    band = (right - left) / len(periods)
    bar = min(band * 0.75, 32.0)
    names = [_clean(p) for p in periods]
    every = max(1, math.ceil((max(_text_width(n, 10) for n in names) + 8) / band))
    parts: list[Markup] = [legend]
    for tick in ticks:
        parts.append(_line(left, y(tick), right, y(tick), stroke=FAINT))
        parts.append(
            _text(left - 6, y(tick) + 3.5, str(int(tick)), anchor="end", size=10, fill=MUTED)
        )
    for index, (name, n_bids, n_wins) in enumerate(zip(names, bids, wins, strict=True)):
        cx = left + band * (index + 0.5)
        tip = f"{name}: {bids_text} {n_bids}, {wins_text} {n_wins}"
        group = [
            _rect(
                cx - bar / 2,
                y(n_bids),
                bar,
                y(0) - y(n_bids),
                fill=GREY,
                opacity=0.6,
                cls="bw-bids",
            ),
            _rect(cx - bar / 4, y(n_wins), bar / 2, y(0) - y(n_wins), fill=DARK, cls="bw-wins"),
        ]
        parts.append(_el("g", None, _el("title", None, tip), *group))
        if index % every == 0:
            half = _text_width(name, 10) / 2
            at = min(max(cx, half + 2), WIDTH - half - 2)  # keep edge labels inside the chart
            parts.append(_text(at, top + height + 16, name, anchor="middle", size=10, fill=MUTED))
    parts.append(_line(left, y(0), right, y(0), stroke=MUTED))
    return _svg(top + height + 28, title, "activity", *parts)


def _risk_color(risk: float | None) -> str:
    if risk is None:
        return LIGHT
    share = min(max(risk, 0.0), 100.0) / 100.0
    low, high = (0xD5, 0xD8, 0xDC), (0xC0, 0x39, 0x2B)
    r, g, b = (round(a + (z - a) * share) for a, z in zip(low, high, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


@dataclass(frozen=True)
class _Node:
    id: str
    label: str
    wins: int
    risk: float | None


def network(
    nodes: Sequence[Mapping[str, Any]],
    edges: Sequence[Mapping[str, Any]],
    *,
    labels: Mapping[str, str],
    title: str | None = None,
    seed: int = 0,
    max_nodes: int = 40,
) -> Markup:
    """A suspected group as a node-link diagram with a legend on the right.

    Node area grows with wins and colour goes from grey to red with risk (0-100, grey when
    missing). Co-bid edges (class ``bw-cobid``) are grey, wider with more tenders bid together;
    shared-trace edges (class ``bw-trace``) are blue and dashed, drawn over the co-bid line, with
    the traces in their ``<title>``. Beyond ``max_nodes`` the nodes with most wins are drawn and
    "+N more" is written. Edges to nodes not drawn, self-loops and repeated ids are dropped;
    repeated edges are merged. The layout is networkx's spring layout with ``seed`` on the
    nodes sorted by id, so the same input gives the same picture whatever the input order.
    """
    import networkx as nx

    title = _title(labels, "network", title)
    parsed: dict[str, _Node] = {}
    for node in nodes:
        node_id = _clean(node.get("id") if node.get("id") is not None else "")
        if node_id == "" or node_id in parsed:
            continue
        name = node.get("label")
        parsed[node_id] = _Node(
            node_id,
            _clean(name) if name not in (None, "") else node_id,
            _count(node.get("wins")),
            _finite(node.get("risk")),
        )
    if not parsed:
        return _empty(title, "network", _label(labels, "empty"))
    ranked = sorted(parsed.values(), key=lambda n: (-n.wins, -(n.risk or 0.0), n.id))
    shown = sorted(ranked[:max_nodes], key=lambda n: n.id)
    hidden = len(ranked) - len(shown)
    by_id = {n.id: n for n in shown}
    merged: dict[tuple[str, str], tuple[int, set[str]]] = {}
    for edge in edges:
        a, b = _clean(edge.get("a")), _clean(edge.get("b"))
        if a == b or a not in by_id or b not in by_id:
            continue
        pair = (min(a, b), max(a, b))
        cobids, traces = merged.get(pair, (0, set()))
        found = {t.strip() for t in _clean(edge.get("traces") or "").split(";") if t.strip()}
        merged[pair] = (cobids + _count(edge.get("cobids")), traces | found)

    graph = nx.Graph()
    graph.add_nodes_from(n.id for n in shown)
    for (a, b), (cobids, traces) in sorted(merged.items()):
        graph.add_edge(a, b, weight=1.0 + math.log1p(cobids) + (1.0 if traces else 0.0))
    # A hidden hub weakly tied to every node: spring layout has no gravity, so without it
    # nodes with no drawn edge fly to the edges and squeeze the rest into a blob.
    hub = ("hub",)  # not a str, so it cannot clash with a node id
    graph.add_edges_from(((hub, n.id) for n in shown), weight=0.3)
    layout = nx.spring_layout(graph, seed=seed, weight="weight", iterations=200)

    most_wins = max(n.wins for n in shown)
    radius = {n.id: 5.0 + 11.0 * math.sqrt(n.wins / most_wins) if most_wins else 6.0 for n in shown}
    pad = max(radius.values()) + 6
    box_left, box_right, box_top, box_bottom = 12 + pad, 540.0 - pad, 12 + pad, 408.0 - pad - 10
    xs = [float(layout[n.id][0]) for n in shown]
    ys = [float(layout[n.id][1]) for n in shown]
    span_x, span_y = max(xs) - min(xs), max(ys) - min(ys)
    # one scale for both axes (stretching one would distort distances), and a small group
    # stays small rather than being spread over the whole box
    reach = 80.0 + 60.0 * math.sqrt(len(shown))
    scale = min(
        (box_right - box_left) / span_x if span_x > 0 else math.inf,
        (box_bottom - box_top) / span_y if span_y > 0 else math.inf,
        reach / max(span_x, span_y, 1e-9),
    )
    mid_x, mid_y = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    centre_x, centre_y = (box_left + box_right) / 2, (box_top + box_bottom) / 2
    where = {
        n.id: (centre_x + (x - mid_x) * scale, centre_y + (y - mid_y) * scale)
        for n, x, y in zip(shown, xs, ys, strict=True)
    }

    cobid_text, trace_text = _label(labels, "cobids"), _label(labels, "traces")
    wins_text, risk_text = _label(labels, "wins"), _label(labels, "risk")
    most_cobids = max((c for c, _ in merged.values()), default=0)
    lines: list[Markup] = []
    dashes: list[Markup] = []
    for (a, b), (cobids, traces) in sorted(merged.items()):
        (x1, y1), (x2, y2) = where[a], where[b]
        pair_text = f"{by_id[a].label} – {by_id[b].label}"
        if cobids or not traces:
            width = 1.0 + 5.0 * math.sqrt(cobids / most_cobids) if most_cobids else 1.0
            lines.append(
                _line(
                    x1,
                    y1,
                    x2,
                    y2,
                    stroke=GREY,
                    width=width,
                    opacity=0.6,
                    cls="bw-cobid",
                    tip=f"{pair_text}: {cobid_text} {cobids}",
                )
            )
        if traces:
            dashes.append(
                _line(
                    x1,
                    y1,
                    x2,
                    y2,
                    stroke=TRACE,
                    width=2.0,
                    dash="5,3",
                    cls="bw-trace",
                    tip=f"{pair_text}: {trace_text}: {', '.join(sorted(traces))}"
                    + (f"; {cobid_text} {cobids}" if cobids else ""),
                )
            )
    marks: list[Markup] = []
    for n in shown:
        cx, cy = where[n.id]
        tip = n.label if n.label == n.id else f"{n.label} ({n.id})"
        tip += f" · {wins_text} {n.wins}"
        if n.risk is not None:
            tip += f" · {risk_text} {_points(n.risk)}"
        marks.append(
            _circle(
                cx,
                cy,
                radius[n.id],
                fill=_risk_color(n.risk),
                stroke="#ffffff",
                stroke_width=1.0,
                cls="bw-node",
                tip=tip,
            )
        )
    # Names after every node, so no node hides one; a name that would overlap one already
    # written (nodes with most wins first) is left to the node's <title>.
    names: list[Markup] = []
    taken: list[tuple[float, float, float, float]] = []
    for n in ranked[: len(shown)]:
        cx, cy = where[n.id]
        label = _shorten(n.label, 110, 10)
        half = _text_width(label, 10) / 2
        x = min(max(cx, half + 4), 548 - half)  # inside the chart, clear of the legend
        y = cy + radius[n.id] + 11
        box = (x - half, y - 9, x + half, y + 2)
        if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in taken):
            continue
        taken.append(box)
        names.append(_text(x, y, label, anchor="middle", size=10, tip=n.label, halo=True))
    keys = [
        _Key("line", GREY, cobid_text, width=3.0),
        _Key("line", TRACE, trace_text, dash="5,3"),
        _Key("dot", _risk_color(0), f"{risk_text} 0"),
        _Key("dot", _risk_color(50), f"{risk_text} 50"),
        _Key("dot", _risk_color(100), f"{risk_text} 100"),
    ]
    if most_wins:
        least_wins = min(n.wins for n in shown)
        # legend dots at half the drawn size: the largest node would not fit the legend
        smallest = 5.0 + 11.0 * math.sqrt(least_wins / most_wins)
        keys.append(_Key("dot", LIGHT, f"{wins_text} {least_wins}", r=smallest / 2))
        keys.append(_Key("dot", LIGHT, f"{wins_text} {most_wins}", r=8.0))
    legend, _ = _legend(keys, 560, 24, WIDTH - 8, vertical=True)
    parts = [*lines, *dashes, *marks, *names, legend]
    if hidden:
        parts.append(
            _text(12, 412, _fill(_label(labels, "more"), n=hidden), fill=MUTED, cls="bw-note")
        )
    return _svg(420, title, "network", *parts)


def _parse_date(value: object) -> date | None:
    text = _clean(value).strip()[:10] if value is not None else ""
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _date_ticks(first: int, last: int) -> list[tuple[int, str]]:
    """Ticks on ordinal days: years, months or days by the span, at most about 8."""
    span = last - first
    start, end = date.fromordinal(first), date.fromordinal(last)
    if span > 3 * 365:
        years = end.year - start.year + 1
        step = next((s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500) if years / s <= 8), 1000)
        return [
            (date(y, 1, 1).toordinal(), str(y))
            for y in range(start.year, end.year + 1)
            if y % step == 0 and first <= date(y, 1, 1).toordinal() <= last
        ]
    if span > 60:
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        step = next(s for s in (1, 2, 3, 6, 12) if months / s <= 8)
        ticks = []
        for m in range(start.year * 12 + start.month - 1, end.year * 12 + end.month):
            day = date(m // 12, m % 12 + 1, 1)
            if m % step == 0 and first <= day.toordinal() <= last:
                ticks.append((day.toordinal(), f"{day.year}-{day.month:02d}"))
        return ticks
    step = next(s for s in (1, 2, 7, 14, 30) if span / s <= 6)
    return [(d, date.fromordinal(d).isoformat()) for d in range(first, last + 1) if d % step == 0]


def rotation(
    members: Sequence[str],
    wins: Sequence[tuple[str, str, str]],
    *,
    labels: Mapping[str, str],
    title: str | None = None,
    connect: int = 200,
) -> Markup:
    """Who in a group won when: one row per member (in the given order), a dot per win at its
    date with ``date · member · tender`` in its ``<title>``.

    Wins without a valid ``YYYY-MM-DD`` date are not placed (an order-based position would be
    read as a date) and are counted in a note instead. Up to ``connect`` dated wins are joined
    in date order by a faint line, which makes a take-turns pattern visible as a zig-zag.
    A win by someone not in ``members`` raises ValueError.
    """
    title = _title(labels, "rotation", title)
    order: list[str] = []
    for member in members:
        name = _clean(member)
        if name not in order:
            order.append(name)
    row_of = {name: index for index, name in enumerate(order)}
    dated: list[tuple[int, int, str, str]] = []
    undated = 0
    for index, (day_text, member, tender) in enumerate(wins):
        name = _clean(member)
        if name not in row_of:
            raise ValueError(
                f"rotation: win {index} (tender {tender!r}) is by {member!r}, who is not among "
                f"the members {order}; pass the group's members and their wins only"
            )
        day = _parse_date(day_text)
        if day is None:
            undated += 1
            continue
        dated.append((day.toordinal(), row_of[name], _clean(tender), day.isoformat()))
    notes = [_fill(_label(labels, "undated"), n=undated)] if undated else []
    if not order or not dated:
        return _empty(title, "rotation", _label(labels, "empty"), notes)
    dated.sort()
    first, last = dated[0][0], dated[-1][0]
    pad = max((last - first) * 0.03, 15.0)
    lo = max(math.floor(first - pad), 1)  # date.fromordinal needs 1 to date.max
    hi = min(math.ceil(last + pad), date.max.toordinal())
    left, right = 156.0, WIDTH - 20.0
    x = _Scale(float(lo), float(hi), left, right)
    row_h = 18.0 if len(order) <= 24 else max(8.0, 432.0 / len(order))
    top = 10.0
    bottom = top + row_h * len(order)
    parts: list[Markup] = []
    for index, name in enumerate(order):
        y = top + row_h * index
        if index % 2 == 0:
            parts.append(_rect(left, y, right - left, row_h, fill="#f4f6f7"))
        parts.append(
            _text(
                left - 8,
                y + row_h / 2 + 3.5,
                _shorten(name, left - 16, 10 if row_h < 12 else 11),
                anchor="end",
                size=10 if row_h < 12 else None,
                tip=name,
            )
        )
    ticks = _date_ticks(lo, hi)
    for tick, _ in ticks:
        parts.append(_line(x(tick), top, x(tick), bottom + 4, stroke=FAINT))
    if 2 <= len(dated) <= connect:
        points = " ".join(
            f"{_num(x(when))},{_num(top + row_h * (row + 0.5))}" for when, row, _, _ in dated
        )
        parts.append(
            _el(
                "polyline",
                {
                    "points": points,
                    "fill": "none",
                    "stroke": RED,
                    "stroke-opacity": 0.35,
                    "stroke-width": 1,
                    "class": "bw-sequence",
                },
            )
        )
    r = min(4.0, row_h * 0.35 + 1)
    marks = [
        _circle(
            x(when),
            top + row_h * (row + 0.5),
            r,
            fill=None,
            cls="bw-win",
            tip=f"{iso} · {order[row]} · {tender}",
        )
        for when, row, tender, iso in dated
    ]
    parts.append(_el("g", {"fill": DARK, "fill-opacity": 0.85}, *marks))
    parts.append(_line(left, bottom + 4, right, bottom + 4, stroke=MUTED))
    for tick, text in ticks:
        parts.append(_text(x(tick), bottom + 18, text, anchor="middle", size=10, fill=MUTED))
    y = bottom + 22
    for note in notes:
        y += 16
        parts.append(_text(8, y, note, fill=MUTED, cls="bw-note"))
    return _svg(y + 10, title, "rotation", *parts)


def _log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks inside [10**lo, 10**hi] over few decades, else decades (about 8 at most)."""
    span = hi - lo
    multiples = (1.0, 2.0, 5.0) if span <= 2.5 else (1.0,)
    every = max(1, math.ceil(span / 8))
    ticks = [
        10.0**k * m
        for k in range(math.floor(lo), math.ceil(hi) + 1)
        if k % every == 0
        for m in multiples
        if lo - 1e-9 <= k + math.log10(m) <= hi + 1e-9
    ]
    return [t for t in ticks if t > 0]  # 10**-330 underflows to 0


def growth_chart(
    contracts: Sequence[Mapping[str, Any]],
    *,
    limit: float,
    labels: Mapping[str, str],
    title: str | None = None,
    unit: Unit = "si",
    max_points: int = 600,
) -> Markup:
    """Settlement growth (y, %) against contract amount (x, log scale) with a dashed red line at
    ``limit`` (class ``bw-limit``); flagged contracts red and drawn on top.

    Contracts without a positive amount or a finite growth cannot be placed on a log axis and
    are counted in a note. Beyond ``max_points`` every flagged contract is kept and the rest are
    thinned evenly along the amount axis, with a note saying how many are shown.
    """
    title = _title(labels, "growth", title)
    points: list[tuple[float, float, str, bool]] = []
    skipped = 0
    for contract in contracts:
        amount, growth = _finite(contract.get("amount")), _finite(contract.get("growth"))
        if amount is None or amount <= 0 or growth is None:
            skipped += 1
            continue
        name = contract.get("label")
        points.append(
            (
                amount,
                growth,
                _clean(name) if name not in (None, "") else "—",
                bool(contract.get("flagged")),
            )
        )
    notes = [_fill(_label(labels, "skipped_points"), n=skipped)] if skipped else []
    if not points:
        return _empty(title, "growth", _label(labels, "empty"), notes)
    points.sort()
    total = len(points)
    if total > max_points:
        rest = [i for i, p in enumerate(points) if not p[3]]
        room = max(max_points - (total - len(rest)), 0)
        thinned = {rest[round(i * (len(rest) - 1) / max(room - 1, 1))] for i in range(room)}
        points = [p for i, p in enumerate(points) if p[3] or i in thinned]
        notes.append(_fill(_label(labels, "sampled"), n=len(points), m=total))
    cap = _finite(limit)
    keys = (
        [_Key("line", RED, f"{_label(labels, 'limit')} {_percent(cap)}", dash="6,3")]
        if cap is not None
        else []
    )
    if any(p[3] for p in points):
        keys.append(_Key("dot", RED, _label(labels, "flagged")))
    legend, legend_bottom = _legend(keys, 64, 14, WIDTH - 8)
    top = legend_bottom + 12
    left, right, height = 64.0, WIDTH - 28.0, 200.0
    low, high = math.log10(points[0][0]), math.log10(points[-1][0])
    if high - low < 1.0:  # at least a decade, so that even one amount has ticks around it
        low, high = (low + high) / 2 - 0.5, (low + high) / 2 + 0.5
    pad = (high - low) * 0.04
    low, high = low - pad, high + pad
    x_log = _Scale(low, high, left, right)

    def x(amount: float) -> float:
        return x_log(math.log10(amount))

    growths = [p[1] for p in points] + [0.0] + ([cap] if cap is not None else [])
    g_lo, g_hi, y_ticks = _axis(min(growths), max(growths), 5)
    y = _Scale(g_lo, g_hi, top + height, top)
    parts: list[Markup] = [legend]
    for tick, text in zip(y_ticks, _percent_ticks(y_ticks), strict=True):
        parts.append(_line(left, y(tick), right, y(tick), stroke=MUTED if tick == 0 else FAINT))
        parts.append(_text(left - 6, y(tick) + 3.5, text, anchor="end", size=10, fill=MUTED))
    for tick in _log_ticks(low, high):
        text = _compact(tick, unit)
        parts.append(_line(x(tick), top, x(tick), top + height, stroke=FAINT))
        parts.append(_text(x(tick), top + height + 14, text, anchor="middle", size=10, fill=MUTED))
    if cap is not None:
        parts.append(
            _line(
                left,
                y(cap),
                right,
                y(cap),
                stroke=RED,
                width=1.5,
                dash="6,3",
                cls="bw-limit",
                tip=f"{_label(labels, 'limit')} {_percent(cap)}",
            )
        )
    plain: list[Markup] = []
    flagged_marks: list[Markup] = []
    for amount, growth, name, flagged in points:
        tip = f"{name} · {_full(amount)} · {'+' if growth > 0 else ''}{_percent(growth)}"
        if flagged:
            flagged_marks.append(
                _circle(
                    x(amount),
                    y(growth),
                    4.5,
                    fill=RED,
                    opacity=0.9,
                    cls="bw-point bw-flagged",
                    tip=tip,
                )
            )
        else:
            plain.append(_circle(x(amount), y(growth), 3.5, fill=None, cls="bw-point", tip=tip))
    if plain:
        parts.append(_el("g", {"fill": GREY, "fill-opacity": 0.6}, *plain))
    parts += flagged_marks  # on top
    parts.append(
        _text(
            (left + right) / 2,
            top + height + 30,
            _label(labels, "amount"),
            anchor="middle",
            fill=MUTED,
        )
    )
    mid = top + height / 2
    parts.append(
        _text(
            14,
            mid,
            _label(labels, "growth"),
            anchor="middle",
            fill=MUTED,
            transform=f"rotate(-90 14 {_num(mid)})",
        )
    )
    bottom = top + height + 30
    for note in notes:
        bottom += 16
        parts.append(_text(8, bottom, note, fill=MUTED, cls="bw-note"))
    return _svg(bottom + 10, title, "growth", *parts)
