"""Synthetic market: determinism, canonical tables, market rules, planted schemes, truth."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import bidwatch
from bidwatch import cli, synth
from bidwatch.schema import AWARD_METHODS, BID_STATUSES, PROCEDURES, TABLES

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
    for name in ("tenders", "bids", "firms", "truth_tenders", "truth_firms", "truth_buyers"):
        assert getattr(a, name).equals(getattr(b, name)), name
    assert not a.bids.equals(c.bids)
    assert not a.firms.equals(c.firms)


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
        "firms.parquet",
        "tenders.parquet",
        "truth/buyers.csv",
        "truth/firms.csv",
        "truth/tenders.csv",
    ]
    truth = pl.read_csv(tmp_path / "truth" / "tenders.csv", infer_schema=False)
    assert truth.columns == ["tender_id", "collusive", "scheme", "group"]
    assert truth.height == TENDERS
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


# --------------------------------------------------------------------------- canonical form


KIND_DTYPES = {
    "id": {pl.String},
    "text": {pl.String},
    "enum": {pl.String},
    "amount": {pl.Float64},
    "number": {pl.Float64},
    "bool": {pl.Boolean},
    "date": {pl.Date, pl.Datetime("us")},
}


@pytest.mark.parametrize("table", ["tenders", "bids", "firms"])
def test_columns_are_canonical(data: synth.SynthData, table: str) -> None:
    frame: pl.DataFrame = getattr(data, table)
    spec = TABLES[table]
    assert set(frame.columns) <= set(spec.names), set(frame.columns) - set(spec.names)
    assert set(spec.required) <= set(frame.columns)
    for name, dtype in frame.schema.items():
        assert dtype in KIND_DTYPES[spec.column(name).kind], (name, dtype)


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
    loaded = bidwatch.load(
        bids=tmp_path / f"bids.{fmt}",
        tenders=tmp_path / f"tenders.{fmt}",
        firms=tmp_path / f"firms.{fmt}",
    )
    assert loaded.rejected.height == 0, loaded.rejected.head(5)
    reads = {s.table: (s.rows_read, s.rows_used, s.rows_rejected) for s in loaded.sources}
    assert reads == {
        "tenders": (data.tenders.height, data.tenders.height, 0),
        "bids": (data.bids.height, data.bids.height, 0),
        "firms": (data.firms.height, data.firms.height, 0),
    }
    assert (
        loaded.bids.get_column("amount").null_count()
        == (data.bids.get_column("status") == "withdrawn").sum()
    )


def test_cli_synth_writes_a_folder_scan_reads(tmp_path: Path) -> None:
    assert cli.main(["synth", "--tenders", "60", "--seed", "2", "--out", str(tmp_path)]) == 0
    found = cli.find_inputs(tmp_path)
    assert {k for k in found if k in ("bids", "tenders", "firms")} == {"bids", "tenders", "firms"}
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
