"""SVG charts: well-formed, inert whatever the data, deterministic, and drawn where they should."""

from __future__ import annotations

import itertools
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from bidwatch.report import charts

NS = "{http://www.w3.org/2000/svg}"
EVIL = [
    "<script>alert(1)</script>",
    '" onmouseover=alert(1) x="',
    "javascript:alert(1)",
    "' onload='alert(1)",
    "]]><svg onload=alert(1)>",
    "&amp; &#x3C;script&#x3E;",
]
NUMERIC = {
    "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "width", "height", "font-size",
    "stroke-width", "fill-opacity", "stroke-opacity",
}  # fmt: skip


class _Tokens(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes |= {name for name, _ in attrs}


def html_tokens(svg: Markup) -> tuple[set[str], set[str]]:
    tokens = _Tokens()
    tokens.feed(str(svg))
    tokens.close()
    return tokens.tags, tokens.attributes


def parse(svg: Markup) -> ET.Element:
    assert isinstance(svg, Markup)
    return ET.fromstring(str(svg))


def by_class(root: ET.Element, name: str, tag: str | None = None) -> list[ET.Element]:
    return [
        e
        for e in root.iter()
        if name in e.get("class", "").split() and (tag is None or e.tag == NS + tag)
    ]


def tip(element: ET.Element) -> str:
    title = element.find(f"{NS}title")
    assert title is not None, f"{element.tag} has no <title>"
    return title.text or ""


def texts(root: ET.Element) -> list[str]:
    return [e.text or "" for e in root.iter(f"{NS}text")]


def check_chart(svg: Markup, *, any_text: bool = False) -> ET.Element:
    """What every chart must be: one parseable, inert, accessible <svg> with sane numbers.

    ``any_text``: the data holds arbitrary text, which may itself read "nan" or "None".
    """
    root = parse(svg)
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label")
    assert root.get("width") == "100%"
    assert re.fullmatch(r"0 0 720 \d+(\.\d)?", root.get("viewBox", ""))
    assert root[0].tag == f"{NS}title"
    assert root[0].text == root.get("aria-label")
    for element in root.iter():
        assert not element.tag.lower().endswith("script")
        assert element.tag.lower() not in {f"{NS}a", f"{NS}foreignobject", f"{NS}image"}
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), (element.tag, name)
            assert "href" not in name.lower()
            if name in NUMERIC and element.tag != f"{NS}svg":
                assert re.fullmatch(r"-?\d+(\.\d)?", value), (element.tag, name, value)
            if name == "points":
                assert re.fullmatch(
                    r"(-?\d+(\.\d)?,-?\d+(\.\d)?)( -?\d+(\.\d)?,-?\d+(\.\d)?)*", value
                )
    if not any_text:
        assert not re.search(r"\b(nan|inf|infinity)\b", str(svg), re.IGNORECASE)
        assert "None" not in str(svg)
    return root


# ------------------------------------------------------------------------------------------
# Inputs of every size, for every chart


def bids_input(n: int, rng: random.Random) -> list[dict[str, Any]]:
    return [
        {
            "label": f"Firm {i}",
            "amount": 1_000_000 * (1 + rng.random() * 0.2),
            "winner": i == 0,
            "flagged": i % 3 == 0,
        }
        for i in range(n)
    ]


def render_bids(n: int, rng: random.Random) -> Markup:
    return charts.bids_chart(
        bids_input(n, rng), estimate=1_150_000, band=(1_000_000, 1_050_000), labels={}
    )


def render_waterfall(n: int, rng: random.Random) -> Markup:
    items = [(f"reason {i}", round(rng.uniform(0.5, 10), 1)) for i in range(n)]
    return charts.waterfall(items, total=sum(p for _, p in items), labels={})


def render_activity(n: int, rng: random.Random) -> Markup:
    bids = [rng.randint(0, 20) for _ in range(n)]
    wins = [rng.randint(0, b) for b in bids]
    return charts.activity([f"{2000 + i}" for i in range(n)], bids, wins, labels={})


