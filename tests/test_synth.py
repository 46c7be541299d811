"""Synthetic market: determinism, canonical tables, market rules, planted schemes, truth."""

from __future__ import annotations

import hashlib
from itertools import pairwise
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import bidwatch
from bidwatch import cli, synth
from bidwatch.schema import AFTER_AWARD, AWARD_METHODS, BID_STATUSES, PROCEDURES, TABLES
from bidwatch.units import factor

TENDERS = 1500
TRACES = ("machine_code", "mac_address", "ip_address", "document_author", "deposit_account")


@pytest.fixture(scope="module")
def data() -> synth.SynthData:
    return synth.generate(TENDERS, seed=3)


@pytest.fixture(scope="module")
def bids(data: synth.SynthData) -> pl.DataFrame:
    """Bids with their tender's estimate and truth, and the bidder's truth."""
    return (
        data.bids.join(data.tenders.select("tender_id", "estimate", "award_method"), on="tender_id")
        .join(data.truth_tenders, on="tender_id")
        .join(
            data.truth_firms.select("bidder_id", pl.col("group").alias("firm_group")),
            on="bidder_id",
        )
        .with_columns((pl.col("firm_group") == pl.col("group")).alias("in_ring"))
    )


def scheme_bids(bids: pl.DataFrame, scheme: str) -> pl.DataFrame:
    return bids.filter(pl.col("scheme") == scheme)


# ------------------------------------------------------------------------------ determinism


def test_same_seed_gives_equal_frames_and_other_seeds_differ() -> None:
    a, b, c = (synth.generate(300, seed=s) for s in (5, 5, 6))
    for name in (
        "tenders",
        "bids",
        "firms",
        "truth_tenders",
        "truth_firms",
        "truth_buyers",
        *AFTER_AWARD,
    ):
        assert getattr(a, name).equals(getattr(b, name)), name
    assert not a.bids.equals(c.bids)
    assert not a.firms.equals(c.firms)
    assert not a.contracts.equals(c.contracts)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_seed_writes_byte_identical_files(tmp_path: Path, fmt: str) -> None:
    first = synth.generate(200, seed=8).write(tmp_path / "a", fmt=fmt)
    second = synth.generate(200, seed=8).write(tmp_path / "b", fmt=fmt)
    assert [p.relative_to(tmp_path / "a") for p in first] == [
        p.relative_to(tmp_path / "b") for p in second
    ]
    for x, y in zip(first, second, strict=True):
        assert x.read_bytes() == y.read_bytes(), x.name


def test_write_lays_out_tables_and_truth(tmp_path: Path, data: synth.SynthData) -> None:
    written = data.write(tmp_path, fmt="parquet")
    names = sorted(str(p.relative_to(tmp_path)) for p in written)
    assert names == [
        "bids.parquet",
        "change_orders.parquet",
        "contracts.parquet",
        "firms.parquet",
        "inspections.parquet",
        "items.parquet",
        "reference_prices.parquet",
        "tenders.parquet",
        "truth/buyers.csv",
        "truth/firms.csv",
        "truth/tenders.csv",
    ]
    truth = pl.read_csv(tmp_path / "truth" / "tenders.csv", infer_schema=False)
    assert truth.columns == [
        "tender_id",
        "collusive",
        "scheme",
        "group",
        "materials",
        "materials_scheme",
    ]
    assert truth.height == TENDERS
    firms = pl.read_csv(tmp_path / "truth" / "firms.csv", infer_schema=False)
    assert firms.columns == ["bidder_id", "group", "role", "materials_role"]
    buyers = pl.read_csv(tmp_path / "truth" / "buyers.csv", infer_schema=False)
    assert buyers.columns == ["buyer_id", "scheme", "group", "bidder_id"]
    assert buyers.height == data.tenders.get_column("buyer_id").n_unique()


def test_rejects_fewer_than_one_tender() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        synth.generate(0)


@pytest.mark.parametrize("n", [1, 7, 40])
def test_tiny_markets_are_complete(n: int) -> None:
    small = synth.generate(n, seed=1)
    assert small.tenders.height == n
    counts = small.bids.group_by("tender_id").len().get_column("len")
    assert counts.len() == n
    assert counts.min() >= 3  # type: ignore[operator]
    assert small.contracts.height == n
    loaded = bidwatch.load(**small.tables())
    assert loaded.rejected.height == 0, loaded.rejected.head(5)


# --------------------------------------------------------------------------- canonical form


KIND_DTYPES = {
    "id": {pl.String},
    "text": {pl.String},
    "enum": {pl.String},
    "unit": {pl.String},
    "period": {pl.String},
    "amount": {pl.Float64},
    "signed": {pl.Float64},
    "number": {pl.Float64},
    "bool": {pl.Boolean},
    "date": {pl.Date, pl.Datetime("us")},
}


@pytest.mark.parametrize("table", ["tenders", "bids", "firms", *AFTER_AWARD])
def test_columns_are_canonical(data: synth.SynthData, table: str) -> None:
    frame: pl.DataFrame = getattr(data, table)
    spec = TABLES[table]
    assert set(frame.columns) <= set(spec.names), set(frame.columns) - set(spec.names)
    assert set(spec.required) <= set(frame.columns)
    for name, dtype in frame.schema.items():
        assert dtype in KIND_DTYPES[spec.column(name).kind], (name, dtype)
    if table in AFTER_AWARD:  # every canonical column, as the empty default has them
        assert frame.columns == list(spec.names)
        assert (
            frame.schema
            == synth.SynthData(
                tenders=data.tenders,
                bids=data.bids,
                firms=data.firms,
                truth_tenders=data.truth_tenders,
                truth_firms=data.truth_firms,
            )
            .tables()[table]
            .schema
        )


def test_enums_use_canonical_values(data: synth.SynthData) -> None:
    assert set(data.bids.get_column("status").unique()) <= set(BID_STATUSES)
    assert set(data.tenders.get_column("award_method").unique()) == set(AWARD_METHODS)
    assert set(data.tenders.get_column("procedure").unique()) <= set(PROCEDURES)
    assert set(data.tenders.get_column("category").unique()) == {
        "road",
        "bridge",
        "building",
        "water",
    }


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_load_reads_every_row(tmp_path: Path, data: synth.SynthData, fmt: str) -> None:
    data.write(tmp_path, fmt=fmt)
    loaded = bidwatch.load(**{name: tmp_path / f"{name}.{fmt}" for name in data.tables()})
    assert loaded.rejected.height == 0, loaded.rejected.head(5)
    assert loaded.notes == ()
    reads = {s.table: (s.rows_read, s.rows_used, s.rows_rejected) for s in loaded.sources}
    assert reads == {name: (frame.height, frame.height, 0) for name, frame in data.tables().items()}
    assert (
        loaded.bids.get_column("amount").null_count()
        == (data.bids.get_column("status") == "withdrawn").sum()
    )


def test_cli_synth_writes_a_folder_scan_reads(tmp_path: Path) -> None:
    assert cli.main(["synth", "--tenders", "60", "--seed", "2", "--out", str(tmp_path)]) == 0
    found = cli.find_inputs(tmp_path)
    tables = {"bids", "tenders", "firms", *AFTER_AWARD}
    assert {k for k in found if k in tables} == tables
    assert found["ocds"] == []


