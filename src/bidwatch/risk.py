"""Findings -> 0-100 risk per tender and firm, every point traceable to its source.

A contribution is weight x score. A subject's risk is 100 x (1 - exp(-sum / scale)): one
strong finding of weight 1 gives about 60, two about 85, so that agreeing signals add up
but no pile of weak ones reaches 100. Each contribution gets its share of the risk in
proportion to its weight x score: the points of a waterfall that sum to the risk.

Firms are scored from findings about them (firm, pair, group) and from the tenders they bid
in: per detector, a firm whose bids rank above chance among all bids of the tenders the
detector assessed gets a contribution scored by how unlikely that is (see ``_inherited``).
Bidding often is therefore not suspicious in itself; being in suspicious tenders often is.

Every contribution belongs to the family of its detector: collusion or materials (what is
delivered after a cheap win). ``collusion_risk`` and ``materials_risk`` apply the same
mapping to each family's contributions alone, so that neither is mixed into the other;
``risk`` maps them together, and the points of its waterfall sum to it. A tender also
inherits the materials history of the firm that holds it (see ``history_contributions``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats

from bidwatch.entities import firm_table
from bidwatch.findings import ID_SEPARATOR
from bidwatch.schema import buyer

if TYPE_CHECKING:
    from bidwatch.config import Config, RiskConfig
    from bidwatch.dataset import Dataset

CONTRIBUTION_SCHEMA = {
    "subject_kind": pl.String,
    "subject_id": pl.String,
    "detector": pl.String,
    "via": pl.String,
    "weight": pl.Float64,
    "score": pl.Float64,
    "points": pl.Float64,
    "reason": pl.String,
}
FAMILIES = ("collusion", "materials")


@dataclass(frozen=True)
class Risk:
    tenders: pl.DataFrame
    firms: pl.DataFrame
    contributions: pl.DataFrame
    groups: pl.DataFrame
    pairs: pl.DataFrame
    buyers: pl.DataFrame


def _weights(findings: pl.DataFrame, weights: dict[str, float]) -> pl.Expr:
    return pl.col("detector").replace_strict(weights, default=0.0, return_dtype=pl.Float64)


def own_contributions(findings: pl.DataFrame, weights: dict[str, float]) -> pl.DataFrame:
    """Each finding counts for its own subject, whatever its kind."""
    return findings.select(
        "subject_kind",
        "subject_id",
        "detector",
        pl.lit("finding").alias("via"),
        _weights(findings, weights).alias("weight"),
        "score",
        pl.lit(0.0).alias("points"),
        pl.col("message").alias("reason"),
    )


def firm_contributions(
    findings: pl.DataFrame,
    data: Dataset,
    weights: dict[str, float],
    assessed: dict[str, pl.Series],
    settings: RiskConfig,
) -> pl.DataFrame:
    """What firms inherit: findings about a pair, group or buyer that name them, and the
    tenders they bid in (see ``_inherited``). A firm's own findings count through
    ``own_contributions``."""
    parts = []
    shared = (
        findings.filter(pl.col("subject_kind").is_in(["pair", "group", "buyer"]))
        .explode("firms")
        .filter(pl.col("firms").is_not_null())
        .select(
            pl.lit("firm").alias("subject_kind"),
            pl.col("firms").alias("subject_id"),
            "detector",
            pl.format(
                "{} {}",
                pl.col("subject_kind"),
                pl.col("subject_id").str.replace_all(ID_SEPARATOR, " & ", literal=True),
            ).alias("via"),
            _weights(findings, weights).alias("weight"),
            "score",
            pl.lit(0.0).alias("points"),
            pl.col("message").alias("reason"),
        )
    )
    parts.append(shared)
    parts.append(_inherited(findings, data, weights, assessed, settings))
    return pl.concat([p.cast(CONTRIBUTION_SCHEMA) for p in parts])  # type: ignore[arg-type]


def _inherited(
    findings: pl.DataFrame,
    data: Dataset,
    weights: dict[str, float],
    assessed: dict[str, pl.Series],
    settings: RiskConfig,
) -> pl.DataFrame:
    """Firm contributions from the tenders the firm bid in, one per detector.

    The unit is a firm's bid in a tender the detector assessed; its score is the finding's
    score when the finding names the firm, else 0. p is the one-sided chance that a firm's
    n units rank as high as they do if they were like any others, and the contribution's
    score is (1 - p)^sharpness, as a tender's bid-pattern score is its percentile^4 (with
    4: 0.06 at p = 0.5, 0.81 at p = 0.05, 0.96 at p = 0.01):

    - a detector that flags few of its tenders: exact binomial mid-p of k flagged units out
      of n at the detector's flag rate;
    - a graded detector (findings on most tenders, such as bid-pattern): with u the units'
      mid-rank percentiles, which are near uniform, z = (sum u - n/2) / sqrt(n var(u)).
    """
    from bidwatch.detectors._pairs import coded_incidence

    empty = pl.DataFrame(schema=CONTRIBUTION_SCHEMA)
    detectors = [d for d, ids in assessed.items() if weights.get(d, 0.0) > 0 and ids.len()]
    if "firm_id" not in data.bids.columns or not detectors:
        return empty
    # There are millions of units (bids x detectors) but few of them are named by a finding:
    # the rest score 0 and share one rank. So units are never listed one by one: n per
    # (detector, firm) counts the firms' codes in the detector's tenders, and ranks come
    # from each detector's distribution of scores. Tenders and firms are the integer codes
    # of the dataset's incidence (distinct tender and firm, both in sorted order).
    detectors = sorted(detectors)
    incidence = coded_incidence(data)
    tender_ids = incidence.tenders.get_column("tender_id")
    n_firms = incidence.firms.len()
    unit_tender = incidence.frame.get_column("_t").to_numpy()
    unit_firm = incidence.frame.get_column("_f").to_numpy()
    # Many detectors assess the same tenders (all of them, or all with two bids): each
    # distinct list is coded once, as comparing two lists costs less than coding one.
    seen: list[pl.Series] = []
    judged: list[npt.NDArray[np.bool_]] = []
    per_firm: list[npt.NDArray[np.int64]] = []
    units: list[int] = []
    which = np.empty(len(detectors), dtype=np.int64)
    for i, d in enumerate(detectors):
        ids = assessed[d]
        j = next((j for j, s in enumerate(seen) if s.len() == ids.len() and s.equals(ids)), None)
        if j is None:
            j = len(seen)
            seen.append(ids)
            mask = tender_ids.is_in(ids.implode()).to_numpy()
            in_judged = mask[unit_tender]
            judged.append(mask)
            per_firm.append(np.bincount(unit_firm[in_judged], minlength=n_firms))
            units.append(int(in_judged.sum()))
        which[i] = j
    # One row per (detector, firm) with n > 0, detectors in order and firms by code: a
    # firm's row is its detector's offset plus its position among that list's firms.
    present = [counts > 0 for counts in per_firm]
    position = [np.cumsum(p) - 1 for p in present]
    sizes = np.array([int(present[j].sum()) for j in which], dtype=np.int64)
    offset = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    row_detector = np.repeat(np.arange(len(detectors), dtype=np.uint32), sizes)
    row_firm = np.concatenate([np.flatnonzero(present[j]) for j in which]).astype(np.uint32)
    row_n = np.concatenate([per_firm[j][present[j]] for j in which]).astype(np.uint32)
    # The named units: a tender finding's firms that bid in it, for tenders the detector
    # assessed, each with its highest score.
    named = (
        findings.filter((pl.col("subject_kind") == "tender") & pl.col("detector").is_in(detectors))
        .select(
            pl.col("detector")
            .replace_strict({d: i for i, d in enumerate(detectors)}, return_dtype=pl.UInt32)
            .alias("d"),
            pl.col("subject_id").alias("tender_id"),
            "score",
            pl.col("firms").alias("firm_id"),
        )
        # Tenders coded before the firms are listed: one join per finding, not per firm.
        .join(incidence.tenders.select("tender_id", "_t"), on="tender_id")
        .drop("tender_id")
        .explode("firm_id")
        .join(incidence.firms.to_frame().with_row_index("_f"), on="firm_id")
        .drop("firm_id")
    )
    t_named = named.get_column("_t").to_numpy()
    f_named = named.get_column("_f").to_numpy()
    d_named = named.get_column("d").to_numpy()
    named_key = t_named.astype(np.uint64) * n_firms + f_named
    keep = np.stack(judged)[which[d_named], t_named]
    keep &= _members(_unit_keys(incidence.frame, n_firms), named_key)
    named = named.filter(pl.Series(keep))
    unit = d_named[keep].astype(np.uint64) * len(tender_ids) * n_firms + named_key[keep]
    ordered = np.sort(unit)
    if bool((ordered[1:] == ordered[:-1]).any()):
        # A firm listed twice in one finding: its unit counts once, at the highest score.
        named = (
            named.with_columns(pl.Series("_k", unit))
            .group_by("_k")
            .agg(pl.col("d", "_f").first(), pl.col("score").max())
        )
    per_detector_units = np.array([units[j] for j in which], dtype=np.uint32)
    units_frame = pl.DataFrame(
        {
            "d": np.flatnonzero(per_detector_units).astype(np.uint32),
            "_units": per_detector_units[per_detector_units > 0],
        }
    )
    # Each detector's scores with their counts, the unnamed units as zeros; the average rank
    # of a score is the count below it plus the middle of its ties.
    scores = (
        pl.concat(
            [
                named.group_by("d", "score").len("count"),
                units_frame.join(named.group_by("d").len("named"), on="d", how="left").select(
                    "d",
                    pl.lit(0.0).alias("score"),
                    (pl.col("_units") - pl.col("named").fill_null(0)).alias("count"),
                ),
            ],
            how="vertical_relaxed",
        )
        .group_by("d", "score")
        .agg(pl.col("count").sum())
        .filter(pl.col("count") > 0)
        .sort("d", "score")
        .join(units_frame, on="d")
        .with_columns(
            (
                pl.col("count").cum_sum().over("d") - pl.col("count") + (pl.col("count") + 1) / 2
            ).alias("_rank")
        )
        .with_columns(((pl.col("_rank") - 0.5) / pl.col("_units")).alias("_u"))
    )
    per_detector = (
        scores.group_by("d")
        .agg(
            pl.col("_units").first(),
            pl.col("count").filter(pl.col("score") > 0).sum().alias("_flagged"),
            pl.col("_rank").filter(pl.col("score") == 0).first().fill_null(0.0).alias("_zero"),
            ((pl.col("count") * pl.col("_u")).sum() / pl.col("_units").first()).alias("_mean"),
        )
        .join(scores.select("d", "count", "_u"), on="d")
        .group_by("d")
        .agg(
            pl.col("_units", "_flagged", "_zero").first(),
            (
                (pl.col("count") * (pl.col("_u") - pl.col("_mean")) ** 2).sum()
                / pl.col("_units").first()
            ).alias("_var"),
        )
    )
    # Per (detector, firm): its named units, those flagged, and the sum of their ranks (half
    # integers, so that their sum is exact in any order).
    ranked = named.join(scores.select("d", "score", "_rank"), on=["d", "score"]).select(
        "d", "_f", (pl.col("score") > 0).alias("_flag"), "_rank"
    )
    d_ranked = ranked.get_column("d").to_numpy()
    row = offset[d_ranked] + np.stack(position)[which[d_ranked], ranked.get_column("_f").to_numpy()]
    n_rows = row_n.size
    table = (
        pl.DataFrame(
            {
                "d": row_detector,
                "f": row_firm,
                "n": row_n,
                "_named": np.bincount(row, minlength=n_rows).astype(np.uint32),
                "k": np.bincount(
                    row, weights=ranked.get_column("_flag").to_numpy(), minlength=n_rows
                ).astype(np.uint32),
                "_named_ranks": np.bincount(
                    row, weights=ranked.get_column("_rank").to_numpy(), minlength=n_rows
                ),
            }
        )
        .join(per_detector, on="d", maintain_order="left")
        .with_columns(
            (pl.col("_named_ranks") + (pl.col("n") - pl.col("_named")) * pl.col("_zero")).alias(
                "_ranks"
            ),
        )
        .filter(pl.col("n") >= settings.firm_min_tenders)
        .with_columns(
            (pl.col("_flagged") * 2 > pl.col("_units")).alias("graded"),
            (pl.col("_flagged") / pl.col("_units")).alias("rate"),
            ((pl.col("_ranks") - 0.5 * pl.col("n")) / pl.col("_units") / pl.col("n")).alias(
                "mean_u"
            ),
        )
        .with_columns(((pl.col("mean_u") - 0.5) * (pl.col("n") / pl.col("_var")).sqrt()).alias("z"))
        .filter(pl.when("graded").then(pl.col("z") > 0).otherwise(pl.col("k") > 0))
    )
    table = table.with_columns(
        incidence.firms.gather(table.get_column("f")).alias("firm_id"),
        pl.col("d")
        .replace_strict(dict(enumerate(detectors)), return_dtype=pl.String)
        .alias("detector"),
    )
    if table.height == 0:
        return empty
    k, n, rate = (table.get_column(c).to_numpy() for c in ("k", "n", "rate"))
    sparse = stats.binom.sf(k - 1, n, rate) - 0.5 * stats.binom.pmf(k, n, rate)
    graded = stats.norm.sf(table.get_column("z").fill_null(0.0).to_numpy())
    chance = np.where(table.get_column("graded").to_numpy(), graded, sparse)
    table = table.with_columns(
        pl.Series("chance", chance),
        pl.Series("score", np.clip(1 - chance, 0.0, 1.0) ** settings.firm_sharpness),
    ).filter(pl.col("chance") < 0.5)
    why = (
        pl.when("graded")
        .then(
            pl.format(
                "its {} tenders rank above chance on {}: mean percentile {} against 0.5",
                "n",
                "detector",
                pl.col("mean_u").round(2),
            )
        )
        .otherwise(
            pl.format(
                "{} of its {} tenders flagged by {}, {} expected at its {}% rate",
                "k",
                "n",
                "detector",
                (pl.col("n") * pl.col("rate")).round_sig_figs(2),
                (pl.col("rate") * 100).round_sig_figs(2),
            )
        )
    )
    return table.select(
        pl.lit("firm").alias("subject_kind"),
        pl.col("firm_id").alias("subject_id"),
        "detector",
        pl.lit("tenders").alias("via"),
        _weights(table, weights).alias("weight"),
        "score",
        pl.lit(0.0).alias("points"),
        pl.format("{} (chance {})", why, pl.col("chance").round_sig_figs(2)).alias("reason"),
    )


def _sums(contributions: pl.DataFrame, families: Mapping[str, str] | None) -> pl.DataFrame:
    """subject_kind, subject_id, _total: each subject's sum of weight x score, and with
    ``families`` one more sum per family (``_collusion``, ``_materials``)."""
    raw = pl.col("weight") * pl.col("score")
    by_family = []
    if families is not None:
        fam = pl.col("detector").replace_strict(
            families, default="collusion", return_dtype=pl.String
        )
        by_family = [raw.filter(fam == name).sum().alias(f"_{name}") for name in FAMILIES]
    # Summed in a fixed order, so that the same findings always give the same last bit; the
    # sort moves only the columns the sums read.
    return (
        contributions.select("subject_kind", "subject_id", "detector", "via", "weight", "score")
        .rechunk()
        .sort("subject_kind", "subject_id", "detector", "via", "score")
        .group_by("subject_kind", "subject_id", maintain_order=True)
        .agg(raw.sum().alias("_total"), *by_family)
    )


def with_points(
    contributions: pl.DataFrame, scale: float, sums: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(contributions with points, risk per subject). ``sums`` is ``_sums(contributions)``
    when the caller has it already."""
    raw = pl.col("weight") * pl.col("score")
    # The sorts run on the columns they need and a row number; the reasons follow once at
    # the end instead of being copied by every step.
    # In one chunk, as the caller may hand its parts unjoined: the sorts and joins then see
    # the rows exactly as before.
    keys = (
        contributions.select("subject_kind", "subject_id", "detector", "via", "weight", "score")
        .rechunk()
        .with_row_index("_row")
    )
    totals = (_sums(contributions, None) if sums is None else sums).select(
        "subject_kind",
        "subject_id",
        "_total",
        (100 * (1 - (-pl.col("_total") / scale).exp())).alias("risk"),
    )
    # Points in cents, apportioned by largest remainder so that they add up exactly to
    # the risk as written (two decimals).
    subject = ["subject_kind", "subject_id"]
    exact = (
        pl.when(pl.col("_total") > 0)
        .then((pl.col("risk") * 100).round() * raw / pl.col("_total"))
        .otherwise(0.0)
    )
    order = (
        keys.join(totals, on=subject)
        .with_columns(exact.alias("_exact"))
        .with_columns(pl.col("_exact").floor().alias("_floor"))
        .with_columns(
            ((pl.col("risk") * 100).round() - pl.col("_floor").sum().over(subject)).alias("_left"),
            (pl.col("_exact") - pl.col("_floor")).alias("_rest"),
        )
        .sort([*subject, "_rest", "detector", "via"], descending=[False, False, True, False, False])
        .with_columns(
            (
                (pl.col("_floor") + (pl.int_range(pl.len()).over(subject) < pl.col("_left"))) / 100
            ).alias("points")
        )
        .select(*subject, "points", "detector", "_row")
        .sort([*subject, "points", "detector"], descending=[False, False, True, False])
    )
    points = contributions.select(pl.all().gather(order.get_column("_row"))).with_columns(
        order.get_column("points")
    )
    return points, totals.select("subject_kind", "subject_id", "risk")