def network_input(n: int, rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    nodes = [
        {
            "id": f"F{i:03d}",
            "label": f"Firm {i}",
            "wins": rng.randint(0, 30),
            "risk": rng.random() * 100,
        }
        for i in range(n)
    ]
    edges = [
        {
            "a": f"F{i:03d}",
            "b": f"F{j:03d}",
            "cobids": rng.randint(1, 20),
            "traces": "ip_address;deposit_account" if rng.random() < 0.2 else "",
        }
        for i in range(n)
        for j in range(i + 1, n)
        if rng.random() < 0.15
    ]
    return nodes, edges


def render_network(n: int, rng: random.Random) -> Markup:
    nodes, edges = network_input(n, rng)
    return charts.network(nodes, edges, labels={})


def render_rotation(n: int, rng: random.Random) -> Markup:
    members = [f"Firm {i}" for i in range(min(n, 6))]
    wins = [
        (f"20{10 + rng.randint(0, 12)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
         members[i % len(members)], f"T{i:04d}")
        for i in range(n)
    ]  # fmt: skip
    return charts.rotation(members, wins, labels={})


def render_growth(n: int, rng: random.Random) -> Markup:
    contracts = [
        {
            "label": f"C{i}",
            "amount": 10 ** rng.uniform(4, 9),
            "growth": rng.gauss(0.05, 0.2),
            "flagged": i % 10 == 0,
        }
        for i in range(n)
    ]
    return charts.growth_chart(contracts, limit=0.15, labels={})


def render_price(n: int, rng: random.Random) -> Markup:
    items = [
        {"label": f"Item {i}", "ratio": rng.lognormvariate(0, 0.4), "flagged": i % 7 == 0}
        for i in range(n)
    ]
    return charts.price_chart(items, low=0.8, high=1.5, labels={})


RENDER: dict[str, Callable[[int, random.Random], Markup]] = {
    "bids": render_bids,
    "waterfall": render_waterfall,
    "activity": render_activity,
    "network": render_network,
    "rotation": render_rotation,
    "growth": render_growth,
    "price": render_price,
}
LARGE = {
    "bids": 60,
    "waterfall": 40,
    "activity": 60,
    "network": 70,
    "rotation": 500,
    "growth": 3000,
    "price": 200,
}


@pytest.mark.parametrize("kind", sorted(RENDER))
@pytest.mark.parametrize("size", ["empty", "single", "typical", "large"])
def test_every_chart_is_well_formed_at_every_size(kind: str, size: str) -> None:
    n = {"empty": 0, "single": 1, "typical": 8}.get(size, LARGE[kind])
    svg = RENDER[kind](n, random.Random(n))
    root = check_chart(svg)
    if n == 0:
        assert by_class(root, "bw-empty")
        assert charts.DEFAULT_LABELS["empty"] in texts(root)
    else:
        assert not by_class(root, "bw-empty")
        assert len(root) > 3
    assert len(str(svg)) < 400_000


@pytest.mark.parametrize("kind", sorted(RENDER))
def test_same_input_gives_identical_output(kind: str) -> None:
    first = RENDER[kind](12, random.Random(5))
    second = RENDER[kind](12, random.Random(5))
    assert first == second


def test_empty_charts_say_the_given_text() -> None:
    labels = {"empty": "没有数据", "title": "报告"}
    svgs = [
        charts.bids_chart([], estimate=None, band=None, labels=labels, title="投标"),
        charts.waterfall([], total=0, labels=labels, title="投标"),
        charts.activity([], [], [], labels=labels, title="投标"),
        charts.network([], [], labels=labels, title="投标"),
        charts.rotation([], [], labels=labels, title="投标"),
        charts.growth_chart([], limit=0.15, labels=labels, title="投标"),
        charts.price_chart([], low=0.8, high=None, labels=labels, title="投标"),
    ]
    for svg in svgs:
        root = check_chart(svg)
        assert "没有数据" in texts(root)
        assert root.get("aria-label") == "投标"


def test_chart_title_comes_from_the_keyword_then_its_own_label_key() -> None:
    bids = [{"label": "A", "amount": 1.0, "winner": True, "flagged": False}]
    shared = {"title": "bidwatch report"}  # a page's translations: not the chart's name
    assert (
        parse(charts.bids_chart(bids, estimate=None, band=None, labels=shared)).get("aria-label")
        == charts.DEFAULT_LABELS["title_bids"]
    )
    own = {"title_bids": "投标 T1"}
    assert (
        parse(charts.bids_chart(bids, estimate=None, band=None, labels=own)).get("aria-label")
        == "投标 T1"
    )
    svg = charts.bids_chart(bids, estimate=None, band=None, labels=own, title="<b>T1</b>")
    assert parse(svg).get("aria-label") == "<b>T1</b>"
    assert "<b>" not in str(svg)


def test_every_label_key_has_an_english_default() -> None:
    for chart, keys in charts.LABEL_KEYS.items():
        assert hasattr(charts, chart)
        for key in keys:
            assert charts.DEFAULT_LABELS[key], (chart, key)


# ------------------------------------------------------------------------------------------
# Escaping


def evil_labels() -> dict[str, str]:
    keys = {key for keys in charts.LABEL_KEYS.values() for key in keys}
    return {key: EVIL[i % len(EVIL)] for i, key in enumerate(sorted(keys))}


def all_evil_charts() -> list[Markup]:
    labels = evil_labels()
    names = EVIL * 2
    nodes = [
        {"id": name + str(i), "label": name, "wins": i, "risk": 50} for i, name in enumerate(names)
    ]
    edges = [
        {"a": nodes[i]["id"], "b": nodes[i + 1]["id"], "cobids": 3, "traces": EVIL[i % len(EVIL)]}
        for i in range(len(nodes) - 1)
    ]
    bids = [
        {"label": n, "amount": 99.0 + i, "winner": i == 0, "flagged": i == 1}
        for i, n in enumerate(names)
    ]
    wins = [(f"2021-01-{i + 1:02}", n, n) for i, n in enumerate(names)]
    contracts = [
        {"label": n, "amount": 1e3 * i + 1, "growth": i / 9, "flagged": True}
        for i, n in enumerate(names)
    ]
    items = [{"label": n, "ratio": 0.5 + i / 9, "flagged": i % 2 == 0} for i, n in enumerate(names)]
    return [
        charts.bids_chart(bids, estimate=120, band=(100, 105), labels=labels),
        charts.waterfall([(n, 1.0 + i) for i, n in enumerate(names)], total=100, labels=labels),
        charts.activity(names, [3] * len(names), [1] * len(names), labels=labels),
        charts.network(nodes, edges, labels=labels),
        charts.rotation(names, wins, labels=labels),
        charts.growth_chart(contracts, limit=0.15, labels=labels),
        charts.price_chart(items, low=0.8, high=1.5, labels=labels),
    ]


@pytest.mark.parametrize("index", range(7))
def test_evil_names_and_labels_come_out_as_inert_text(index: int) -> None:
    svg = all_evil_charts()[index]
    root = check_chart(svg)
    assert "<script" not in str(svg).lower()
    # the page's HTML parser, not an XML one, reads an inline <svg>: it must see no handler either
    tags, attributes = html_tokens(svg)
    assert "script" not in tags
    assert not [a for a in attributes if a.startswith("on") or "href" in a]
    # escaped, not dropped: every name reads back as it was (whole, in a <title> at least)
    readable = "".join(root.itertext()) + " ".join(
        v for e in root.iter() for v in e.attrib.values()
    )
    for name in EVIL:
        assert name in readable, name


def test_data_passed_as_markup_is_still_escaped() -> None:
    sneaky = Markup("<script>alert(1)</script>")
    svg = charts.bids_chart(
        [{"label": sneaky, "amount": 1.0, "winner": True, "flagged": False}],
        estimate=None,
        band=None,
        labels={"winner": Markup("<b onclick=x>W</b>")},
    )
    root = check_chart(svg)
    assert "<script" not in str(svg)
    assert "<b " not in str(svg)
    assert str(sneaky) in "".join(root.itertext())


def test_characters_xml_forbids_are_dropped_not_fatal() -> None:
    name = "Firm\x00 \x0bOne\x1f\ufffe"
    svg = charts.bids_chart(
        [{"label": name, "amount": 5.0, "winner": True, "flagged": False}],
        estimate=None,
        band=None,
        labels={},
    )
    root = check_chart(svg)
    assert "Firm One" in "".join(root.itertext())


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(st.text(max_size=40), min_size=1, max_size=8),
    amounts=st.lists(
        st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=64)),
        min_size=1,
        max_size=8,
    ),
)
def test_any_text_and_any_number_give_a_valid_bids_chart(
    names: list[str], amounts: list[float | None]
) -> None:
    bids = [
        {"label": name, "amount": amount, "winner": i == 0, "flagged": i % 2 == 1}
        for i, (name, amount) in enumerate(zip(names, amounts * len(names), strict=False))
    ]
    check_chart(charts.bids_chart(bids, estimate=amounts[0], band=None, labels={}), any_text=True)