# ------------------------------------------------------------------------------ market rules


def test_every_bid_refers_to_a_tender_and_a_firm(data: synth.SynthData) -> None:
    assert data.bids.join(data.tenders, on="tender_id", how="anti").height == 0
    firms = data.firms.select(pl.col("firm_id").alias("bidder_id"))
    assert data.bids.join(firms, on="bidder_id", how="anti").height == 0
    assert data.tenders.get_column("tender_id").is_unique().all()
    assert data.firms.get_column("firm_id").is_unique().all()


def test_three_to_fifteen_distinct_bidders_per_tender(data: synth.SynthData) -> None:
    per = data.bids.group_by("tender_id").agg(
        pl.len().alias("bids"), pl.col("bidder_id").n_unique().alias("bidders")
    )
    assert per.height == TENDERS
    assert per.get_column("bids").min() == 3
    assert per.get_column("bids").max() <= 15  # type: ignore[operator]
    assert (per.get_column("bids") == per.get_column("bidders")).all()
    assert 5.5 < per.get_column("bids").mean() < 6.5  # type: ignore[operator]


def test_exactly_one_valid_winner_per_tender(data: synth.SynthData) -> None:
    winners = data.bids.filter(pl.col("is_winner"))
    assert winners.height == TENDERS
    assert winners.get_column("tender_id").is_unique().all()
    assert (winners.get_column("status") == "valid").all()


def test_lowest_price_awards_go_to_the_lowest_bid_and_scoring_not_always(
    data: synth.SynthData,
) -> None:
    ranked = (
        data.bids.filter(pl.col("status") == "valid")
        .join(data.tenders.select("tender_id", "award_method"), on="tender_id")
        .with_columns(pl.col("amount").rank("min").over("tender_id").alias("place"))
        .filter(pl.col("is_winner"))
    )
    lowest = ranked.filter(pl.col("award_method") == "lowest_price")
    scoring = ranked.filter(pl.col("award_method") == "scoring")
    assert (lowest.get_column("place") == 1).all()
    assert 0.5 < (scoring.get_column("place") == 1).mean() < 0.95  # type: ignore[operator]


def test_amounts_statuses_and_ceiling(bids: pl.DataFrame) -> None:
    withdrawn = bids.filter(pl.col("status") == "withdrawn")
    assert withdrawn.height > 0
    assert withdrawn.get_column("amount").null_count() == withdrawn.height
    priced = bids.filter(pl.col("status") != "withdrawn")
    assert priced.get_column("amount").null_count() == 0
    assert (priced.get_column("amount") > 0).all()
    valid = bids.filter(pl.col("status") == "valid")
    assert (valid.get_column("amount") <= valid.get_column("estimate")).all()
    assert 0.01 < (bids.get_column("status") == "disqualified").mean() < 0.08  # type: ignore[operator]


def test_dates_follow_the_procedure(data: synth.SynthData) -> None:
    t = data.tenders
    days = (t.get_column("bid_deadline") - t.get_column("published_at")).dt.total_days()
    assert (days >= 9).all()
    assert 0.6 < (days >= 19).mean() < 1.0  # type: ignore[operator]
    assert (t.get_column("awarded_at") > t.get_column("bid_deadline")).all()
    timed = data.bids.join(t, on="tender_id")
    assert (timed.get_column("submitted_at") > timed.get_column("published_at")).all()
    assert (timed.get_column("submitted_at") < timed.get_column("bid_deadline")).all()
    assert (t.get_column("published_at").dt.weekday() <= 5).all()


def test_bidder_names_mostly_match_the_registry(data: synth.SynthData) -> None:
    named = data.bids.join(
        data.firms.select(pl.col("firm_id").alias("bidder_id"), "name"), on="bidder_id"
    )
    differs = named.filter(pl.col("bidder_name") != pl.col("name"))
    assert 0.1 < differs.height / named.height < 0.2
    variants = differs.get_column("bidder_name")
    assert variants.str.contains("（", literal=True).any()
    assert variants.str.contains("(", literal=True).any()
    assert variants.str.ends_with(" ").any()
    english = variants.str.contains(r"^[A-Za-z]")
    assert english.any()
    assert variants.filter(english).str.contains(r"(Co\., Ltd\.|Company Limited)$").all()
    assert (variants.filter(~english).str.strip_chars().str.ends_with("公司")).all()
    assert data.firms.get_column("name").is_unique().all()


def test_typos_change_one_character_of_the_trade_name(data: synth.SynthData) -> None:
    named = data.bids.join(
        data.firms.select(pl.col("firm_id").alias("bidder_id"), "name"), on="bidder_id"
    ).filter(pl.col("bidder_name") != pl.col("name"))
    same_length = named.filter(
        pl.col("bidder_name").str.len_chars() == pl.col("name").str.len_chars()
    )
    differing = [
        sum(x != y for x, y in zip(a, b, strict=True))
        for a, b in same_length.select("bidder_name", "name").iter_rows()
    ]
    assert 1 in differing
    typos = [
        (a, b)
        for (a, b), d in zip(
            same_length.select("bidder_name", "name").iter_rows(), differing, strict=True
        )
        if d == 1
    ]
    registered = set(data.firms.get_column("name"))
    assert all(a not in registered for a, _ in typos), "a typo never spells another firm"


# -------------------------------------------------------------------------------- credit codes

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def uscc_is_valid(code: str) -> bool:
    """GB 32100-2015 check character and GB 11714 organisation code check, written out."""
    if len(code) != 18 or any(c not in USCC_CHARSET for c in code):
        return False
    total = sum(USCC_CHARSET.index(c) * pow(3, i, 31) for i, c in enumerate(code[:17]))
    if USCC_CHARSET[(31 - total % 31) % 31] != code[17]:
        return False
    org = code[8:17]
    value = sum(
        (int(c) if c.isdigit() else ord(c) - 55) * w
        for c, w in zip(org[:8], (3, 7, 9, 10, 5, 8, 4, 2), strict=True)
    )
    check = 11 - value % 11
    return org[8] == {10: "X", 11: "0"}.get(check, str(check))


def test_the_check_is_the_published_algorithm() -> None:
    assert uscc_is_valid("91440300708461136T")  # a real registered company
    assert not uscc_is_valid("91440300708461136X")
    assert not uscc_is_valid("91440300708461137T")


def test_credit_codes_are_valid_and_unique(data: synth.SynthData) -> None:
    codes = data.firms.get_column("credit_code")
    assert codes.is_unique().all()
    assert all(uscc_is_valid(c) for c in codes)
    assert codes.str.slice(8, 2).eq("MA").any()  # firms founded since the 2015 reform


# ---------------------------------------------------------------------------- planted schemes


def test_collusive_share_and_every_scheme_present(data: synth.SynthData) -> None:
    truth = data.truth_tenders
    share = truth.get_column("collusive").mean()
    assert 0.12 < share < 0.18  # type: ignore[operator]
    rigged = truth.filter(pl.col("collusive") == 1)
    assert set(rigged.get_column("scheme").unique()) == set(synth.ALL_SCHEMES)
    assert set(synth.ALL_SCHEMES) - set(synth.SCHEMES) == {"market_allocation"}
    assert (rigged.get_column("group") != "").all()
    clean = truth.filter(pl.col("collusive") == 0)
    assert (clean.get_column("scheme") == "").all()
    assert (clean.get_column("group") == "").all()


