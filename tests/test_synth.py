"""Synthetic market: determinism, canonical tables, market rules, planted schemes, truth."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

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
    for name in ("tenders", "bids", "firms", "truth_tenders", "truth_firms"):
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
        "truth/firms.csv",
        "truth/tenders.csv",
    ]
    truth = pl.read_csv(tmp_path / "truth" / "tenders.csv", infer_schema=False)
    assert truth.columns == ["tender_id", "collusive", "scheme", "group"]
    assert truth.height == TENDERS


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
    assert 0.09 < share < 0.15  # type: ignore[operator]
    rigged = truth.filter(pl.col("collusive") == 1)
    assert set(rigged.get_column("scheme").unique()) == set(synth.SCHEMES)
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
    ring_sizes = members.group_by("group").len().get_column("len")
    assert ring_sizes.min() >= 3
    assert ring_sizes.max() <= 6  # type: ignore[operator]
    assert set(members.get_column("group").unique()) == set(
        data.truth_tenders.filter(pl.col("group") != "").get_column("group").unique()
    )
    # Every rigged tender has ring members bidding, two or more of them.
    per = bids.filter(pl.col("collusive") == 1).group_by("tender_id").agg(pl.col("in_ring").sum())
    assert per.get_column("in_ring").min() >= 2  # type: ignore[operator]
    roles = set(firms.get_column("role").unique())
    assert roles == {"honest", "ring_member", "designated_winner", "cover", "preparer_shared"}


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