@settings(max_examples=40, deadline=None)
@given(names=st.lists(st.text(max_size=30), min_size=1, max_size=6, unique=True))
def test_any_text_gives_a_valid_rotation_and_network(names: list[str]) -> None:
    wins = [("2020-01-0" + str(i + 1), name, name) for i, name in enumerate(names)]
    check_chart(charts.rotation(names, wins, labels={}), any_text=True)
    nodes = [{"id": name, "label": name, "wins": 1, "risk": 10} for name in names]
    edges = [{"a": names[0], "b": name, "cobids": 1, "traces": name} for name in names]
    check_chart(charts.network(nodes, edges, labels={}), any_text=True)


# ------------------------------------------------------------------------------------------
# Bids


def test_winner_is_marked_and_every_bid_has_a_tooltip() -> None:
    bids = [
        {"label": "Low Ltd", "amount": 900_000.0, "winner": False, "flagged": False},
        {"label": "Winner Ltd", "amount": 950_000.0, "winner": True, "flagged": True},
        {"label": "Cover Ltd", "amount": 960_000.0, "winner": False, "flagged": True},
        {"label": "No amount", "amount": None, "winner": False, "flagged": False},
    ]
    root = check_chart(
        charts.bids_chart(
            bids,
            estimate=1_000_000,
            band=(950_000, 980_000),
            labels={"winner": "中标", "estimate": "控制价"},
        )
    )
    (winner,) = by_class(root, "bw-winner")
    assert "Winner Ltd" in tip(winner)
    assert "中标" in tip(winner)
    assert winner.get("fill") == charts.DARK
    assert float(winner.get("r", 0)) > float(by_class(root, "bw-mark")[0].get("r", 0))
    marks = by_class(root, "bw-mark", "circle")
    assert [tip(m).split(" · ")[0] for m in marks] == ["Low Ltd", "Winner Ltd", "Cover Ltd"]
    xs = [float(m.get("cx", 0)) for m in marks]
    assert xs == sorted(xs)
    (estimate,) = by_class(root, "bw-estimate")
    assert float(estimate.get("x1", 0)) > max(xs)
    (band,) = by_class(root, "bw-band")
    assert float(band.get("x", 0)) == pytest.approx(xs[1], abs=0.1)  # band starts at the winner
    assert any("1 without an amount" in t for t in texts(root))
    assert any(t.startswith("控制价") for t in root.itertext())