def test_truth_firms_match_the_rings(data: synth.SynthData, bids: pl.DataFrame) -> None:
    firms = data.truth_firms
    assert firms.get_column("bidder_id").equals(data.firms.get_column("firm_id"))
    members = firms.filter(pl.col("group") != "")
    assert (members.get_column("role") != "honest").all()
    assert (firms.filter(pl.col("group") == "").get_column("role") == "honest").all()
    sizes = members.group_by("group").agg(
        pl.len(), pl.col("group").str.extract(r"^(\w+)-").first().alias("scheme")
    )
    for scheme, (low, high) in synth.RING_SIZE.items():
        of = sizes.filter(pl.col("scheme") == scheme).get_column("len")
        assert of.len() > 0, scheme
        assert low <= of.min(), scheme  # type: ignore[operator]
        assert of.max() <= high, scheme  # type: ignore[operator]
    assert set(members.get_column("group").unique()) == set(
        data.truth_tenders.filter(pl.col("group") != "").get_column("group").unique()
    )
    # Every rigged tender has members of its group bidding: two or more in a ring's tender
    # or a sham tender, exactly one (the favoured firm, the buy-in, the buyer's allocated
    # member) otherwise.
    per = (
        bids.filter(pl.col("collusive") == 1)
        .group_by("tender_id", "scheme")
        .agg(pl.col("in_ring").sum())
    )
    alone = pl.col("scheme").is_in(["favoured_bidder", "buy_in", "market_allocation"])
    assert (per.filter(alone).get_column("in_ring") == 1).all()
    assert per.filter(~alone).get_column("in_ring").min() >= 2  # type: ignore[operator]
    assert set(firms.get_column("role").unique()) == set(synth.ROLES)


def test_ring_members_also_bid_in_clean_tenders(bids: pl.DataFrame) -> None:
    members = bids.filter(pl.col("firm_group") != "")
    honest_elsewhere = members.filter(pl.col("collusive") == 0).get_column("bidder_id").n_unique()
    assert honest_elsewhere / members.get_column("bidder_id").n_unique() > 0.9


def test_shared_traces_share_a_machine_and_honest_bids_never_do(bids: pl.DataFrame) -> None:
    dups = bids.group_by("tender_id", "scheme").agg(
        *[(pl.len() - pl.col(t).n_unique()).alias(t) for t in (*TRACES, "phone")]
    )
    shared = dups.filter(pl.col("scheme") == "shared_traces")
    assert shared.height > 0
    assert (shared.get_column("machine_code") >= 1).all()
    assert (shared.get_column("deposit_account") >= 1).any()
    others = dups.filter(pl.col("scheme") != "shared_traces")
    for trace in (*TRACES, "phone"):
        assert (others.get_column(trace) == 0).all(), trace
    # Across the whole file, a trace value belongs to one firm unless one hand prepared it.
    outside = bids.filter(pl.col("scheme") != "shared_traces")
    for trace in TRACES:
        owners = outside.group_by(trace).agg(pl.col("bidder_id").n_unique())
        assert (owners.get_column("bidder_id") == 1).all(), trace


def test_identical_bids_share_an_odd_amount(bids: pl.DataFrame) -> None:
    same = (
        bids.filter(pl.col("amount").is_not_null())
        .group_by("tender_id", "scheme", "amount")
        .agg(pl.col("bidder_id").n_unique().alias("bidders"))
        .filter(pl.col("bidders") >= 2)
    )
    planted = scheme_bids(bids, "identical_bids").get_column("tender_id").unique()
    hits = same.filter(pl.col("scheme") == "identical_bids")
    assert set(hits.get_column("tender_id")) == set(planted)
    assert ((hits.get_column("amount") * 100).round() % 100 != 0).all()
    # Chance coincidences of round amounts happen in clean tenders, but rarely.
    assert same.filter(pl.col("scheme") == "").height < 0.01 * TENDERS


def test_arithmetic_bids_form_a_progression(bids: pl.DataFrame) -> None:
    ring = (
        scheme_bids(bids, "arithmetic_bids")
        .filter(pl.col("in_ring"))
        .with_columns((pl.col("amount") * 100).round().cast(pl.Int64).alias("cents"))
        .sort("tender_id", "cents")
        .group_by("tender_id", maintain_order=True)
        .agg(pl.col("cents"))
    )
    assert ring.height > 0
    kinds = []
    for cents in ring.get_column("cents").to_list():
        assert len(cents) >= 3
        steps = {b - a for a, b in pairwise(cents)}
        ratios = [b / a for a, b in pairwise(cents)]
        arithmetic = len(steps) == 1 and steps.pop() % 100 != 0
        geometric = max(ratios) - min(ratios) < 1e-7 and ratios[0] > 1
        assert arithmetic or geometric, cents
        kinds.append(arithmetic)
    assert any(kinds)
    assert not all(kinds)


def test_rotation_rings_take_turns(bids: pl.DataFrame) -> None:
    rotation = scheme_bids(bids, "rotation")
    rings = (
        rotation.filter(pl.col("is_winner"))
        .group_by("group")
        .agg(
            pl.col("tender_id").n_unique().alias("tenders"),
            pl.col("bidder_id").filter(pl.col("in_ring")).n_unique().alias("ring_winners"),
            pl.col("in_ring").mean().alias("ring_wins"),
        )
        .filter(pl.col("tenders") >= 4)
    )
    assert rings.height > 0
    assert (rings.get_column("ring_winners") > 1).all()
    assert rings.get_column("ring_wins").mean() > 0.7  # type: ignore[operator]


def _per_tender(frame: pl.DataFrame) -> pl.DataFrame:
    priced = frame.filter(pl.col("status") == "valid")
    return priced.group_by("tender_id").agg(
        (pl.col("amount").std() / pl.col("amount").mean()).alias("cv"),
        (pl.col("amount").filter(pl.col("is_winner")).first() / pl.col("estimate").first()).alias(
            "ratio"
        ),
    )


def test_cover_bids_cluster_above_a_winner_near_the_estimate_under_lowest_price(
    bids: pl.DataFrame,
) -> None:
    lowest = bids.filter(pl.col("award_method") == "lowest_price")
    covered = scheme_bids(lowest, "cover_bidding")
    ring = covered.filter(pl.col("in_ring"))
    # The ring's lowest bid is its designated winner's; the covers sit a few percent above.
    band = ring.group_by("tender_id").agg(
        (pl.col("amount").max() / pl.col("amount").min() - 1).alias("band")
    )
    assert band.height > 5
    assert band.get_column("band").max() < 0.06  # type: ignore[operator]
    rigged = _per_tender(covered)
    clean = _per_tender(lowest.filter(pl.col("collusive") == 0))
    rigged_cv = rigged.get_column("cv")
    assert rigged_cv.median() < 0.5 * clean.get_column("cv").median()  # type: ignore[operator]
    ratio = rigged.get_column("ratio").median()
    assert ratio > clean.get_column("ratio").median() + 0.05  # type: ignore[operator]
    # ... but not cartoonishly: some rigged tenders look like clean ones.
    assert rigged_cv.max() > clean.get_column("cv").quantile(0.25)  # type: ignore[operator]


