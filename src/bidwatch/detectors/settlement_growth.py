"""A cheap win settled expensively: the contract grew far more than comparable contracts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import polars as pl

from bidwatch.detectors._after import contractors
from bidwatch.detectors._base import Family, NotComputable, sig
from bidwatch.detectors._contracts import (
    compare_contracts,
    contract_comparison,
    day_text,
    days,
    shared_contracts,
    upper_fence,
    win_depth,
)
from bidwatch.detectors._stats import mid_p
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset


@dataclass(frozen=True)
class SettlementGrowth:
    """The contract was settled far above its signed amount, more than comparable
    contracts grow: a cheap win recovered through change orders.

    ## What it flags
    Contracts whose growth (settled amount over contract amount, or change orders over
    contract amount where no settlement is given) lies above the upper Tukey fence of
    comparable contracts and above `max_growth`.

    ## Why it is a risk
    Winning low and settling high is how a below-cost bid is paid for: the contract is won
    on price and the difference comes back through variations, claims and re-measured
    quantities (低价中标、高价结算), often with a buyer who expects it. It defeats the price
    competition the award rested on. Public investment is to stay within the approved budget
    estimate (投资概算): the PRC Regulations on Government Investment (政府投资条例, 2019)
    art. 23 require that an increase the project really needs be submitted, with its causes
    and funding, to the authority that approved the estimate. EU law treats a large
    modification as a new award: Directive 2014/24/EU art. 72(2) lets a works contract be
    modified without a new procedure only below 15% of its initial value (and the EU
    thresholds).

    ## Method
    growth = final_amount / contract_amount - 1; where final_amount is missing, the sum of
    the contract's change order amounts / contract_amount; where both are missing the growth
    is unknown (not zero) and the contract is not assessed. Each growth is placed among
    comparable contracts: same category and half-decade band of contract amount, else the
    size band alone, else every contract, the finest group with at least `min_comparable`
    contracts. The limit is the larger of the upper fence Q3 + `fence` x IQR of the group
    (Q3 when the IQR is zero) and `max_growth`: growth within `max_growth` is what budgets
    carry and is not flagged however unusual, and where most comparable contracts exceed
    it, exceeding it says little about one contract. The default 15% is the line of
    Directive 2014/24/EU art. 72(2) for modifying a works contract without a new
    procedure; art. 23 of the PRC regulations sets no percentage. With fewer than `min_comparable`
    contracts in all, the limit is `max_growth` alone (not computable when it is None).
    Score: p = the mid-rank percentile of growth among the comparison group, raised by
    r = the mean of four signs, each in [0, 1] and 0 when unknown: cheap win = 2 x (the
    percentile of depth of winning bid / estimate among comparable tenders - 0.5), 0 in
    the upper half; early change = 1 - (days from signed_at, else awarded_at, to the first
    approved change order) / (planned days from the same start to planned_completion);
    many changes = 1 - 1 / (number of change orders); concentrated reason = the largest,
    over the contract's change orders, of 1 - q for their reason, where q is the binomial
    mid-p of c of the reason's n change orders (across the input, reasons compared as
    written after NFKC and case-folding) falling on contracts won in the deep half of
    their comparison group, against the share b of all change orders that do; 0 when
    c / n <= b or n < `min_reason_orders`. A reason such as 工程量增加 that recurs where
    the price was too low to build for is how a low bid is recovered. score =
    1 - (1 - p)(1 - r).

    ## Evidence
    Contract and settled amounts, the basis of growth, growth, the limit, fence and
    `max_growth`, percentile and comparison group; the change orders (amount, approval
    date, reason), their count and total; days to the first change and the planned
    duration; the winning bid / estimate and its depth percentile among comparable tenders;
    the contract's most concentrated change-order reason with its count, its count on deep
    wins and the input-wide share of change orders on deep wins.

    ## Parameters
    - `max_growth`: least growth flagged (0.15 = 15%); None leaves the fence alone.
    - `fence`: Tukey multiplier of the interquartile range of growth among comparable
      contracts.
    - `min_comparable`: fewest contracts a comparison group needs before it is used.
    - `min_reason_orders`: fewest change orders a reason needs before its concentration on
      deep wins counts.

    ## Known false positives
    Variations the buyer ordered (added scope, design changes), price adjustment clauses
    when material prices rose, unforeseen ground conditions; settlements that include
    items the contract left provisional (暂列金额, 暂估价). Read the change order reasons in
    the evidence: the pattern that matters is a deep discount at award followed by early,
    numerous changes.

    ## References
    - 政府投资条例 (State Council Decree No. 712, 2019), art. 23.
    - Directive 2014/24/EU on public procurement, art. 72 (modification of contracts).
    - Bajari, P., Houghton, S. & Tadelis, S. (2014). Bidding for incomplete contracts: an
      empirical analysis of adaptation costs. American Economic Review 104(4).
    - Decarolis, F. (2014). Awarding price, contract performance, and bids screening:
      evidence from procurement auctions. AEJ: Applied Economics 6(1).
    """

    max_growth: float | None = 0.15
    fence: float = 1.5
    min_comparable: int = 30
    min_reason_orders: int = 5

    name: ClassVar[str] = "settlement-growth"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset({"contracts.contract_amount"})
    # Growth is what a buy-in leaves behind, but buyers order variations too.
    default_weight: ClassVar[float] = 1.0
    family: ClassVar[Family] = "materials"

    def __post_init__(self) -> None:
        if self.max_growth is not None and self.max_growth < 0:
            raise ValueError(f"max_growth must be >= 0 or None, got {self.max_growth}")
        if self.fence < 0:
            raise ValueError(f"fence must be >= 0, got {self.fence}")
        if self.min_comparable < 4:
            raise ValueError(f"min_comparable must be >= 4, got {self.min_comparable}")
        if self.min_reason_orders < 1:
            raise ValueError(f"min_reason_orders must be >= 1, got {self.min_reason_orders}")

    def detect(self, data: Dataset) -> Findings:
        contracts = shared_contracts(data)
        signed = contracts.filter(pl.col("contract_amount") > 0)
        orders = change_orders(data)
        frame = with_growth(signed, orders)
        known = frame.filter(pl.col("growth").is_not_null())
        notes = self._notes(contracts, signed, frame, orders)
        if known.height == 0:
            raise NotComputable(
                f"no contract has a settled amount or priced change orders to measure growth "
                f"({contracts.height} contracts, {signed.height} with a contract_amount above "
                "zero); give final_amount (结算价) or change_orders with amounts"
            )
        placed = compare_contracts(known, "growth", "contract_amount", self.min_comparable)
        fenced = placed.height >= self.min_comparable
        if not fenced:
            if self.max_growth is None:
                raise NotComputable(
                    f"needs at least {self.min_comparable} contracts with a known growth for "
                    f"a data-driven fence, found {placed.height}; set `max_growth` under "
                    f"[detectors.{self.name}] or lower `min_comparable`"
                )
            notes += (
                f"only {placed.height} contracts have a known growth, fewer than "
                f"min_comparable = {self.min_comparable}: judged against max_growth alone",
            )
        fence = upper_fence(self.fence) if fenced else pl.lit(None, dtype=pl.Float64)
        limit = pl.max_horizontal(fence, pl.lit(self.max_growth, dtype=pl.Float64))
        placed = placed.with_columns(fence.alias("_fence"), limit.alias("_limit"))
        flagged = placed.filter(pl.col("growth") > pl.col("_limit"))
        depth = win_depth(data, self.min_comparable)
        flagged = (
            flagged.join(depth, on="tender_id", how="left")
            .join(contractors(data), on="tender_id", how="left")
            .join(orders_list(data, flagged.get_column("tender_id")), on="tender_id", how="left")
            .join(
                reason_concentration(data, depth, self.min_reason_orders),
                on="tender_id",
                how="left",
            )
        )
        return self._build(flagged, placed.get_column("tender_id"), notes)

    def _notes(
        self,
        contracts: pl.DataFrame,
        signed: pl.DataFrame,
        frame: pl.DataFrame,
        orders: pl.DataFrame,
    ) -> tuple[str, ...]:
        notes = []
        unsigned = contracts.height - signed.height
        if unsigned:
            notes.append(
                f"{unsigned} contract(s) have no contract_amount above zero to measure growth from"
            )
        unknown = frame.filter(pl.col("growth").is_null()).height
        if unknown:
            notes.append(
                f"{unknown} of {frame.height} contract(s) have neither a settled amount "
                "(final_amount) nor any priced change order: their growth is unknown, not zero, "
                "and they were not judged"
            )
        orphans = orders.join(contracts.select("tender_id"), on="tender_id", how="anti").height
        if orphans:
            notes.append(
                f"change orders of {orphans} tender(s) without a contract row were left out: "
                "there is no contract amount to measure them against"
            )
        return tuple(notes)

    def _build(
        self, flagged: pl.DataFrame, assessed: pl.Series, notes: tuple[str, ...]
    ) -> Findings:
        planned = days(pl.col("planned_completion"), pl.col("_start"))
        to_first = days(pl.col("_first_change"), pl.col("_start"))
        flagged = flagged.with_columns(
            planned.alias("_planned_days"),
            to_first.alias("_to_first"),
        )
        cheap = (2.0 * (pl.col("_win_pct") - 0.5)).clip(0.0, 1.0).fill_null(0.0)
        early = (
            pl.when(pl.col("_planned_days") > 0)
            .then(1.0 - pl.col("_to_first").clip(lower_bound=0.0) / pl.col("_planned_days"))
            .clip(0.0, 1.0)
            .fill_null(0.0)
        )
        many = 1.0 - 1.0 / pl.col("_orders").clip(lower_bound=1).cast(pl.Float64)
        flagged = flagged.with_columns(
            cheap.alias("_cheap"),
            early.alias("_early"),
            many.alias("_many"),
            pl.col("_concentrated").fill_null(0.0),
        ).with_columns(
            (
                (pl.col("_cheap") + pl.col("_early") + pl.col("_many") + pl.col("_concentrated"))
                / 4.0
            ).alias("_r")
        )
        score = 1.0 - (1.0 - pl.col("_pct")) * (1.0 - pl.col("_r"))
        how = pl.concat_str(
            [
                pl.when(pl.col("_fence").is_not_null()).then(
                    pl.format(
                        "upper fence {}% of {} comparable contracts",
                        sig(pl.col("_fence") * 100, 3),
                        pl.col("_count"),
                    )
                ),
                pl.when(pl.lit(self.max_growth is not None)).then(
                    pl.format("max_growth {}%", sig(pl.lit(self.max_growth) * 100, 3))
                ),
            ],
            separator="; ",
            ignore_nulls=True,
        )
        changes = pl.when(pl.col("_orders") > 0).then(
            pl.format(
                "{} change order(s){}",
                pl.col("_orders"),
                pl.when(pl.col("_to_first").is_not_null())
                .then(
                    pl.format(
                        ", the first {} days after {}{}",
                        day_text(pl.col("_to_first")),
                        pl.when(pl.col("signed_at").is_not_null())
                        .then(pl.lit("signing"))
                        .otherwise(pl.lit("the award")),
                        pl.when(pl.col("_planned_days") > 0)
                        .then(
                            pl.format(
                                " ({}% of the planned {} days)",
                                sig(pl.col("_to_first") / pl.col("_planned_days") * 100, 3),
                                day_text(pl.col("_planned_days")),
                            )
                        )
                        .otherwise(pl.lit("")),
                    )
                )
                .otherwise(pl.lit("")),
            )
        )
        cheap_text = pl.when(pl.col("_win_pct").is_not_null()).then(
            pl.format(
                "won at {} x the estimate, deeper than {}% of comparable tenders",
                sig(pl.col("_win_ratio"), 3),
                sig(pl.col("_win_pct") * 100, 3),
            )
        )
        message = pl.format(
            "{} {} on a contract of {}: growth {}% > {} ({}){}",
            pl.when(pl.col("_basis") == "settled amount")
            .then(pl.lit("settled at"))
            .otherwise(pl.lit("change orders total")),
            sig(
                pl.when(pl.col("_basis") == "settled amount")
                .then(pl.col("final_amount"))
                .otherwise(pl.col("_order_total")),
                6,
            ),
            sig(pl.col("contract_amount"), 6),
            sig(pl.col("growth") * 100, 3),
            pl.format("{}%", sig(pl.col("_limit") * 100, 3)),
            how,
            pl.concat_str([pl.lit(""), changes, cheap_text], separator="; ", ignore_nulls=True),
        )
        return build(
            flagged,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=score,
            value=pl.col("growth"),
            threshold=pl.col("_limit"),
            message=message,
            evidence={
                "contract_amount": pl.col("contract_amount"),
                "final_amount": pl.col("final_amount"),
                "growth_basis": pl.col("_basis"),
                "growth": pl.col("growth"),
                "limit": pl.col("_limit"),
                "fence": pl.col("_fence"),
                "max_growth": pl.lit(self.max_growth, dtype=pl.Float64),
                "percentile": pl.col("_pct"),
                "compared_with": contract_comparison(),
                "change_orders": pl.col("_list").fill_null(
                    pl.lit([], dtype=pl.List(pl.Struct(ORDER_FIELDS)))
                ),
                "change_order_count": pl.col("_orders"),
                "change_order_total": pl.col("_order_total"),
                "signed_at": pl.col("signed_at").dt.strftime("%Y-%m-%d"),
                "days_to_first_change": pl.col("_to_first"),
                "planned_days": pl.col("_planned_days"),
                "winning_ratio": pl.col("_win_ratio"),
                "win_depth_percentile": pl.col("_win_pct"),
                "raised_by": pl.struct(
                    cheap_win=pl.col("_cheap"),
                    early_change=pl.col("_early"),
                    many_changes=pl.col("_many"),
                    concentrated_reason=pl.col("_concentrated"),
                ),
                "reason_on_deep_wins": pl.struct(
                    reason=pl.col("_reason"),
                    change_orders=pl.col("_reason_orders"),
                    on_deep_wins=pl.col("_reason_deep"),
                    input_share_on_deep_wins=pl.col("_deep_share"),
                ),
            },
            firms=pl.concat_list(pl.col("firm_id")).list.drop_nulls(),
            assessed=assessed,
            notes=notes,
        )


ORDER_FIELDS = {"amount": pl.Float64, "approved_at": pl.String, "reason": pl.String}


def reason_concentration(data: Dataset, depth: pl.DataFrame, min_orders: int) -> pl.DataFrame:
    """tender_id, _concentrated (1 - mid-p of its most concentrated reason, 0 when none is),
    _reason, _reason_orders, _reason_deep and _deep_share: how far each contract's
    change-order reasons fall on contracts won in the deep half of their comparison group."""
    empty = pl.DataFrame(
        schema={
            "tender_id": pl.String,
            "_concentrated": pl.Float64,
            "_reason": pl.String,
            "_reason_orders": pl.UInt32,
            "_reason_deep": pl.UInt32,
            "_deep_share": pl.Float64,
        }
    )
    key = pl.col("reason").str.normalize("NFKC").str.to_lowercase().str.strip_chars()
    given = data.change_orders.filter(pl.col("reason").is_not_null())
    # A few reasons recur over many change orders: each is normalised once.
    reasons = given.get_column("reason").unique()
    keys = pl.DataFrame({"reason": reasons}).select(key).to_series()
    orders = (
        given.with_columns(
            pl.col("reason").replace_strict(reasons, keys, return_dtype=pl.String).alias("_key")
        )
        .filter(pl.col("_key") != "")
        .join(depth.select("tender_id", "_win_pct"), on="tender_id")
        .with_columns((pl.col("_win_pct") > 0.5).alias("_deep"))
    )
    if orders.height == 0:
        return empty
    base = float(orders.get_column("_deep").mean())  # type: ignore[arg-type]
    per_reason = (
        orders.group_by("_key")
        .agg(
            pl.len().alias("_reason_orders"),
            pl.col("_deep").sum().cast(pl.UInt32).alias("_reason_deep"),
            pl.col("reason").min().alias("_reason"),
        )
        .sort("_key")
    )
    n = per_reason.get_column("_reason_orders").to_numpy()
    c = per_reason.get_column("_reason_deep").to_numpy()
    concentrated = np.where(
        (n >= min_orders) & (c > base * n) & (0 < base < 1),
        1.0 - mid_p(c, n, base),
        0.0,
    )
    per_reason = per_reason.with_columns(
        pl.Series("_concentrated", concentrated), pl.lit(base).alias("_deep_share")
    )
    return (
        orders.select("tender_id", "_key")
        .unique()
        .join(per_reason, on="_key")
        .sort("tender_id", "_concentrated", "_key", descending=[False, True, False])
        .unique("tender_id", keep="first", maintain_order=True)
        .select(empty.columns)
        .cast(empty.schema)
    )


def with_growth(signed: pl.DataFrame, orders: pl.DataFrame) -> pl.DataFrame:
    """``signed`` contracts (from ``contract_frame``, contract_amount above zero) with their
    ``orders`` (from ``change_orders``), growth and _basis: the settled amount over the
    signed one where final_amount is given, else the priced change orders over it, else
    unknown (null), never 0."""
    return signed.join(orders, on="tender_id", how="left").with_columns(
        pl.col("_orders").fill_null(0),
        pl.when(pl.col("final_amount").is_not_null())
        .then(pl.col("final_amount") / pl.col("contract_amount") - 1.0)
        .when(pl.col("_priced_orders") > 0)
        .then(pl.col("_order_total") / pl.col("contract_amount"))
        .alias("growth"),
        pl.when(pl.col("final_amount").is_not_null())
        .then(pl.lit("settled amount"))
        .when(pl.col("_priced_orders") > 0)
        .then(pl.lit("change orders"))
        .alias("_basis"),
    )


def change_orders(data: Dataset) -> pl.DataFrame:
    """tender_id, _orders (change orders), _priced_orders (those with an amount),
    _order_total (sum of amounts) and _first_change (first approval date)."""
    # Sorted so that the total adds up in the same order whatever the input order.
    orders = data.change_orders.sort("tender_id", "amount", nulls_last=True)
    return orders.group_by("tender_id").agg(
        pl.len().alias("_orders"),
        pl.col("amount").count().alias("_priced_orders"),
        pl.col("amount").sum().alias("_order_total"),
        pl.col("approved_at").min().alias("_first_change"),
    )


def orders_list(data: Dataset, tenders: pl.Series | None = None) -> pl.DataFrame:
    """tender_id, _list: each change order (amount, approval date, reason) in date order;
    of the ``tenders`` given, else of all."""
    orders = data.change_orders
    if tenders is not None:
        orders = orders.filter(pl.col("tender_id").is_in(tenders.implode()))
    orders = orders.sort("tender_id", "approved_at", "amount", "reason", nulls_last=True)
    return orders.group_by("tender_id", maintain_order=True).agg(
        pl.struct(
            pl.col("amount"),
            pl.col("approved_at").dt.strftime("%Y-%m-%d").alias("approved_at"),
            pl.col("reason"),
        ).alias("_list")
    )