def test_sixty_bids_keep_every_mark_but_label_only_what_fits() -> None:
    rng = random.Random(1)
    bids = bids_input(60, rng)
    root = check_chart(charts.bids_chart(bids, estimate=None, band=None, labels={}))
    marks = by_class(root, "bw-mark", "circle")
    assert len(marks) == 60
    assert {tip(m).split(" · ")[0] for m in marks} == {f"Firm {i}" for i in range(60)}
    row_labels = [t for t in texts(root) if t.startswith("Firm")]
    assert 10 < len(row_labels) < 60
    assert "Firm 0" in row_labels  # the winner's label is always written
    ys = sorted(
        float(e.get("y", 0)) for e in root.iter(f"{NS}text") if (e.text or "").startswith("Firm")
    )
    assert min(b - a for a, b in itertools.pairwise(ys)) >= 11


def test_absurd_amounts_are_left_out_rather_than_overflowing_the_axis() -> None:
    bids = [
        {"label": "huge", "amount": 1.7e308, "winner": False, "flagged": False},
        {"label": "negative huge", "amount": -1.7e308, "winner": False, "flagged": False},
        {"label": "text", "amount": "12 000", "winner": False, "flagged": False},
        {"label": "ok", "amount": "1200.5", "winner": True, "flagged": False},
    ]
    root = check_chart(charts.bids_chart(bids, estimate=float("inf"), band=None, labels={}))
    assert [tip(m) for m in by_class(root, "bw-mark")] == ["ok · 1,200 · winner"]
    assert "3 without an amount, not shown" in texts(root)
    assert not by_class(root, "bw-estimate")


def test_one_bid_and_equal_bids_have_a_range_to_draw_on() -> None:
    for bids in (
        [{"label": "Only", "amount": 0.0, "winner": True, "flagged": False}],
        [{"label": f"B{i}", "amount": 5e6, "winner": i == 0, "flagged": False} for i in range(3)],
    ):
        root = check_chart(charts.bids_chart(bids, estimate=None, band=None, labels={}))
        assert len(by_class(root, "bw-mark", "circle")) == len(bids)