@pytest.mark.parametrize("rule", ["scoring", "average_bid"])
def test_steering_covers_widen_the_bids_under_benchmark_rules(
    bids: pl.DataFrame, rule: str
) -> None:
    under = bids.filter(pl.col("award_method") == rule)
    steered = under.filter(pl.col("scheme").is_in(["cover_bidding", "rotation"]))
    rigged = _per_tender(steered)
    clean = _per_tender(under.filter(pl.col("collusive") == 0))
    assert rigged.height > 5
    assert rigged.get_column("cv").median() > clean.get_column("cv").median()  # type: ignore[operator]


def test_round_covers_are_round_and_their_winners_are_not(bids: pl.DataFrame) -> None:
    def significant(amount: pl.Expr) -> pl.Expr:
        cents = (amount * 100).round().cast(pl.Int64).cast(pl.String)
        return cents.str.strip_chars_end("0").str.len_chars()

    priced = bids.filter(pl.col("amount").is_not_null()).with_columns(
        significant(pl.col("amount")).alias("digits")
    )
    ring = scheme_bids(priced, "round_covers").filter(pl.col("in_ring"))
    covers = ring.filter(~pl.col("is_winner"))
    assert covers.height > 10
    # Each ring rounds 50-100% of its covers, so a sample of a few rings lands near there.
    round_share = (covers.get_column("digits") <= 3).mean()
    assert 0.3 < round_share < 1.0  # type: ignore[operator]
    assert (ring.filter(pl.col("is_winner")).get_column("digits") > 3).all()
    # Honest bids are round too, but rarely: the round-number habit of a few firms.
    honest = (priced.filter(pl.col("scheme") == "").get_column("digits") <= 3).mean()
    assert 0.0 < honest < 0.03  # type: ignore[operator]
    assert round_share > 10 * honest  # type: ignore[operator]


def test_allocated_firms_never_bid_for_each_others_buyers(
    data: synth.SynthData, bids: pl.DataFrame
) -> None:
    owners = data.truth_buyers.filter(pl.col("scheme") == "market_allocation").select(
        "buyer_id", "group", pl.col("bidder_id").alias("owner")
    )
    assert owners.height >= 3
    members = data.truth_firms.filter(pl.col("role") == "allocated")
    # The ring's buyers are shared out among its members.
    assert set(owners.get_column("owner")) == set(members.get_column("bidder_id"))
    tenders = data.tenders.join(data.truth_tenders, on="tender_id")
    rigged = tenders.filter(pl.col("scheme") == "market_allocation")
    assert rigged.height > 5
    # The ring's market: one category of works in its county.
    market = rigged.select("region", "category").unique()
    assert market.height == 1
    in_market = (
        bids.drop("group")
        .join(tenders.join(market, on=["region", "category"]), on="tender_id")
        .join(owners.drop("group"), on="buyer_id", how="left")
        .filter(pl.col("bidder_id").is_in(members.get_column("bidder_id").implode()))
    )
    # Over the six years a member bids in its market only for its own buyers, and in all of
    # the ring's tenders, one member each: the owner of the tender's buyer.
    assert (in_market.get_column("bidder_id") == in_market.get_column("owner")).all()
    assert set(in_market.get_column("tender_id")) == set(rigged.get_column("tender_id"))
    assert in_market.get_column("tender_id").is_unique().all()
    # Prices are honest: the member wins some, not all.
    wins = in_market.get_column("is_winner").mean()
    assert 0.0 < wins < 0.9  # type: ignore[operator]
    # Members stay active outside their market.
    elsewhere = bids.filter(
        pl.col("bidder_id").is_in(members.get_column("bidder_id").implode())
        & (pl.col("scheme") == "")
    )
    assert elsewhere.get_column("bidder_id").n_unique() == members.height


def _per_tender_timing(frame: pl.DataFrame, tenders: pl.DataFrame) -> pl.DataFrame:
    timed = frame.join(tenders.select("tender_id", "published_at", "bid_deadline"), on="tender_id")
    return (
        timed.sort("tender_id", "submitted_at")
        .group_by("tender_id")
        .agg(
            (
                (pl.col("bid_deadline").first() - pl.col("published_at").first()).dt.total_days()
                < 19
            ).alias("short"),
            pl.col("is_winner").last().alias("winner_last"),
            ((pl.col("status") == "valid").sum() == 1).alias("single_valid"),
            (
                pl.col("status").sort_by(pl.col("amount").fill_null(float("inf"))).first()
                == "disqualified"
            ).alias("lowest_out"),
        )
    )


def test_favoured_bidders_win_their_buyers_tenders(
    data: synth.SynthData, bids: pl.DataFrame
) -> None:
    favours = data.truth_buyers.filter(pl.col("scheme") == "favoured_bidder").select(
        "buyer_id", pl.col("bidder_id").alias("favoured")
    )
    assert favours.height >= 1
    assert set(favours.get_column("favoured")) == set(
        data.truth_firms.filter(pl.col("role") == "favoured").get_column("bidder_id")
    )
    winners = (
        bids.filter(pl.col("is_winner"))
        .join(data.tenders.select("tender_id", "buyer_id"), on="tender_id")
        .join(favours, on="buyer_id")
    )
    # Every tender of the favour goes to the firm: about half of the buyer's tenders over
    # the six years, more than any other firm takes.
    favoured = winners.filter(pl.col("scheme") == "favoured_bidder")
    assert favoured.height > 5
    assert (favoured.get_column("bidder_id") == favoured.get_column("favoured")).all()
    share = (winners.get_column("bidder_id") == winners.get_column("favoured")).mean()
    assert share > 0.4  # type: ignore[operator]
    tally = winners.group_by("buyer_id", "bidder_id").len().sort("len", descending=True)
    top = tally.group_by("buyer_id", maintain_order=True).agg(pl.col("len").head(2))
    for first, second in top.get_column("len").to_list():
        assert first > second
    # How: short periods, the firm uploading last, the lowest rival or every rival thrown out.
    steered = _per_tender_timing(scheme_bids(bids, "favoured_bidder"), data.tenders).mean()
    clean = _per_tender_timing(bids.filter(pl.col("collusive") == 0), data.tenders).mean()
    for signal, ratio in (("short", 3), ("winner_last", 2), ("lowest_out", 2), ("single_valid", 5)):
        assert steered[signal][0] > ratio * clean[signal][0], signal
        assert steered[signal][0] < 1, signal  # not every time
    assert 0 < clean["single_valid"][0] < 0.01


@pytest.fixture(scope="module")
def larger() -> synth.SynthData:
    """A market with several fabricated_bids groups: digit tests need a few hundred amounts."""
    return synth.generate(6000, seed=11)


