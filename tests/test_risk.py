"""Risk: additive, bounded, traceable to findings, stable ranking."""

from __future__ import annotations

import math

import polars as pl
import pytest
from scipy import stats

import bidwatch
from bidwatch.config import Config
from bidwatch.dataset import Dataset
from bidwatch.detectors import REGISTRY
from bidwatch.detectors._base import family
from bidwatch.risk import (
    _group_details,
    _pair_details,
    buyer_contributions,
    family_risk,
    group_contributions,
    group_members,
    history_contributions,
    with_points,
)


def contributions(rows: list[tuple[str, str, str, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(k, s, d, "finding", w, sc, 0.0, "why") for k, s, d, w, sc in rows],
        schema=[
            "subject_kind",
            "subject_id",
            "detector",
            "via",
            "weight",
            "score",
            "points",
            "reason",
        ],
        orient="row",
    )


def test_points_sum_to_the_risk() -> None:
    frame = contributions(
        [
            ("tender", "T1", "a", 1.0, 0.9),
            ("tender", "T1", "b", 0.5, 0.8),
            ("tender", "T2", "a", 1.0, 0.5),
        ]
    )
    points, totals = with_points(frame, scale=1.0)
    risk = dict(totals.select("subject_id", "risk").iter_rows())
    assert risk["T1"] == pytest.approx(100 * (1 - math.exp(-1.3)), abs=0.05)
    assert risk["T2"] == pytest.approx(100 * (1 - math.exp(-0.5)), abs=0.05)
    t1 = points.filter(pl.col("subject_id") == "T1")
    assert t1.get_column("points").sum() == pytest.approx(risk["T1"], abs=0.05)
    assert t1.get_column("detector").to_list() == ["a", "b"], "largest contribution first"
    exact = 100 * (1 - math.exp(-1.3))
    assert t1.get_column("points").to_list()[0] == pytest.approx(exact * 0.9 / 1.3, abs=0.01)


def test_weights_change_risk(market: Dataset) -> None:
    base = bidwatch.scan(market).ranking("tender")
    top = base.filter(pl.col("top_reasons").str.contains("identical-bids")).row(0, named=True)

    def risk_with(weight: float) -> float:
        config = {"detectors": {"identical-bids": {"weight": weight}}}
        ranked = bidwatch.scan(market, config=config).ranking("tender")
        return float(
            ranked.filter(pl.col("tender_id") == top["tender_id"]).row(0, named=True)["risk"]
        )

    assert risk_with(3.0) > top["risk"] > risk_with(0.0)


def test_zero_weight_findings_explain_without_points(market: Dataset) -> None:
    result = bidwatch.scan(market)
    cv = result.contributions.filter(pl.col("detector") == "bid-cv")
    assert cv.height > 0
    assert (cv.get_column("points") == 0).all()
    assert (cv.get_column("weight") == 0).all()


def test_rankings_cover_everyone_and_break_ties_by_id(market: Dataset) -> None:
    result = bidwatch.scan(market)
    tenders = result.ranking("tender")
    assert tenders.height == market.tenders.height
    assert tenders.get_column("rank").to_list() == list(range(1, tenders.height + 1))
    assert tenders.get_column("risk").diff().drop_nulls().le(0).all()
    scored = result.contributions.filter(
        (pl.col("subject_kind") == "tender") & (pl.col("weight") * pl.col("score") > 0)
    ).get_column("subject_id")
    none = tenders.filter(~pl.col("tender_id").is_in(scored.implode()))
    assert none.height > 0
    assert none.get_column("tender_id").to_list() == sorted(none.get_column("tender_id").to_list())
    assert tenders.get_column("risk").is_between(0, 100).all()
    firms = result.ranking("firm")
    assert firms.height == market.bids.get_column("bidder_id").n_unique()
    assert firms.get_column("rank").to_list() == list(range(1, firms.height + 1))


def test_every_point_traces_to_a_finding(market: Dataset) -> None:
    result = bidwatch.scan(market)
    found = result.findings.frame
    tender_points = result.contributions.filter(pl.col("subject_kind") == "tender")
    own = tender_points.filter(pl.col("via") == "finding")
    joined = own.join(
        found.select("detector", "subject_id", pl.col("message").alias("reason")),
        on=["detector", "subject_id", "reason"],
        how="anti",
    )
    assert joined.height == 0
    inherited = tender_points.filter(pl.col("via") != "finding")
    via = inherited.get_column("via").str.split_exact(" ", 1).struct.unnest()
    assert set(via.get_column("field_0")) == {"group", "buyer", "contractor"}, (
        "tenders inherit from the groups that meet in them, the buyers that favour them and "
        "the materials history of the firms that hold them"
    )
    for kind in ("group", "buyer"):
        subjects = set(found.filter(pl.col("subject_kind") == kind).get_column("subject_id"))
        assert set(via.filter(pl.col("field_0") == kind).get_column("field_1")) <= subjects
    materials = {d.name for d in REGISTRY if family(d) == "materials"}
    named = set(
        found.filter(pl.col("detector").is_in(sorted(materials)))
        .explode("firms")
        .get_column("firms")
        .drop_nulls()
    ) | set(
        found.filter(
            pl.col("detector").is_in(sorted(materials)) & (pl.col("subject_kind") == "firm")
        ).get_column("subject_id")
    )
    assert set(via.filter(pl.col("field_0") == "contractor").get_column("field_1")) <= named
    by_tender = tender_points.group_by("subject_id").agg(pl.col("points").sum())
    ranked = result.ranking("tender").join(by_tender, left_on="tender_id", right_on="subject_id")
    assert ((ranked["risk"] - ranked["points"].round(2)).abs() < 1e-9).all()


def _units(result: bidwatch.ScanResult, detector: str) -> pl.DataFrame:
    """Every bid of a firm in a tender the detector assessed, with the score naming it."""
    named = (
        result.findings.frame.filter(pl.col("detector") == detector)
        .explode("firms")
        .select(pl.col("subject_id").alias("tender_id"), pl.col("firms").alias("firm_id"), "score")
    )
    return (
        result.data.bids.select("tender_id", "firm_id")
        .unique()
        .join(result.assessed[detector].to_frame("tender_id"), on="tender_id", how="semi")
        .join(named, on=["tender_id", "firm_id"], how="left")
        .with_columns(pl.col("score").fill_null(0.0))
    )


def test_firms_inherit_sparse_flags_by_exact_binomial(market: Dataset) -> None:
    result = bidwatch.scan(market)
    units = _units(result, "identical-bids")
    rate = units.filter(pl.col("score") > 0).height / units.height
    inherited = result.contributions.filter(
        (pl.col("via") == "tenders") & (pl.col("detector") == "identical-bids")
    )
    assert inherited.height > 0
    for row in inherited.iter_rows(named=True):
        mine = units.filter(pl.col("firm_id") == row["subject_id"])
        k, n = mine.filter(pl.col("score") > 0).height, mine.height
        assert row["reason"].startswith(f"{k} of its {n} tenders flagged by identical-bids")
        chance = stats.binom.sf(k - 1, n, rate) - 0.5 * stats.binom.pmf(k, n, rate)
        assert row["score"] == pytest.approx((1 - chance) ** 4, rel=1e-9)
    flagged_firms = set(units.filter(pl.col("score") > 0).get_column("firm_id"))
    assert set(inherited.get_column("subject_id")) == flagged_firms


def test_firms_inherit_graded_scores_by_mean_percentile(market: Dataset) -> None:
    result = bidwatch.scan(market)
    units = _units(result, "bid-pattern").with_columns(
        ((pl.col("score").rank("average") - 0.5) / pl.len()).alias("u")
    )
    var = units.get_column("u").var(ddof=0)
    per_firm = units.group_by("firm_id").agg(pl.len().alias("n"), pl.col("u").mean().alias("m"))
    inherited = result.contributions.filter(
        (pl.col("via") == "tenders") & (pl.col("detector") == "bid-pattern")
    )
    scores = dict(inherited.select("subject_id", "score").iter_rows())
    assert scores
    for firm, n, m in per_firm.iter_rows():
        z = (m - 0.5) * math.sqrt(n / var)  # type: ignore[operator]
        if z <= 0:
            assert firm not in scores, "a firm at or below chance inherits nothing"
        else:
            assert scores[firm] == pytest.approx((1 - stats.norm.sf(z)) ** 4, rel=1e-6)


def test_volume_alone_is_not_suspicious(market: Dataset) -> None:
    result = bidwatch.scan(market)
    busiest = result.ranking("firm").sort("tenders", descending=True).row(0, named=True)
    mine = _units(result, "bid-pattern").filter(pl.col("firm_id") == busiest["firm_id"])
    assert mine.height >= 20
    explained = result.explain(busiest["firm_id"]).filter(pl.col("detector") == "bid-pattern")
    if explained.height:
        assert explained.row(0, named=True)["score"] < 0.9


def test_config_mistakes_are_named() -> None:
    with pytest.raises(bidwatch.InputError, match="unknown detector 'bid-cvv'"):
        Config.from_dict({"detectors": {"select": ["bid-cvv"]}})
    with pytest.raises(bidwatch.InputError, match="unknown parameter 'fense'"):
        Config.from_dict({"detectors": {"bid-cv": {"fense": 2}}})
    with pytest.raises(bidwatch.InputError, match="fence must be float"):
        Config.from_dict({"detectors": {"bid-cv": {"fence": "wide"}}})
    with pytest.raises(bidwatch.InputError, match="fence must be >= 0"):
        Config.from_dict({"detectors": {"bid-cv": {"fence": -1}}})
    with pytest.raises(bidwatch.InputError, match=r"unknown section \[detector\]"):
        Config.from_dict({"detector": {}})
    with pytest.raises(bidwatch.InputError, match="select must be a list"):
        Config.from_dict({"detectors": {"select": "bid-cv"}})


def test_select_and_ignore(market: Dataset) -> None:
    only = bidwatch.scan(
        market,
        config={
            "detectors": {"select": ["bid-cv", "identical-bids"], "ignore": ["identical-bids"]}
        },
    )
    assert [r.name for r in only.runs] == ["bid-cv"]
    assert set(only.findings.frame.get_column("detector").unique()) == {"bid-cv"}


def _group_finding(
    group: str, members: list[str], detector: str, score: float
) -> dict[str, object]:
    return {
        "detector": detector,
        "subject_kind": "group",
        "subject_id": group,
        "score": score,
        "message": f"{detector} on {group}",
        "firms": members,
    }


def test_group_members_unite_detectors_and_keep_the_strongest() -> None:
    findings = pl.DataFrame(
        [
            _group_finding("G1", ["B", "A"], "bid-rotation", 0.4),
            _group_finding("G1", ["A", "B", "C"], "suspected-groups", 0.9),
            _group_finding("G2", ["D", "E"], "bid-rotation", 0.7),
        ]
    )
    members = group_members(findings)
    rows = {r["group_id"]: r for r in members.iter_rows(named=True)}
    assert rows["G1"]["members"] == ["A", "B", "C"]
    assert rows["G1"]["detector"] == "suspected-groups"
    assert rows["G1"]["detectors"] == "bid-rotation;suspected-groups"
    assert rows["G2"]["members"] == ["D", "E"]


BIDS = pl.DataFrame(
    {
        "tender_id": ["T1", "T1", "T1", "T2", "T2", "T3", "T3", "T4"],
        "firm_id": ["A", "B", "X", "A", "X", "B", "C", "A"],
        "is_winner": [True, False, False, False, True, True, None, True],
    }
)


def test_tenders_inherit_group_risk_only_where_two_members_bid() -> None:
    members = pl.DataFrame(
        {
            "group_id": ["G1"],
            "members": [["A", "B", "C"]],
            "detector": ["suspected-groups"],
            "detectors": ["suspected-groups"],
        }
    )
    risk = pl.DataFrame({"subject_kind": ["group"], "subject_id": ["G1"], "risk": [80.0]})
    out = group_contributions(BIDS, risk, members, share=0.5)
    assert out.get_column("subject_id").to_list() == ["T1", "T3"], "T2 and T4 have one member"
    assert (out.get_column("score") == 0.8).all()
    assert (out.get_column("weight") == 0.5).all()
    assert (out.get_column("via") == "group G1").all()
    assert out.row(0, named=True)["reason"] == (
        "2 members of suspected group G1 (risk 80.0) bid: A, B"
    )
    assert group_contributions(BIDS, risk, members, share=0.0).height == 0
    _, totals = with_points(out, scale=1.0)
    assert totals.get_column("risk").to_list() == pytest.approx([100 * (1 - math.exp(-0.4))] * 2)


def test_group_and_pair_tables_count_tenders_together() -> None:
    members = pl.DataFrame(
        {
            "group_id": ["G1", "G2"],
            "members": [["A", "B", "C"], ["X", "Y"]],
            "detector": ["suspected-groups", "bid-rotation"],
            "detectors": ["suspected-groups", "bid-rotation"],
        }
    )
    groups = {r["group_id"]: r for r in _group_details(BIDS, members).iter_rows(named=True)}
    assert groups["G1"] == {
        "group_id": "G1",
        "members": "A;B;C",
        "tenders": 2,
        "wins": 2,
        "detectors": "suspected-groups",
    }
    assert groups["G2"]["tenders"] == 0, "Y never bids; X alone is not the group together"
    from bidwatch import entities

    findings = pl.DataFrame(
        {
            "subject_kind": ["pair", "pair", "pair", "tender"],
            "subject_id": ["A|X", "B|C", "A|Z", "T1"],
        }
    )
    data = entities.resolve(
        bidwatch.load(bids=BIDS.rename({"firm_id": "bidder_id"}).with_columns(amount=100.0))
    )
    pairs = {r["pair_id"]: r for r in _pair_details(data, findings).iter_rows(named=True)}
    assert set(pairs) == {"A|X", "B|C", "A|Z"}
    assert pairs["A|Z"]["tenders"] == 0, "Z never bids"
    assert (pairs["A|X"]["firm_a"], pairs["A|X"]["firm_b"], pairs["A|X"]["tenders"]) == (
        "A",
        "X",
        2,
    )
    assert pairs["B|C"]["tenders"] == 1


def test_tenders_inherit_buyer_risk_where_a_favoured_firm_won() -> None:
    from bidwatch import entities

    data = entities.resolve(
        bidwatch.load(
            bids=pl.DataFrame(
                {
                    "tender_id": ["T1", "T1", "T2", "T2", "T3", "T3"],
                    "bidder_id": ["A", "B", "A", "B", "A", "B"],
                    "amount": [100.0, 110.0, 120.0, 100.0, 100.0, 105.0],
                    "is_winner": [True, False, False, True, True, False],
                }
            ),
            tenders=pl.DataFrame({"tender_id": ["T1", "T2", "T3"], "buyer_id": ["X", "X", "Y"]}),
        )
    )
    findings = pl.DataFrame(
        {
            "detector": ["buyer-concentration"],
            "subject_kind": ["buyer"],
            "subject_id": ["X"],
            "score": [0.9],
            "firms": [["A"]],
        }
    )
    risk = pl.DataFrame({"subject_kind": ["buyer"], "subject_id": ["X"], "risk": [60.0]})
    out = buyer_contributions(data, risk, findings, share=0.5)
    # T2 went to B, whom X's finding does not name; T3 is at another buyer.
    assert out.get_column("subject_id").to_list() == ["T1"]
    row = out.row(0, named=True)
    assert (row["via"], row["weight"], row["score"]) == ("buyer X", 0.5, 0.6)
    assert row["reason"] == "won by A, a firm buyer X (risk 60.0) favours"
    assert buyer_contributions(data, risk, findings, share=0.0).height == 0


def test_buyers_are_ranked_with_their_tenders(market: Dataset) -> None:
    result = bidwatch.scan(market)
    buyers = result.ranking("buyer")
    assert buyers.height == market.tenders.get_column("buyer_id").n_unique()
    assert buyers.get_column("tenders").sum() == market.tenders.height
    flagged = set(
        result.findings.frame.filter(pl.col("subject_kind") == "buyer").get_column("subject_id")
    )
    top = set(buyers.head(len(flagged)).get_column("buyer"))
    assert flagged
    assert top == flagged, "buyers with findings rank first"


def test_family_risks_keep_collusion_and_materials_apart() -> None:
    frame = contributions(
        [
            ("tender", "T1", "cartel", 1.0, 0.9),
            ("tender", "T1", "cheap", 1.0, 0.5),
            ("tender", "T2", "cartel", 1.0, 0.4),
        ]
    )
    out = family_risk(frame, {"cartel": "collusion", "cheap": "materials"}, scale=1.0)
    rows = {r["subject_id"]: r for r in out.iter_rows(named=True)}
    assert rows["T1"]["collusion_risk"] == pytest.approx(100 * (1 - math.exp(-0.9)))
    assert rows["T1"]["materials_risk"] == pytest.approx(100 * (1 - math.exp(-0.5)))
    assert rows["T2"]["materials_risk"] == 0.0
    _, totals = with_points(frame, scale=1.0)
    combined = dict(totals.select("subject_id", "risk").iter_rows())
    # Together they map as one sum: 1 - (1 - c)(1 - m).
    c, m = rows["T1"]["collusion_risk"] / 100, rows["T1"]["materials_risk"] / 100
    assert combined["T1"] == pytest.approx(100 * (1 - (1 - c) * (1 - m)))


def _history_data() -> Dataset:
    from bidwatch import entities

    return entities.resolve(
        bidwatch.load(
            bids=pl.DataFrame(
                {
                    "tender_id": ["T1", "T1", "T2", "T2", "T3", "T3", "T4", "T4"],
                    "bidder_id": ["A", "B", "A", "B", "A", "B", "A", "B"],
                    "amount": [100.0, 110.0, 100.0, 110.0, 100.0, 110.0, 100.0, 104.0],
                    "is_winner": [True, False, True, False, True, False, None, None],
                }
            ),
            tenders=pl.DataFrame(
                {
                    "tender_id": ["T1", "T2", "T3", "T4"],
                    "bid_deadline": ["2023-01-10", "2023-06-10", "2022-01-10", "2024-01-10"],
                }
            ),
        )
    )


def test_tenders_inherit_the_materials_history_of_their_holder() -> None:
    data = _history_data()
    findings = pl.DataFrame(
        {
            "detector": ["cheap", "cheap", "cartel"],
            "subject_kind": ["tender", "firm", "tender"],
            "subject_id": ["T1", "B", "T1"],
            "score": [0.8, 0.5, 0.9],
            "firms": [["A"], ["B"], ["A"]],
        }
    )
    weights = {"cheap": 1.0, "cartel": 1.0}
    out = history_contributions(data, findings, weights, {"cheap"}, Config().risk)
    rows = {r["subject_id"]: r for r in out.iter_rows(named=True)}
    # T2 (later, won by A) inherits T1's materials finding; T3 was bid before T1 and T1 does
    # not inherit its own finding; the collusion finding never counts.
    assert set(rows) == {"T2", "T4"}
    assert rows["T2"]["via"] == "contractor A"
    # A won T3 and T1 before T2: one flag over two contracts, and one clean one more.
    assert rows["T2"]["score"] == pytest.approx(1 - math.exp(-0.8 / 3))
    assert rows["T2"]["weight"] == 0.5
    assert "1 of its 2 earlier contracts flagged (e.g. T1)" in rows["T2"]["reason"]
    # T4 has no winner yet: its bidder with the heavier record counts. A's one flag is
    # spread over its three contracts (0.2); B's inspection record counts in full (0.5).
    assert rows["T4"]["via"] == "contractor B"
    assert rows["T4"]["score"] == pytest.approx(1 - math.exp(-0.5))
    assert "inspection record" in rows["T4"]["reason"]
    no_share = Config.from_dict({"risk": {"history_share": 0.0}}).risk
    assert history_contributions(data, findings, weights, {"cheap"}, no_share).height == 0


def test_rankings_by_family(market: Dataset) -> None:
    result = bidwatch.scan(market)
    for kind in ("tender", "firm"):
        overall = result.ranking(kind)
        assert {"collusion_risk", "materials_risk"} <= set(overall.columns)
        assert (overall["risk"] >= overall["collusion_risk"] - 0.01).all()
        assert (overall["risk"] >= overall["materials_risk"] - 0.01).all()
        by_materials = result.ranking(kind, by="materials_risk")
        assert by_materials.get_column("materials_risk").is_sorted(descending=True)
        assert by_materials.get_column("rank").to_list() == list(range(1, overall.height + 1))
    with pytest.raises(ValueError, match="no 'materials_risk'"):
        result.ranking("group", by="materials_risk")


def test_the_contract_holder_carries_the_history() -> None:
    from bidwatch import entities

    data = entities.resolve(
        bidwatch.load(
            bids=pl.DataFrame(
                {
                    "tender_id": ["T1", "T1", "T2", "T2"],
                    "bidder_id": ["A", "B", "A", "B"],
                    "amount": [100.0, 110.0, 100.0, 110.0],
                }
            ),
            tenders=pl.DataFrame(
                {"tender_id": ["T1", "T2"], "bid_deadline": ["2023-01-10", "2023-06-10"]}
            ),
            contracts=pl.DataFrame(
                {"tender_id": ["T1", "T2"], "contractor_id": ["B", "A"], "contract_amount": 1.0}
            ),
        )
    )
    findings = pl.DataFrame(
        {
            "detector": ["cheap", "cheap"],
            "subject_kind": ["firm", "firm"],
            "subject_id": ["A", "B"],
            "score": [0.9, 0.2],
            "firms": [["A"], ["B"]],
        }
    )
    out = history_contributions(data, findings, {"cheap": 1.0}, {"cheap"}, Config().risk)
    # No bid is marked as won: the contracts say who holds each tender.
    assert dict(out.select("subject_id", "via").iter_rows()) == {
        "T1": "contractor B",
        "T2": "contractor A",
    }