def test_amounts_are_written_compactly() -> None:
    assert charts._compact(1_234_567) == "1.23M"
    assert charts._compact(45_600) == "45.6k"
    assert charts._compact(950) == "950"
    assert charts._compact(2_500_000_000) == "2.5B"
    assert charts._compact(12_000_000, "wan") == "1200万"
    assert charts._compact(340_000_000, "wan") == "3.4亿"
    assert charts._compact(0) == "0"
    assert charts._compact(999_999) == "1M"
    assert charts._compact(-0.001) == "-0.001"
    _, _, ticks = charts._axis(1_000_000, 1_150_000, 6)
    assert charts._amount_ticks("si")(ticks) == ["1.00M", "1.05M", "1.10M", "1.15M"]
    assert charts._amount_ticks("wan")([0.0, 5e6, 1e7]) == ["0", "500万", "1000万"]
    with pytest.raises(ValueError, match="unit must be"):
        charts._compact(1.0, "cn")  # type: ignore[arg-type]
    root = check_chart(
        charts.bids_chart(
            [{"label": "A", "amount": 3_200_000, "winner": True, "flagged": False}],
            estimate=3_500_000,
            band=None,
            labels={},
            unit="wan",
        )
    )
    assert any(t.endswith("万") for t in texts(root))


# ------------------------------------------------------------------------------------------
# Waterfall


def edges_of(rect: ET.Element) -> tuple[float, float]:
    x, width = float(rect.get("x", 0)), float(rect.get("width", 0))
    return x, x + width


def test_waterfall_steps_chain_and_end_at_the_total() -> None:
    items = [("shared IP", 20.0), ("close bids", 35.5), ("rotation", 12.25)]
    root = check_chart(charts.waterfall(items, total=67.75, labels={"total": "合计"}))
    steps = by_class(root, "bw-step", "rect")
    (total,) = by_class(root, "bw-total", "rect")
    assert [tip(s).split(":")[0] for s in steps] == ["close bids", "shared IP", "rotation"]
    assert steps[0].get("x") == total.get("x")  # both start at 0
    for before, after in itertools.pairwise(steps):
        assert edges_of(after)[0] == pytest.approx(edges_of(before)[1], abs=1e-6)
    assert edges_of(steps[-1])[1] == pytest.approx(edges_of(total)[1], abs=1e-6)
    assert tip(total) == "合计: 67.8"


def test_waterfall_total_bar_is_drawn_from_the_total_not_the_sum() -> None:
    root = check_chart(charts.waterfall([("a", 10.0), ("b", 20.0)], total=60.0, labels={}))
    steps = by_class(root, "bw-step", "rect")
    (total,) = by_class(root, "bw-total", "rect")
    start, end = edges_of(total)
    assert edges_of(steps[-1])[1] - start == pytest.approx((end - start) / 2, abs=0.2)


def test_waterfall_folds_past_twelve_into_others() -> None:
    items = [(f"r{i}", float(i)) for i in range(1, 21)]
    root = check_chart(charts.waterfall(items, total=210, labels={"others": "其他"}))
    steps = by_class(root, "bw-step", "rect")
    assert len(steps) == 13
    assert tip(steps[0]) == "r20: +20"
    assert tip(steps[-1]) == "其他 (8): +36"  # 1 + 2 + ... + 8
    (total,) = by_class(root, "bw-total", "rect")
    assert edges_of(steps[-1])[1] == pytest.approx(edges_of(total)[1], abs=1e-6)


def test_waterfall_with_a_negative_step_and_bad_points() -> None:
    items = [("up", 30.0), ("down", -10.0), ("nan", float("nan")), ("none", None)]
    root = check_chart(charts.waterfall(items, total=20.0, labels={}))  # type: ignore[arg-type]
    up, down = by_class(root, "bw-step", "rect")
    assert edges_of(down)[1] == pytest.approx(edges_of(up)[1], abs=1e-6)
    assert down.get("fill") == charts.GREY
    with pytest.raises(ValueError, match="color"):
        charts.waterfall(items, total=1, labels={}, color="red;background:url(x)")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# Activity