def test_fabricated_amounts_have_deviant_second_digits(larger: synth.SynthData) -> None:
    amount = pl.col("amount").cast(pl.Int64).cast(pl.String)
    priced = (
        larger.bids.filter(pl.col("amount").is_not_null())
        .join(larger.truth_tenders, on="tender_id")
        .join(
            larger.truth_firms.select("bidder_id", "role", pl.col("group").alias("firm_group")),
            on="bidder_id",
        )
        .with_columns(
            amount.str.slice(0, 1).cast(pl.Int64).alias("first"),
            amount.str.slice(1, 1).cast(pl.Int64).alias("second"),
        )
    )
    # Invented amounts are whole yuan: every bid of a shell, every bid of a sham tender.
    invented = priced.filter(
        (pl.col("role") == "fabricator") | (pl.col("scheme") == "fabricated_bids")
    ).with_columns(
        pl.when(pl.col("role") == "fabricator")
        .then("firm_group")
        .otherwise("group")
        .alias("fabricator")
    )
    assert (invented.get_column("amount") % 1 == 0).all()
    sham = priced.filter(pl.col("scheme") == "fabricated_bids")
    assert (sham.filter(~pl.col("is_winner")).get_column("role") == "fabricator").all()

    # Second digits given the first, as honest bids write them.
    honest = priced.filter((pl.col("role") == "honest") & (pl.col("scheme") == ""))
    reference = np.zeros((10, 10))
    np.add.at(reference, (honest["first"].to_numpy(), honest["second"].to_numpy()), 1)
    reference /= np.maximum(reference.sum(axis=1, keepdims=True), 1)

    def chi_square(frame: pl.DataFrame) -> float:
        expected = reference[frame["first"].to_numpy()].sum(axis=0)
        observed = np.bincount(frame["second"].to_numpy(), minlength=10)
        return float(((observed - expected) ** 2 / np.maximum(expected, 1e-9)).sum())

    # Each fabricator's amounts stray from them beyond chance (chi-square, 9 degrees of
    # freedom, 99.9%: 27.9); so do most shells' (95%: 16.9), far more often than honest
    # firms' with as many bids.
    groups = [chi_square(g) for _, g in invented.group_by("fabricator")]
    assert len(groups) >= 3
    assert min(groups) > 27.9
    shells = [
        chi_square(g)
        for _, g in priced.filter(pl.col("role") == "fabricator").group_by("bidder_id")
    ]
    firms = [chi_square(g) for _, g in honest.group_by("bidder_id") if g.height >= 30]
    assert np.mean(np.array(shells) > 16.9) > 0.5
    assert np.mean(np.array(firms) > 16.9) < 0.1

    # The buyer of the sham tenders is in the truth, with the winner it chose.
    buyers = larger.truth_buyers.filter(pl.col("scheme") == "fabricated_bids")
    winners = (
        sham.filter(pl.col("is_winner"))
        .join(larger.tenders.select("tender_id", "buyer_id"), on="tender_id")
        .join(buyers, on="buyer_id")
    )
    assert winners.height == sham.get_column("tender_id").n_unique()
    assert (winners.get_column("bidder_id") == winners.get_column("bidder_id_right")).all()


def test_buy_ins_win_far_below_the_estimate(bids: pl.DataFrame) -> None:
    ratio = (pl.col("amount") / pl.col("estimate")).alias("ratio")
    buy_in = scheme_bids(bids, "buy_in").filter(pl.col("in_ring")).with_columns(ratio)
    clean = bids.filter((pl.col("collusive") == 0) & pl.col("is_winner")).with_columns(ratio)
    assert buy_in.height > 5
    assert (buy_in.get_column("award_method") != "average_bid").all()
    # A buy-in mostly wins; one that is not deep enough, or meets a better offer, loses.
    assert buy_in.get_column("is_winner").mean() > 0.6  # type: ignore[operator]
    low = clean.get_column("ratio").quantile(0.1)
    assert buy_in.get_column("ratio").median() < low  # type: ignore[operator]
    # ... overlapping the cheapest honest winners, not a separate cluster.
    assert buy_in.get_column("ratio").max() > clean.get_column("ratio").quantile(0.02)  # type: ignore[operator]


def test_buyer_truth_names_the_firm_each_buyer_deals_with(data: synth.SynthData) -> None:
    buyers = data.truth_buyers
    assert buyers.get_column("buyer_id").is_unique().all()
    assert set(buyers.get_column("buyer_id")) == set(data.tenders.get_column("buyer_id"))
    held = buyers.filter(pl.col("scheme") != "")
    assert set(held.get_column("scheme")) == {
        "market_allocation",
        "favoured_bidder",
        "fabricated_bids",
        "buy_in",
    }
    firms = held.join(data.truth_firms.rename({"group": "firm_group"}), on="bidder_id", how="left")
    assert (firms.get_column("firm_group") == firms.get_column("group")).all()
    clean = buyers.filter(pl.col("scheme") == "")
    assert (clean.get_column("group") == "").all()
    assert (clean.get_column("bidder_id") == "").all()
    # A buyer's held tenders are its own.
    tenders = data.tenders.join(data.truth_tenders, on="tender_id").join(
        held.select("buyer_id", pl.col("group").alias("buyer_group")), on="buyer_id", how="left"
    )
    by_buyer = tenders.filter(
        pl.col("scheme").is_in(
            ["market_allocation", "favoured_bidder", "fabricated_bids", "buy_in"]
        )
    )
    assert (by_buyer.get_column("group") == by_buyer.get_column("buyer_group")).all()


def test_every_scheme_recurs_in_the_conformance_market() -> None:
    truth = synth.generate(1500, seed=5).truth_tenders
    counts = dict(truth.group_by("scheme").len().iter_rows())
    assert all(counts.get(scheme, 0) >= 8 for scheme in synth.ALL_SCHEMES), counts
    assert 0.12 < truth.get_column("collusive").mean() < 0.18  # type: ignore[operator]


# ------------------------------------------------------------------------- after the award

# sha256 of the CSV of each table of the award and its row count, recorded from the
# generator before it drew what follows the award: drawing that (from a random generator of
# its own) must leave them as they were. Firms without founded_on and registered_capital,
# which the shell contractors change.
FROZEN: dict[tuple[int, int], dict[str, tuple[int, str]]] = {
    (600, 7): {
        "tenders": (600, "20d2f78a61c36891021dff3632b22c7b197bd2dc3017f366376a2a4376f86521"),
        "bids": (3722, "626707db280bb25ce165acb0d4a3f9312a1195dbc763eb5437d6b3b23812c3cb"),
        "firms": (160, "f6b073ee046e45e80d5a3f4b6f544e602740b1d8b5931f511183862af6d249a2"),
    },
    (TENDERS, 3): {
        "tenders": (1500, "0920ce867b532d54791824d39e2312ea70fcc902663d3e4dc558c2ccc593680d"),
        "bids": (9233, "75c884a82c7de3167bf5f9f0428535f252d8b2a2ce5c73d416dacdd2eb8895da"),
        "firms": (300, "f9f8af593a30728df88426b9bb8827d792b3bb7b7c9adf70172617c6373b224f"),
    },
}
RECOVER_REASONS = {"工程量增加", "设计变更"}
EARLY_ITEMS = ("010101002001", "011707001001")  # 挖一般土方, 措施项目
LATE_ITEMS = ("040201001001", "011702001001", "010403001001")  # 路基处理, 模板, 浆砌片石