def _top_reasons(points: pl.DataFrame, n: int) -> pl.DataFrame:
    return (
        points.filter(pl.col("points") > 0)
        .group_by("subject_kind", "subject_id", maintain_order=True)
        .agg(
            pl.format("{} +{}: {}", "detector", pl.col("points").round(1), "reason")
            .head(n)
            .str.join(" | ")
            .alias("top_reasons")
        )
    )


def _ranked(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    """Rank by exact risk, then id; risk is written with two decimals."""
    frame = frame.with_columns(pl.col("risk").fill_null(0.0)).sort(
        ["risk", key], descending=[True, False]
    )
    return frame.with_row_index("rank", offset=1).with_columns(
        pl.col("rank").cast(pl.Int64), pl.col("risk").round(2)
    )


def group_contributions(
    bids: pl.DataFrame, group_risk: pl.DataFrame, members: pl.DataFrame, share: float
) -> pl.DataFrame:
    """Tenders inherit the risk of a suspected group when two or more of its members bid.

    The contribution's score is the group's risk / 100 and its weight ``share``, so that a
    tender of a group of risk 90 gains 0.9 x share before its own findings.
    """
    empty = pl.DataFrame(schema=CONTRIBUTION_SCHEMA)
    if "firm_id" not in bids.columns or group_risk.height == 0 or share == 0:
        return empty
    membership = members.explode("members").select("group_id", pl.col("members").alias("firm_id"))
    # The members' bids alone are made distinct: few firms are in a group.
    present = (
        bids.select("tender_id", "firm_id")
        .drop_nulls()
        .join(membership, on="firm_id")
        .unique()
        .group_by("tender_id", "group_id")
        .agg(pl.col("firm_id").sort().alias("present"))
        .filter(pl.col("present").list.len() >= 2)
    )
    if present.height == 0:
        return empty
    return (
        present.join(group_risk, left_on="group_id", right_on="subject_id")
        .join(members.select("group_id", "detector"), on="group_id")
        .select(
            pl.lit("tender").alias("subject_kind"),
            pl.col("tender_id").alias("subject_id"),
            "detector",
            pl.format("group {}", "group_id").alias("via"),
            pl.lit(share).alias("weight"),
            (pl.col("risk") / 100).alias("score"),
            pl.lit(0.0).alias("points"),
            pl.format(
                "{} members of suspected group {} (risk {}) bid: {}",
                pl.col("present").list.len(),
                "group_id",
                pl.col("risk").round(1),
                pl.col("present").list.join(", "),
            ).alias("reason"),
        )
        .cast(CONTRIBUTION_SCHEMA)  # type: ignore[arg-type]
        .sort("subject_id", "via")
    )


def buyer_contributions(
    data: Dataset, buyer_risk: pl.DataFrame, findings: pl.DataFrame, share: float
) -> pl.DataFrame:
    """Tenders of a flagged buyer inherit its risk when a firm its findings name won them.

    A buyer's findings name the firms it favours (buyer-concentration names the dominant
    winners); the tenders those firms won there are where the favour shows. The score is
    the buyer's risk / 100 and the weight ``share``, as for groups.
    """
    empty = pl.DataFrame(schema=CONTRIBUTION_SCHEMA)
    named = (
        findings.filter(pl.col("subject_kind") == "buyer")
        .sort("subject_id", "score", "detector", descending=[False, True, False])
        .explode("firms")
        .drop_nulls("firms")
        .group_by(pl.col("subject_id").alias("buyer"), pl.col("firms").alias("firm_id"))
        .agg(pl.col("detector").first())
    )
    if named.height == 0 or share == 0 or "firm_id" not in data.bids.columns:
        return empty
    won = (
        data.bids.filter(pl.col("is_winner").fill_null(False))
        .select("tender_id", "firm_id")
        .drop_nulls()
        .unique()
        .join(
            data.tenders.select("tender_id", buyer().alias("buyer")).unique("tender_id"),
            on="tender_id",
        )
        .join(named, on=["buyer", "firm_id"])
        .join(buyer_risk, left_on="buyer", right_on="subject_id")
    )
    if won.height == 0:
        return empty
    return (
        won.select(
            pl.lit("tender").alias("subject_kind"),
            pl.col("tender_id").alias("subject_id"),
            "detector",
            pl.format("buyer {}", "buyer").alias("via"),
            pl.lit(share).alias("weight"),
            (pl.col("risk") / 100).alias("score"),
            pl.lit(0.0).alias("points"),
            pl.format(
                "won by {}, a firm buyer {} (risk {}) favours",
                "firm_id",
                "buyer",
                pl.col("risk").round(1),
            ).alias("reason"),
        )
        .cast(CONTRIBUTION_SCHEMA)  # type: ignore[arg-type]
        .sort("subject_id", "via", "reason")
    )


def tender_dates(data: Dataset) -> pl.DataFrame:
    """tender_id, _date: when a tender was bid (deadline, else publication, else award)."""
    return data.tenders.select(
        "tender_id", pl.coalesce("bid_deadline", "published_at", "awarded_at").alias("_date")
    ).unique("tender_id", keep="first", maintain_order=True)


def holders(data: Dataset) -> pl.DataFrame:
    """tender_id, firm_id: the firms whose record a tender's materials risk depends on: the
    contract's contractor, else its winner, or, while a tender has neither, every bidder
    with a valid bid."""
    from bidwatch.detectors._after import contractors

    bids = data.bids
    if "firm_id" not in bids.columns:
        return pl.DataFrame(schema={"tender_id": pl.String, "firm_id": pl.String})
    held = contractors(data).drop_nulls("firm_id")
    open_tenders = (
        bids.filter(pl.col("firm_id").is_not_null())
        .join(held.select("tender_id"), on="tender_id", how="anti")
        .filter(pl.col("status").is_null() | (pl.col("status") == "valid"))
    )
    return (
        pl.concat(
            [held.select("tender_id", "firm_id"), open_tenders.select("tender_id", "firm_id")]
        )
        .unique()
        .sort("tender_id", "firm_id")
    )


def history_contributions(
    data: Dataset,
    findings: pl.DataFrame,
    weights: dict[str, float],
    materials: set[str],
    settings: RiskConfig,
) -> pl.DataFrame:
    """A tender inherits the materials history of the firm that holds it.

    The history of a firm at a tender is the materials findings that name it on its other
    tenders bid earlier (or undated) and its own firm findings (inspection record). A
    busy contractor is not riskier for being busy: the tender findings count as their
    mean load (weight x score) over the contracts it held before (or undated), with one
    clean contract more, so that one flag behind a single contract counts half, and one
    among twenty a twentieth. Firm findings, already judged against the firm's volume,
    add in full. The score is 1 - exp(-(mean load + firm load) / scale), the firm's
    materials risk from its record, at weight ``history_share``; a tender without a winner
    takes its bidder with the heaviest record.
    """
    empty = pl.DataFrame(schema=CONTRIBUTION_SCHEMA)
    share = settings.history_share
    named = findings.filter(pl.col("detector").is_in(sorted(materials))).filter(
        pl.col("subject_kind").is_in(["tender", "firm"])
    )
    if share == 0 or named.height == 0 or "firm_id" not in data.bids.columns:
        return empty
    dates = tender_dates(data)
    past = (
        named.select(
            "detector",
            "subject_kind",
            "subject_id",
            (_weights(named, weights) * pl.col("score")).alias("_load"),
            pl.when(pl.col("subject_kind") == "firm")
            .then(pl.concat_list(pl.col("subject_id")))
            .otherwise(pl.col("firms"))
            .alias("_firm"),
        )
        .explode("_firm")
        .drop_nulls("_firm")
        .filter(pl.col("_load") > 0)
        .with_columns(
            pl.when(pl.col("subject_kind") == "tender").then(pl.col("subject_id")).alias("_from")
        )
        .join(dates.rename({"tender_id": "_from", "_date": "_from_date"}), on="_from", how="left")
        .rename({"_firm": "firm_id"})
    )
    held = holders(data).join(dates, on="tender_id", how="left")
    earlier = (
        pl.col("_from_date").is_null()
        | pl.col("_date").is_null()
        | (pl.col("_from_date") < pl.col("_date"))
    )
    from_tender = pl.col("_from").is_not_null()
    history = (
        held.join(past, on="firm_id")
        .filter(pl.col("_from").is_null() | (pl.col("_from") != pl.col("tender_id")))
        .filter(earlier)
        .sort("tender_id", "firm_id", "_load", "detector", descending=[False, False, True, False])
        .group_by("tender_id", "firm_id", maintain_order=True)
        .agg(
            pl.col("_load").filter(from_tender).sum().alias("_tender_load"),
            pl.col("_load").filter(~from_tender).sum().alias("_firm_load"),
            pl.col("detector").first(),
            pl.col("_from").drop_nulls().n_unique().alias("_flagged"),
            pl.col("_from").drop_nulls().unique().sort().head(3).alias("_examples"),
        )
        .join(_prior_contracts(data, held, dates), on=["tender_id", "firm_id"], how="left")
        .with_columns(
            (
                pl.col("_tender_load") / (pl.col("_prior").fill_null(0) + 1) + pl.col("_firm_load")
            ).alias("_mean")
        )
        .with_columns((1 - (-pl.col("_mean") / settings.scale).exp()).alias("score"))
        .filter(pl.col("score") > 0)
        .sort("tender_id", "score", "firm_id", descending=[False, True, False])
        .unique("tender_id", keep="first", maintain_order=True)
    )
    if history.height == 0:
        return empty
    return history.select(
        pl.lit("tender").alias("subject_kind"),
        pl.col("tender_id").alias("subject_id"),
        "detector",
        pl.format("contractor {}", "firm_id").alias("via"),
        pl.lit(share).alias("weight"),
        "score",
        pl.lit(0.0).alias("points"),
        pl.format(
            "held by {}, whose record carries materials risk {}: {} of its {} earlier "
            "contracts flagged{}{}",
            "firm_id",
            (pl.col("score") * 100).round(1),
            "_flagged",
            pl.col("_prior").fill_null(0),
            pl.when(pl.col("_examples").list.len() > 0)
            .then(pl.format(" (e.g. {})", pl.col("_examples").list.join(", ")))
            .otherwise(pl.lit("")),
            pl.when(pl.col("_firm_load") > 0)
            .then(pl.lit(", and its inspection record"))
            .otherwise(pl.lit("")),
        ).alias("reason"),
    ).cast(CONTRIBUTION_SCHEMA)  # type: ignore[arg-type]


def _prior_contracts(data: Dataset, held: pl.DataFrame, dates: pl.DataFrame) -> pl.DataFrame:
    """tender_id, firm_id, _prior: for each (tender, firm) of ``held``, how many other
    contracts the firm held before it (or undated, or whenever when the tender is undated)."""
    from bidwatch.detectors._after import contractors

    won = contractors(data).drop_nulls("firm_id").join(dates, on="tender_id", how="left")
    per_firm = won.group_by("firm_id").agg(
        pl.len().alias("_won"), pl.col("_date").null_count().alias("_undated")
    )
    dated = (
        won.filter(pl.col("_date").is_not_null())
        .sort("_date", "firm_id", "tender_id")
        .with_columns(pl.int_range(1, pl.len() + 1).over("firm_id").alias("_before"))
        .select("firm_id", "_date", "_before")
    )
    targets = held.join(per_firm, on="firm_id", how="left").join(
        won.select("tender_id", "firm_id", pl.lit(1).alias("_self")),
        on=["tender_id", "firm_id"],
        how="left",
    )
    with_date = (
        targets.filter(pl.col("_date").is_not_null())
        .sort("_date")
        .join_asof(
            dated,
            on="_date",
            by="firm_id",
            strategy="backward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
        .select(
            "tender_id",
            "firm_id",
            (pl.col("_before").fill_null(0) + pl.col("_undated").fill_null(0)).alias("_prior"),
        )
    )
    without_date = targets.filter(pl.col("_date").is_null()).select(
        "tender_id",
        "firm_id",
        (pl.col("_won").fill_null(0) - pl.col("_self").fill_null(0)).alias("_prior"),
    )
    return pl.concat([with_date, without_date]).with_columns(pl.col("_prior").cast(pl.Int64))


def family_risk(
    contributions: pl.DataFrame,
    families: Mapping[str, str],
    scale: float,
    sums: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """subject_kind, subject_id, collusion_risk, materials_risk: each family's contributions
    mapped to 0-100 on their own. ``sums`` is ``_sums(contributions, families)`` when the
    caller has it already."""
    totals = _sums(contributions, families) if sums is None else sums
    return totals.select(
        "subject_kind",
        "subject_id",
        *[
            (100 * (1 - (-pl.col(f"_{name}") / scale).exp())).alias(f"{name}_risk")
            for name in FAMILIES
        ],
    )


def assess(
    data: Dataset, findings: pl.DataFrame, assessed: dict[str, pl.Series], config: Config
) -> Risk:
    """Contributions of every subject kind, their points, and the rankings."""
    from bidwatch.detectors import REGISTRY
    from bidwatch.detectors._base import family

    weights = {d.name: config.weight(d) for d in REGISTRY}
    families = {d.name: family(d) for d in REGISTRY}
    materials = {name for name, fam in families.items() if fam == "materials"}
    per_tender = {d.name for d in REGISTRY if d.subject == "tender"}
    own = own_contributions(findings, weights).cast(CONTRIBUTION_SCHEMA)  # type: ignore[arg-type]
    firms_inherit = firm_contributions(
        findings,
        data,
        weights,
        {name: ids for name, ids in assessed.items() if name in per_tender},
        config.risk,
    )
    # Groups and buyers first: tenders inherit the risk of the groups that meet in them and
    # of the buyers that favour their winners.
    context = pl.col("subject_kind").is_in(["group", "buyer"])
    context_points, context_totals = with_points(own.filter(context), config.risk.scale)
    group_totals = context_totals.filter(pl.col("subject_kind") == "group")
    buyer_totals = context_totals.filter(pl.col("subject_kind") == "buyer")
    members = group_members(findings)
    from_groups = group_contributions(data.bids, group_totals, members, config.risk.group_share)
    from_buyers = buyer_contributions(data, buyer_totals, findings, config.risk.buyer_share)
    from_history = history_contributions(data, findings, weights, materials, config.risk)
    # Parts not copied into one block: only their key columns are, by ``with_points``.
    contributions = pl.concat(
        [own.filter(~context), firms_inherit, from_groups, from_buyers, from_history],
        rechunk=False,
    )
    del own, firms_inherit, from_groups, from_buyers, from_history
    sums = _sums(contributions, families)
    points, totals = with_points(contributions, config.risk.scale, sums)
    by_family = family_risk(contributions, families, config.risk.scale, sums)
    del sums, contributions
    points = pl.concat([points, context_points], rechunk=False)
    # Sorted on its keys and a row number; the reasons are gathered once.
    order = (
        points.select("subject_kind", "subject_id", "points", "detector")
        .rechunk()
        .with_row_index("_row")
        .sort(
            ["subject_kind", "subject_id", "points", "detector"],
            descending=[False, False, True, False],
        )
        .get_column("_row")
    )
    points = points.select(pl.all().gather(order)).with_columns(
        pl.col("detector")
        .replace_strict(families, default="collusion", return_dtype=pl.String)
        .alias("family")
    )
    totals = pl.concat([totals, context_totals])
    reasons = _top_reasons(points, config.risk.top_reasons)

    def risk_of(kind: str, key: str) -> pl.DataFrame:
        return (
            totals.filter(pl.col("subject_kind") == kind)
            .select(pl.col("subject_id").alias(key), "risk")
            .join(
                by_family.filter(pl.col("subject_kind") == kind).select(
                    pl.col("subject_id").alias(key), pl.col("^.*_risk$")
                ),
                on=key,
                how="left",
            )
            .join(
                reasons.filter(pl.col("subject_kind") == kind).select(
                    pl.col("subject_id").alias(key), "top_reasons"
                ),
                on=key,
                how="left",
            )
        )

    def ranking(kind: str, key: str, details: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
        """The subjects' details with their risk and reasons, ranked, in ``columns`` order."""
        ranked = _ranked(details.join(risk_of(kind, key), on=key, how="left"), key)
        return ranked.with_columns(
            pl.col("top_reasons").fill_null(""),
            *[pl.col(f"{name}_risk").fill_null(0.0).round(2) for name in FAMILIES],
        ).select(columns)

    tender_rows = _tender_details(data, findings)
    tenders = ranking(
        "tender",
        "tender_id",
        tender_rows,
        ["rank", "tender_id", "risk", "collusion_risk", "materials_risk", "top_reasons"]
        + [c for c in tender_rows.columns if c != "tender_id"],
    )
    firm_rows = (
        firm_table(data)
        if data.entities is not None and "firm_id" in data.bids.columns
        else pl.DataFrame(
            schema={
                "firm_id": pl.String,
                "name": pl.String,
                "bidder_ids": pl.String,
                "bidder_names": pl.String,
                "parent_id": pl.String,
                "tenders": pl.UInt32,
                "wins": pl.UInt32,
            }
        )
    )
    firms = ranking(
        "firm",
        "firm_id",
        firm_rows,
        [
            "rank",
            "firm_id",
            "name",
            "bidder_ids",
            "bidder_names",
            "risk",
            "collusion_risk",
            "materials_risk",
            "top_reasons",
            "tenders",
            "wins",
            "parent_id",
        ],
    )
    groups = ranking(
        "group",
        "group_id",
        _group_details(data.bids, members),
        ["rank", "group_id", "members", "tenders", "wins", "risk", "top_reasons", "detectors"],
    )
    pairs = ranking(
        "pair",
        "pair_id",
        _pair_details(data, findings),
        ["rank", "firm_a", "firm_b", "tenders", "risk", "top_reasons", "pair_id"],
    )
    buyers = ranking(
        "buyer",
        "buyer",
        _buyer_details(data, findings),
        ["rank", "buyer", "buyer_name", "risk", "top_reasons", "tenders", "findings"],
    )
    return Risk(
        tenders=tenders,
        firms=firms,
        contributions=points,
        groups=groups,
        pairs=pairs,
        buyers=buyers,
    )


def _buyer_details(data: Dataset, findings: pl.DataFrame) -> pl.DataFrame:
    """buyer (buyer_id, else buyer_name), a name, tenders and findings, for every buyer."""
    counts = (
        findings.filter(pl.col("subject_kind") == "buyer")
        .group_by(pl.col("subject_id").alias("buyer"))
        .agg(pl.len().cast(pl.UInt32).alias("findings"))
    )
    return (
        data.tenders.select(buyer().alias("buyer"), "buyer_name")
        .drop_nulls("buyer")
        .group_by("buyer")
        .agg(
            pl.col("buyer_name").drop_nulls().mode().sort().first(),
            pl.len().cast(pl.UInt32).alias("tenders"),
        )
        .join(counts, on="buyer", how="left")
        .with_columns(pl.col("findings").fill_null(0))
    )


def group_members(findings: pl.DataFrame) -> pl.DataFrame:
    """group_id, members, detector (the strongest), detectors, from the group findings."""
    groups = findings.filter(pl.col("subject_kind") == "group")
    return (
        groups.sort("subject_id", "score", "detector", descending=[False, True, False])
        .group_by(pl.col("subject_id").alias("group_id"), maintain_order=True)
        .agg(
            pl.col("firms")
            .list.explode(keep_nulls=False, empty_as_null=False)
            .unique()
            .sort()
            .alias("members"),
            pl.col("detector").first(),
            pl.col("detector").unique().sort().str.join(";").alias("detectors"),
        )
    )


def _group_details(bids: pl.DataFrame, members: pl.DataFrame) -> pl.DataFrame:
    """group_id, members (;-joined), tenders two or more members bid in, wins among them."""
    if members.height == 0 or "firm_id" not in bids.columns:
        return pl.DataFrame(
            schema={
                "group_id": pl.String,
                "members": pl.String,
                "tenders": pl.UInt32,
                "wins": pl.UInt32,
                "detectors": pl.String,
            }
        )
    membership = members.explode("members").select("group_id", pl.col("members").alias("firm_id"))
    together = (
        bids.select("tender_id", "firm_id", pl.col("is_winner").fill_null(False))
        .drop_nulls("firm_id")
        .join(membership, on="firm_id")
        .group_by("group_id", "tender_id")
        .agg(pl.col("firm_id").n_unique().alias("_n"), pl.col("is_winner").any().alias("_won"))
        .filter(pl.col("_n") >= 2)
        .group_by("group_id")
        .agg(
            pl.len().cast(pl.UInt32).alias("tenders"),
            pl.col("_won").sum().cast(pl.UInt32).alias("wins"),
        )
    )
    return members.join(together, on="group_id", how="left").select(
        "group_id",
        pl.col("members").list.join(";"),
        pl.col("tenders").fill_null(0),
        pl.col("wins").fill_null(0),
        "detectors",
    )


def _pair_details(data: Dataset, findings: pl.DataFrame) -> pl.DataFrame:
    """pair_id, firm_a, firm_b and the tenders both bid in, for pairs with findings."""
    pairs = (
        findings.filter(pl.col("subject_kind") == "pair")
        .select(pl.col("subject_id").alias("pair_id"))
        .unique()
    )
    split = pairs.with_columns(
        pl.col("pair_id")
        .str.split_exact(ID_SEPARATOR, 1)
        .struct.rename_fields(["firm_a", "firm_b"])
        .alias("_p")
    ).unnest("_p")
    if split.height == 0 or "firm_id" not in data.bids.columns:
        return split.with_columns(pl.lit(0, dtype=pl.UInt32).alias("tenders"))
    from bidwatch.detectors._pairs import coded_incidence

    # On the dataset's integer codes: the tenders of A, kept where B bid too.
    incidence = coded_incidence(data)
    n_firms = incidence.firms.len()
    codes = incidence.firms.to_frame("firm_id").with_row_index("_f")
    tenders_of_a = (
        split.select("pair_id", "firm_a", "firm_b")
        .join(codes.rename({"firm_id": "firm_a", "_f": "_a"}), on="firm_a")
        .join(codes.rename({"firm_id": "firm_b", "_f": "_b"}), on="firm_b")
        .join(incidence.frame.select("_t", pl.col("_f").alias("_a")), on="_a")
    )
    keys = _unit_keys(incidence.frame, n_firms)
    wanted = tenders_of_a.get_column("_t").to_numpy().astype(np.uint64) * n_firms
    wanted += tenders_of_a.get_column("_b").to_numpy()
    both = (
        tenders_of_a.filter(pl.Series(_members(keys, wanted)))
        .group_by("pair_id")
        .agg(pl.len().cast(pl.UInt32).alias("tenders"))
    )
    return split.join(both, on="pair_id", how="left").with_columns(pl.col("tenders").fill_null(0))


def _unit_keys(units: pl.DataFrame, n_firms: int) -> npt.NDArray[np.uint64]:
    """One 64-bit key _t x firms + _f per row of the coded incidence, in its (sorted) order."""
    keys: npt.NDArray[np.uint64] = units.get_column("_t").to_numpy().astype(np.uint64) * n_firms
    keys += units.get_column("_f").to_numpy()
    return keys


def _members(keys: npt.NDArray[np.uint64], wanted: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
    """Which of ``wanted`` are among the sorted ``keys``."""
    if keys.size == 0:
        return np.zeros(wanted.size, dtype=np.bool_)
    at = np.minimum(np.searchsorted(keys, wanted), keys.size - 1)
    found: npt.NDArray[np.bool_] = keys[at] == wanted
    return found


def _tender_details(data: Dataset, findings: pl.DataFrame) -> pl.DataFrame:
    bids = data.bids
    winner = pl.col("is_winner").fill_null(False)
    who = (
        pl.coalesce("firm_id", "bidder_id", "bidder_name")
        if "firm_id" in bids.columns
        else pl.coalesce("bidder_id", "bidder_name")
    )
    # Winners are read from the winning bids alone, and only tenders with two or more
    # distinct winners build a list: a list per tender costs several times a plain value.
    won = bids.filter(winner)
    names = won.select("tender_id", who.alias("winner")).drop_nulls("winner").unique()
    shared = names.get_column("tender_id").is_duplicated()
    names = pl.concat(
        [
            names.filter(~shared),
            names.filter(shared).group_by("tender_id").agg(pl.col("winner").sort().str.join(";")),
        ]
    )
    per_tender = (
        bids.group_by("tender_id")
        .len("bids")
        .join(
            won.group_by("tender_id").agg(pl.col("amount").max().alias("winning_amount")),
            on="tender_id",
            how="left",
        )
        .join(names, on="tender_id", how="left")
        # A tender with bids but no named winner: no winners to join, as before.
        .with_columns(pl.col("winner").fill_null(""))
        .select("tender_id", "bids", "winner", "winning_amount")
    )
    counts = (
        findings.filter(pl.col("subject_kind") == "tender")
        .group_by(pl.col("subject_id").alias("tender_id"))
        .agg(pl.len().alias("findings"))
    )
    return (
        data.tenders.select(
            "tender_id", "title", "buyer_name", "region", "category", "award_method", "estimate"
        )
        .join(per_tender, on="tender_id", how="left")
        .join(counts, on="tender_id", how="left")
        .with_columns(pl.col("bids").fill_null(0), pl.col("findings").fill_null(0))
    )