def test_activity_overlays_wins_on_bids() -> None:
    root = check_chart(
        charts.activity(["2021", "2022", "2023"], [10, 0, 4], [3, 0, 4], labels={"bids": "投标"})
    )
    bids, wins = by_class(root, "bw-bids", "rect"), by_class(root, "bw-wins", "rect")
    assert len(bids) == len(wins) == 3
    heights = [float(b.get("height", 0)) for b in bids]
    assert heights[0] > heights[2] > heights[1] == 0
    assert float(wins[0].get("height", 0)) == pytest.approx(heights[0] * 0.3, abs=0.2)
    assert float(wins[2].get("height", 0)) == pytest.approx(heights[2], abs=0.1)
    groups = [g for g in root.iter(f"{NS}g") if g.find(f"{NS}title") is not None]
    assert tip(groups[0]) == "2021: 投标 10, wins 3"


def test_activity_thins_period_labels_when_many() -> None:
    periods = [f"{2000 + i // 4}-Q{i % 4 + 1}" for i in range(60)]
    root = check_chart(charts.activity(periods, [1] * 60, [0] * 60, labels={}))
    shown = [t for t in texts(root) if "-Q" in t]
    assert 5 <= len(shown) < 60
    assert shown[0] == "2000-Q1"


def test_activity_rejects_mismatched_or_negative_counts() -> None:
    with pytest.raises(ValueError, match="same length"):
        charts.activity(["2021", "2022"], [1], [1, 2], labels={})
    with pytest.raises(ValueError, match=r"wins\[1\] \(period '2022'\) is -1"):
        charts.activity(["2021", "2022"], [1, 1], [0, -1], labels={})


# ------------------------------------------------------------------------------------------
# Network


def test_network_is_deterministic_whatever_the_input_order() -> None:
    nodes, edges = network_input(15, random.Random(2))
    first = charts.network(nodes, edges, labels={}, seed=3)
    assert first == charts.network(nodes, edges, labels={}, seed=3)
    assert first == charts.network(nodes[::-1], edges[::-1], labels={}, seed=3)
    assert first != charts.network(nodes, edges, labels={}, seed=4)


def test_network_legend_sizes_colours_and_trace_edges() -> None:
    nodes = [
        {"id": "A", "label": "Alpha", "wins": 10, "risk": 90.0},
        {"id": "B", "label": "Beta", "wins": 1, "risk": 5.0},
        {"id": "C", "label": "Gamma", "wins": 4, "risk": None},
    ]
    edges = [
        {"a": "A", "b": "B", "cobids": 12, "traces": "ip_address;deposit_account"},
        {"a": "B", "b": "C", "cobids": 2, "traces": ""},
        {"a": "C", "b": "A", "cobids": 0, "traces": "phone"},
        {"a": "A", "b": "Z", "cobids": 5, "traces": ""},  # Z is not drawn
        {"a": "A", "b": "A", "cobids": 5, "traces": ""},
    ]
    root = check_chart(charts.network(nodes, edges, labels={"traces": "共同痕迹"}))
    (legend,) = by_class(root, "bw-legend")
    assert "共同痕迹" in "".join(legend.itertext())
    circles = {tip(c).split(" ")[0]: c for c in by_class(root, "bw-node", "circle")}
    assert set(circles) == {"Alpha", "Beta", "Gamma"}
    radius = {k: float(c.get("r", 0)) for k, c in circles.items()}
    assert radius["Alpha"] > radius["Gamma"] > radius["Beta"]
    assert circles["Alpha"].get("fill") == charts._risk_color(90.0)
    assert charts._risk_color(0.0) == charts.LIGHT
    assert charts._risk_color(100.0) == charts.RED
    assert circles["Gamma"].get("fill") == charts.LIGHT  # no risk: neutral
    traces = by_class(root, "bw-trace", "line")
    assert len(traces) == 2
    for line in traces:
        assert line.get("stroke-dasharray")
        assert line.get("stroke") == charts.TRACE
    assert any("deposit_account, ip_address" in tip(t) for t in traces)
    cobids = by_class(root, "bw-cobid", "line")
    assert len(cobids) == 2  # A-B and B-C; the trace-only edge has no co-bid line
    widths = sorted(float(c.get("stroke-width", 0)) for c in cobids)
    assert widths[0] < widths[1]
    for cobid in cobids:
        assert not cobid.get("stroke-dasharray")