def digest(frame: pl.DataFrame) -> str:
    text = frame.write_csv(datetime_format="%Y-%m-%d %H:%M:%S")
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(("n", "seed"), list(FROZEN))
def test_tables_of_the_award_are_unchanged_by_what_follows(
    data: synth.SynthData, n: int, seed: int
) -> None:
    made = data if (n, seed) == (TENDERS, 3) else synth.generate(n, seed=seed)
    for name, (rows, expected) in FROZEN[(n, seed)].items():
        frame: pl.DataFrame = getattr(made, name)
        if name == "firms":
            frame = frame.drop("founded_on", "registered_capital")
        assert frame.height == rows, name
        assert digest(frame) == expected, name
    truth = made.truth_tenders.select("tender_id", "collusive", "scheme", "group")
    assert truth.equals(synth.generate(n, seed=seed).truth_tenders.select(truth.columns))


@pytest.fixture(scope="module")
def contracts(data: synth.SynthData) -> pl.DataFrame:
    """Contracts with their tender's truth and category, duration and growth."""
    return (
        data.contracts.join(data.truth_tenders, on="tender_id")
        .join(data.tenders.select("tender_id", "category", "awarded_at"), on="tender_id")
        .with_columns(
            (pl.col("final_amount") / pl.col("contract_amount") - 1).alias("growth"),
            (pl.col("planned_completion") - pl.col("signed_at")).dt.total_days().alias("planned"),
            (pl.col("actual_completion") - pl.col("signed_at")).dt.total_days().alias("actual"),
        )
    )