def test_network_draws_the_forty_with_most_wins_and_says_how_many_more() -> None:
    nodes = [{"id": f"N{i:02d}", "label": f"N{i:02d}", "wins": i, "risk": 10} for i in range(55)]
    edges = [{"a": "N00", "b": "N54", "cobids": 3, "traces": ""}]
    root = check_chart(charts.network(nodes, edges, labels={"more": "另有 {n} 家"}))
    drawn = {tip(c).split(" ")[0] for c in by_class(root, "bw-node", "circle")}
    assert drawn == {f"N{i:02d}" for i in range(15, 55)}
    assert "另有 15 家" in texts(root)
    names = [t for t in texts(root) if t.startswith("N")]
    assert "N54" in names  # most wins: named first; others only where their names fit
    assert len(names) == len(set(names)) <= 40
    assert not by_class(root, "bw-cobid")  # its other end, N00, is not drawn


def test_network_of_one_node() -> None:
    root = check_chart(charts.network([{"id": "A", "label": "", "wins": 0}], [], labels={}))
    (node,) = by_class(root, "bw-node", "circle")
    assert tip(node).startswith("A")


# ------------------------------------------------------------------------------------------
# Rotation


def test_rotation_places_wins_in_their_member_row_in_date_order() -> None:
    members = ["Firm B", "Firm A", "Firm C"]
    wins = [
        ("2021-03-01", "Firm A", "T2"),
        ("2021-01-01", "Firm B", "T1"),
        ("", "Firm C", "T9"),
        ("not a date", "Firm C", "T8"),
        ("2021-05-01", "Firm C", "T3"),
        ("2021-07-01T00:00:00", "Firm B", "T4"),
    ]
    root = check_chart(charts.rotation(members, wins, labels={"undated": "{n} 项无日期"}))
    marks = by_class(root, "bw-win", "circle")
    assert len(marks) == 4
    by_tender = {tip(m).split(" · ")[2]: m for m in marks}
    assert set(by_tender) == {"T1", "T2", "T3", "T4"}
    assert tip(by_tender["T2"]) == "2021-03-01 · Firm A · T2"
    y = {t: float(m.get("cy", 0)) for t, m in by_tender.items()}
    assert y["T1"] == y["T4"] < y["T2"] < y["T3"]  # rows in the given member order
    x = [float(by_tender[t].get("cx", 0)) for t in ("T1", "T2", "T3", "T4")]
    assert x == sorted(x)
    assert "2 项无日期" in texts(root)
    assert by_class(root, "bw-sequence")


def test_notes_keep_their_count_whatever_the_translation() -> None:
    wins = [("", "A", "T1"), ("?", "A", "T2"), ("2021-01-01", "A", "T3")]
    root = check_chart(charts.rotation(["A"], wins, labels={"undated": "无日期 {x}"}))
    assert "无日期 {x} (2)" in texts(root)


def test_rotation_all_undated_and_unknown_members() -> None:
    root = check_chart(charts.rotation(["A"], [("", "A", "T1")], labels={}))
    assert by_class(root, "bw-empty")
    assert "1 wins without a date, not shown" in texts(root)
    with pytest.raises(ValueError, match="'Q', who is not among the members"):
        charts.rotation(["A"], [("2021-01-01", "Q", "T1")], labels={})


def test_rotation_of_one_day_and_of_decades() -> None:
    one = check_chart(charts.rotation(["A"], [("2021-06-01", "A", "T1")], labels={}))
    assert len(by_class(one, "bw-win")) == 1
    long = [(f"{1990 + i}-01-01", "A", f"T{i}") for i in range(35)]
    root = check_chart(charts.rotation(["A"], long, labels={}))
    years = [t for t in texts(root) if re.fullmatch(r"\d{4}", t)]
    assert 3 <= len(years) <= 9
    for extreme in (["0001-01-01"], ["9999-12-31"], ["0001-01-01", "9999-12-31"]):
        wins = [(day, "A", f"T{i}") for i, day in enumerate(extreme)]
        assert len(by_class(check_chart(charts.rotation(["A"], wins, labels={})), "bw-win")) == len(
            extreme
        )


# ------------------------------------------------------------------------------------------
# Settlement growth


def test_growth_limit_line_is_at_the_limit() -> None:
    contracts = [
        {"label": "at", "amount": 2e6, "growth": 0.15, "flagged": False},
        {"label": "high", "amount": 5e5, "growth": 0.6, "flagged": True},
        {"label": "low", "amount": 8e7, "growth": -0.05, "flagged": False},
        {"label": "zero", "amount": 0.0, "growth": 0.2, "flagged": False},
        {"label": "no growth", "amount": 1e6, "growth": None, "flagged": False},
    ]
    root = check_chart(charts.growth_chart(contracts, limit=0.15, labels={"limit": "上限"}))
    (limit,) = by_class(root, "bw-limit", "line")
    assert limit.get("y1") == limit.get("y2")
    points = {tip(p).split(" · ")[0]: p for p in by_class(root, "bw-point", "circle")}
    assert set(points) == {"at", "high", "low"}
    assert points["at"].get("cy") == limit.get("y1")
    assert (
        float(points["high"].get("cy", 0))
        < float(limit.get("y1", 0))
        < float(points["low"].get("cy", 0))
    )
    assert (
        float(points["high"].get("cx", 0))
        < float(points["at"].get("cx", 0))
        < float(points["low"].get("cx", 0))
    )
    assert "bw-flagged" in points["high"].get("class", "")
    assert points["high"].get("fill") == charts.RED
    assert tip(points["high"]) == "high · 500,000 · +60%"
    assert "上限 15%" in "".join(root.itertext())
    assert any(t.startswith("2 without") for t in texts(root))


def test_growth_log_axis_ticks() -> None:
    contracts = [{"label": "a", "amount": a, "growth": 0.0, "flagged": False} for a in (1e4, 1e8)]
    root = check_chart(charts.growth_chart(contracts, limit=0.15, labels={}))
    assert {"10k", "100k", "1M", "10M", "100M"} <= set(texts(root))
    one = check_chart(
        charts.growth_chart([{"label": "a", "amount": 3e5, "growth": 0.1}], limit=0.15, labels={})
    )
    assert len(by_class(one, "bw-point")) == 1
    tiny = [{"label": "a", "amount": a, "growth": 0.0} for a in (1.0, 2.2e-313)]
    assert (
        len(by_class(check_chart(charts.growth_chart(tiny, limit=0.1, labels={})), "bw-point")) == 2
    )


def test_growth_thins_large_inputs_but_keeps_every_flagged_contract() -> None:
    rng = random.Random(0)
    contracts = [
        {
            "label": f"C{i}",
            "amount": 10 ** rng.uniform(4, 8),
            "growth": rng.random(),
            "flagged": i % 50 == 0,
        }
        for i in range(5000)
    ]
    root = check_chart(charts.growth_chart(contracts, limit=0.15, labels={}, max_points=1000))
    points = by_class(root, "bw-point", "circle")
    assert len(points) == 1000
    assert len(by_class(root, "bw-flagged", "circle")) == 100
    assert "1000 of 5000 shown (every flagged one included)" in texts(root)


# ------------------------------------------------------------------------------------------
# Unit prices


def test_price_chart_sorts_by_ratio_with_reference_and_range() -> None:
    items = [
        {"label": "Steel", "ratio": 1.2, "flagged": False},
        {"label": "Cement", "ratio": 0.4, "flagged": True},
        {"label": "Sand", "ratio": 2.0, "flagged": True},
        {"label": "Pipe", "ratio": float("inf"), "flagged": False},
    ]
    root = check_chart(charts.price_chart(items, low=0.8, high=1.5, labels={"reference": "参考价"}))
    marks = by_class(root, "bw-mark", "circle")
    assert [tip(m).split(" · ")[0] for m in marks] == ["Cement", "Steel", "Sand"]
    xs = [float(m.get("cx", 0)) for m in marks]
    (reference,) = by_class(root, "bw-reference", "line")
    (band,) = by_class(root, "bw-range", "rect")
    left, right = edges_of(band)
    assert xs[0] < left < float(reference.get("x1", 0)) < xs[1] < right < xs[2]
    assert [m.get("fill") for m in marks] == [charts.AMBER, charts.GREY, charts.AMBER]
    assert "参考价 1.0" in "".join(root.itertext())
    assert any(t.startswith("1 without") for t in texts(root))


def test_price_range_without_a_high_end_runs_to_the_axis_end() -> None:
    items = [{"label": f"I{i}", "ratio": 0.5 + i / 10, "flagged": False} for i in range(10)]
    root = check_chart(charts.price_chart(items, low=0.8, high=None, labels={}))
    (band,) = by_class(root, "bw-range", "rect")
    axis_end = max(float(e.get("x2", 0)) for e in root.iter(f"{NS}line"))
    assert edges_of(band)[1] == pytest.approx(axis_end, abs=0.1)
    assert "≥ 0.8" in "".join(root.itertext())