def honest_only(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(pl.col("materials_scheme") == "")


def planted(frame: pl.DataFrame, scheme: str) -> pl.DataFrame:
    return frame.filter(pl.col("materials_scheme") == scheme)


def test_one_contract_per_tender_for_the_winning_bid(
    data: synth.SynthData, contracts: pl.DataFrame
) -> None:
    winners = data.bids.filter(pl.col("is_winner")).select(
        "tender_id",
        pl.col("bidder_id").alias("contractor_id"),
        pl.col("bidder_name").alias("contractor_name"),
        pl.col("amount").alias("contract_amount"),
    )
    assert contracts.height == data.tenders.height
    assert contracts.get_column("tender_id").is_unique().all()
    assert contracts.select(winners.columns).sort("tender_id").equals(winners.sort("tender_id"))
    signing = (pl.col("signed_at") - pl.col("awarded_at").dt.date()).dt.total_days()
    assert contracts.select(signing.min().alias("a"), signing.max().alias("b")).row(0) == (3, 30)
    assert contracts.get_column("planned").is_between(30, 900).all()
    # Open contracts have neither a completion nor a settlement; most are done.
    done = contracts.get_column("final_amount").is_not_null()
    assert done.eq(contracts.get_column("actual_completion").is_not_null()).all()
    assert 0.8 < done.mean() < 1.0  # type: ignore[operator]
    # Bigger works take longer.
    durations = contracts.select(
        pl.corr(pl.col("contract_amount").log(), pl.col("planned").log(), method="spearman")
    ).item()
    assert durations > 0.5


def test_change_orders_add_up_to_the_settled_amount(
    data: synth.SynthData, contracts: pl.DataFrame
) -> None:
    orders = data.change_orders.join(
        contracts.select(
            "tender_id", "signed_at", "actual_completion", "final_amount", "materials_scheme"
        ),
        on="tender_id",
    )
    assert orders.height == data.change_orders.height  # every order amends a contract
    sums = data.change_orders.group_by("tender_id").agg(pl.col("amount").sum().alias("added"))
    done = contracts.filter(pl.col("final_amount").is_not_null()).join(
        sums, on="tender_id", how="left"
    )
    gap = done.get_column("final_amount") - done.get_column("contract_amount")
    assert (gap - done.get_column("added").fill_null(0.0)).abs().max() < 0.011  # type: ignore[operator]
    # Approved during the works; the open contracts' before the end of the data.
    closed = orders.filter(pl.col("actual_completion").is_not_null())
    assert (closed.get_column("approved_at") > closed.get_column("signed_at")).all()
    assert (closed.get_column("approved_at") < closed.get_column("actual_completion")).all()
    assert orders.get_column("approved_at").max() <= data.contracts.get_column("signed_at").max()  # type: ignore[operator]


def test_honest_contracts_grow_a_little(contracts: pl.DataFrame) -> None:
    growth = honest_only(contracts).get_column("growth").drop_nulls()
    assert growth.abs().median() < 0.03  # type: ignore[operator]
    assert 0.5 < (growth.abs() <= 0.05).mean() < 0.95  # type: ignore[operator]
    assert (growth < 0).any()  # some settle under the contract amount
    assert growth.is_between(-0.06, 0.201).all()
    assert (growth > 0.1).any()


def test_recovering_contracts_settle_far_over_through_early_change_orders(
    data: synth.SynthData, contracts: pl.DataFrame
) -> None:
    recover = planted(contracts, "low_bid_recover")
    growth = recover.get_column("growth").drop_nulls()
    assert growth.len() >= 10
    assert growth.is_between(0.25, 0.6).all()
    orders = data.change_orders.join(
        recover.select("tender_id", "signed_at", "actual", "planned"), on="tender_id"
    )
    per_contract = orders.group_by("tender_id").agg(
        pl.len().alias("orders"),
        (
            (pl.col("approved_at").min() - pl.col("signed_at").first()).dt.total_days()
            / pl.coalesce("actual", "planned").first()
        ).alias("first"),
        pl.col("reason").unique().alias("reasons"),
    )
    done = per_contract.join(
        recover.filter(pl.col("final_amount").is_not_null()).select("tender_id"), on="tender_id"
    )
    assert done.get_column("orders").is_between(3, 8).all()
    assert (per_contract.get_column("first") <= 0.2).all()
    reasons = set(per_contract.get_column("reasons").explode().to_list())
    assert reasons <= RECOVER_REASONS
    honest = data.change_orders.join(honest_only(contracts).select("tender_id"), on="tender_id")
    assert len(set(honest.get_column("reason").to_list())) >= 6


def test_substituting_contractors_finish_fast(contracts: pl.DataFrame) -> None:
    fast = planted(contracts, "substitution").drop_nulls("actual")
    assert fast.height >= 10
    speed = fast.get_column("actual") / fast.get_column("planned")
    assert speed.is_between(0.39, 0.66).all()
    honest = honest_only(contracts).drop_nulls("actual")
    assert (honest.get_column("actual") / honest.get_column("planned")).median() > 1.0  # type: ignore[operator]


@pytest.fixture(scope="module")
def inspections(data: synth.SynthData) -> pl.DataFrame:
    return (
        data.inspections.join(data.truth_tenders, on="tender_id")
        .join(data.contracts.select("tender_id", "signed_at", "actual_completion"), on="tender_id")
        .with_columns((pl.col("measured") / pl.col("required")).alias("ratio"))
    )


def test_inspections_are_consistent_and_near_completion(
    data: synth.SynthData, inspections: pl.DataFrame
) -> None:
    done = data.contracts.filter(pl.col("actual_completion").is_not_null())
    assert set(inspections.get_column("tender_id")) == set(done.get_column("tender_id"))
    per_contract = inspections.group_by("tender_id").len().get_column("len")
    assert per_contract.is_between(2, 5).all()
    meets = (
        pl.when(pl.col("limit") == "min")
        .then(pl.col("measured") >= pl.col("required"))
        .otherwise(pl.col("measured") <= pl.col("required"))
    )
    assert inspections.select((meets == (pl.col("result") == "pass")).all()).item()
    assert set(inspections.get_column("limit")) == {"min", "max"}
    before = (pl.col("actual_completion") - pl.col("inspected_at")).dt.total_days()
    assert inspections.select(before.min().alias("a"), before.max().alias("b")).row(0) == (0, 20)
    assert (inspections.get_column("measured") > 0).all()
    # The same contractor as the contract.
    contractor = data.contracts.select(
        "tender_id", pl.col("contractor_id").alias("c_id"), pl.col("contractor_name").alias("c")
    )
    joined = data.inspections.join(contractor, on="tender_id")
    assert (joined.get_column("contractor_id") == joined.get_column("c_id")).all()
    assert (joined.get_column("contractor_name") == joined.get_column("c")).all()
    first = inspections.group_by("tender_id").agg(pl.col("item").first())
    assert set(first.get_column("item")) <= {"路面厚度", "混凝土强度"}


def test_planted_inspections_fall_short_and_honest_ones_pass(inspections: pl.DataFrame) -> None:
    def fails(frame: pl.DataFrame) -> float:
        return float((frame.get_column("result") == "fail").mean())  # type: ignore[arg-type]

    honest = honest_only(inspections)
    assert 0.01 < fails(honest) < 0.06
    short = honest.filter((pl.col("limit") == "min") & (pl.col("result") == "fail"))
    assert short.get_column("ratio").min() >= 0.95  # type: ignore[operator]
    recover = planted(inspections, "low_bid_recover")
    assert fails(recover) > 0.3
    worst = recover.filter((pl.col("limit") == "min") & (pl.col("result") == "fail"))
    assert worst.get_column("ratio").is_between(0.87, 0.975).all()
    # A substitution's first inspection (pavement thickness or concrete strength) is clearly
    # short; honest ones of those items never are.
    first = planted(inspections, "substitution").group_by("tender_id").agg(pl.all().first())
    assert first.height >= 10
    assert set(first.get_column("item")) <= {"路面厚度", "混凝土强度"}
    assert (first.get_column("result") == "fail").all()
    assert first.get_column("ratio").is_between(0.74, 0.93).all()
    assert (short.get_column("ratio") > 0.93).all()


def test_shell_contractors_are_young_and_thinly_capitalised(
    data: synth.SynthData, contracts: pl.DataFrame
) -> None:
    roles = data.truth_firms.select(pl.col("bidder_id").alias("firm_id"), "materials_role")
    firms = data.firms.join(roles, on="firm_id")
    shells = firms.filter(pl.col("materials_role") == "shell_contractor")
    assert shells.height >= 1
    assert shells.get_column("registered_capital").is_between(5e5, 2e6).all()
    assert shells.get_column("credit_code").str.slice(8, 2).eq("MA").all()
    held = (
        data.contracts.join(shells, left_on="contractor_id", right_on="firm_id")
        .join(data.tenders.select("tender_id", "awarded_at"), on="tender_id")
        .group_by("contractor_id")
        .agg(
            pl.col("contract_amount").max().alias("largest"),
            pl.col("registered_capital").first(),
            pl.col("founded_on").first(),
            pl.col("awarded_at").min().dt.date().alias("first_win"),
            pl.col("tender_id"),
        )
    )
    assert (held.get_column("largest") >= 20 * held.get_column("registered_capital")).all()
    age = (held.get_column("first_win") - held.get_column("founded_on")).dt.total_days()
    assert age.is_between(30, 150).all()
    first_bid = data.bids.group_by("bidder_id").agg(pl.col("submitted_at").min().dt.date())
    bid = held.join(first_bid, left_on="contractor_id", right_on="bidder_id")
    assert (bid.get_column("submitted_at") > bid.get_column("founded_on")).all()
    # Their tenders are theirs; honest contractors hold work of a fraction of their capital.
    truth = planted(contracts, "shell_contractor").get_column("tender_id")
    assert set(truth) == set(held.get_column("tender_id").explode())
    honest = honest_only(contracts).join(
        data.firms.select(pl.col("firm_id").alias("contractor_id"), "registered_capital"),
        on="contractor_id",
    )
    ratio = honest.get_column("contract_amount") / honest.get_column("registered_capital")
    assert ratio.median() < 1.0  # type: ignore[operator]


def test_materials_truth(data: synth.SynthData, contracts: pl.DataFrame) -> None:
    truth = data.truth_tenders
    materials = truth.get_column("materials")
    assert set(materials.unique()) == {0, 1}
    assert (materials.eq(1) == truth.get_column("materials_scheme").ne("")).all()
    assert 0.02 < materials.mean() < 0.07  # type: ignore[operator]
    assert set(truth.get_column("materials_scheme")) == {"", *synth.MATERIALS_SCHEMES}
    roles = data.truth_firms
    assert set(roles.get_column("materials_role")) == {"", *synth.MATERIALS_SCHEMES}
    # Each planted tender is held by a firm of its scheme's role.
    held = contracts.join(
        roles.select(pl.col("bidder_id").alias("contractor_id"), "role", "materials_role"),
        on="contractor_id",
    )
    flagged = held.filter(pl.col("materials") == 1)
    assert (flagged.get_column("materials_scheme") == flagged.get_column("materials_role")).all()
    # Every buy_in tender its buy-in firm holds is recovered; planted firms are otherwise
    # honest bidders, who hold all their contracts that way.
    buy_in = held.filter((pl.col("scheme") == "buy_in") & (pl.col("role") == "buy_in"))
    assert buy_in.height >= 5
    assert (buy_in.get_column("materials_scheme") == "low_bid_recover").all()
    others = held.filter((pl.col("materials_role") != "") & (pl.col("role") != "buy_in"))
    assert (others.get_column("materials_scheme") == others.get_column("materials_role")).all()
    assert set(roles.filter(pl.col("materials_role") != "").get_column("role")) <= {
        "honest",
        "buy_in",
    }


def test_reference_prices_cover_every_region_and_month(data: synth.SynthData) -> None:
    refs = data.reference_prices
    months = data.tenders.get_column("bid_deadline").dt.strftime("%Y-%m")
    regions = set(data.tenders.get_column("region"))
    assert set(refs.get_column("region")) == regions
    assert set(months) <= set(refs.get_column("period"))
    assert refs.height == len(regions) * refs.get_column("period").n_unique() * 5
    assert refs.select("material", "region", "period").is_unique().all()
    level = refs.group_by("material").agg(pl.col("unit_price").median()).sort("material")
    expected = {"C30商品混凝土": 520, "HRB400钢筋": 4200, "普通硅酸盐水泥P.O42.5": 450, "碎石": 110}
    for material, price in level.iter_rows():
        if material in expected:
            assert 0.7 < price / expected[material] < 1.4, material


@pytest.fixture(scope="module")
def priced(larger: synth.SynthData) -> pl.DataFrame:
    """The larger market's bills as loaded: prices per base unit beside the reference of the
    tender's region and month, and the median price of the item among the tender's bids."""
    loaded = bidwatch.load(**larger.tables())
    assert loaded.rejected.height == 0, loaded.rejected.head(5)
    months = larger.tenders.select(
        "tender_id", "region", pl.col("bid_deadline").dt.strftime("%Y-%m").alias("period")
    )
    refs = loaded.reference_prices.select(
        "material",
        "region",
        "period",
        (pl.col("unit_price") / factor(pl.col("unit"))).alias("reference"),
    )
    return (
        loaded.items.with_columns((pl.col("unit_price") / factor(pl.col("unit"))).alias("price"))
        .join(months, on="tender_id")
        .join(refs, on=["material", "region", "period"], how="left")
        .join(
            larger.bids.select("tender_id", "bidder_id", "is_winner"), on=["tender_id", "bidder_id"]
        )
        .join(larger.truth_tenders, on="tender_id")
        .with_columns(
            (pl.col("price") / pl.col("reference")).alias("to_reference"),
            (pl.col("price") / pl.col("price").median().over("tender_id", "item_code")).alias(
                "to_peers"
            ),
            pl.when(pl.col("is_winner"))
            .then(pl.col("materials_scheme"))
            .otherwise(pl.lit(""))
            .alias("bill_scheme"),
        )
    )


def test_bills_add_up_to_the_bid_with_the_buyers_quantities(data: synth.SynthData) -> None:
    items = data.items
    assert items.height > 0
    in_base = items.with_columns(
        (pl.col("quantity") * factor(parse_units(pl.col("unit")))).round(6).alias("q")
    )
    assert in_base.select(pl.col("q").n_unique().over("tender_id", "item_code").max()).item() == 1
    totals = items.group_by("tender_id", "bidder_id", "bidder_name").agg(
        (pl.col("quantity") * pl.col("unit_price")).sum().alias("total"), pl.len().alias("n")
    )
    bids = data.bids.join(items.select("tender_id").unique(), on="tender_id").filter(
        pl.col("amount").is_not_null()
    )
    joined = bids.join(totals, on=["tender_id", "bidder_id", "bidder_name"], how="left")
    assert joined.get_column("total").null_count() == 0  # every priced bid has its bill
    assert (joined.get_column("total") - joined.get_column("amount")).abs().max() < 0.006  # type: ignore[operator]
    assert totals.height == joined.height  # and withdrawn bids have none
    assert totals.get_column("n").is_between(6, 9).all()
    assert (items.get_column("unit_price") > 0).all()
    assert (items.get_column("quantity") > 0).all()
    share = items.get_column("tender_id").n_unique() / data.tenders.height
    assert abs(share - synth.BOQ_SHARE) < 0.04
    materials = set(items.get_column("material").drop_nulls())
    assert materials == set(data.reference_prices.get_column("material"))


def parse_units(unit: pl.Expr) -> pl.Expr:
    """Raw unit spellings as symbols, the way the loader reads them."""
    from bidwatch.units import parse_unit

    spellings = ("t", "吨", "元/吨", "元/t", "m³", "立方米", "m3", "m2", "㎡", "平方米", "项")
    spellings += ("kg", "千克", "元/kg")
    return unit.replace_strict(
        list(spellings), [parse_unit(s)[0] for s in spellings], return_dtype=pl.String
    )


def test_bill_units_vary_and_load_into_the_same_symbols(
    data: synth.SynthData, priced: pl.DataFrame
) -> None:
    spelled = data.items.group_by("item_code").agg(pl.col("unit").unique())
    kinds = {code: set(units) for code, units in spelled.iter_rows()}
    assert kinds["010515001001"] - {"kg", "千克", "元/kg"} == {"t", "吨", "元/吨", "元/t"}
    assert kinds["040202009001"] == {"m³", "立方米", "m3"}
    assert kinds["011702001001"] == {"m2", "㎡", "平方米"}
    assert kinds["011707001001"] == {"项"}
    assert {"kg", "千克", "元/kg"} & set(data.items.get_column("unit"))
    # Loaded, every mass item is t or kg, and a price per kg compares with the reference
    # as a price per t does.
    assert set(priced.get_column("unit")) == {"t", "kg", "m3", "m2", "unit"}
    honest = priced.filter(pl.col("reference").is_not_null() & (pl.col("bill_scheme") == ""))
    by_unit = honest.group_by("unit").agg(pl.col("to_reference").median())
    for unit, ratio in by_unit.iter_rows():
        assert 0.95 < ratio < 1.1, unit
    assert priced.filter(pl.col("material").is_not_null()).get_column("reference").null_count() == 0


def test_recovering_bills_price_materials_low_and_front_load(priced: pl.DataFrame) -> None:
    def bills(scheme: str) -> pl.DataFrame:
        return priced.filter(pl.col("bill_scheme") == scheme)

    honest, recover = bills(""), bills("low_bid_recover")
    assert recover.select(pl.col("tender_id").n_unique()).item() >= 5
    lowest = (
        recover.filter(pl.col("reference").is_not_null())
        .group_by("tender_id")
        .agg(pl.col("to_reference").min())
        .get_column("to_reference")
    )
    assert lowest.is_between(0.549, 0.801).all()
    cheap = honest.filter(pl.col("reference").is_not_null()).get_column("to_reference")
    assert (cheap < 0.8).mean() < 0.001  # type: ignore[operator]
    assert 1.0 < cheap.median() < 1.08  # type: ignore[operator]

    def median(frame: pl.DataFrame, codes: tuple[str, ...]) -> float:
        return float(frame.filter(pl.col("item_code").is_in(codes)).get_column("to_peers").median())  # type: ignore[arg-type]

    assert median(recover, EARLY_ITEMS) > 1.3
    assert median(recover, LATE_ITEMS) < 0.7
    assert 0.85 < median(honest, EARLY_ITEMS) < 1.15
    substitution = bills("substitution").filter(pl.col("reference").is_not_null())
    assert substitution.get_column("to_reference").is_between(0.879, 1.001).all()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tables_after_the_award_round_trip(tmp_path: Path, data: synth.SynthData, fmt: str) -> None:
    data.write(tmp_path, fmt=fmt)
    from_files = bidwatch.load(**{name: tmp_path / f"{name}.{fmt}" for name in data.tables()})
    from_frames = bidwatch.load(**data.tables())
    for name in AFTER_AWARD:
        read: pl.DataFrame = getattr(from_files, name).drop("_src", "_row")
        given: pl.DataFrame = getattr(from_frames, name).drop("_src", "_row")
        assert read.equals(given), name
        if fmt == "parquet":
            assert pl.read_parquet(tmp_path / f"{name}.parquet").equals(getattr(data, name))
    contracts = pl.read_csv(tmp_path / f"contracts.{fmt}") if fmt == "csv" else None
    if contracts is not None:
        assert contracts.get_column("signed_at").str.len_chars().max() == 10  # plain dates
