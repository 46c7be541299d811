"""The winner's bill of quantities prices some items far above their reference and others far
below it: an unbalanced (front-loaded) bid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl

from bidwatch.detectors._after import with_reference
from bidwatch.detectors._base import Family, NotComputable, sig
from bidwatch.detectors._bills import (
    BIDDER,
    HOLDER,
    TENDER,
    VALUE_ORDER,
    priced_bills,
    value_sort,
)
from bidwatch.findings import Findings, SubjectKind, build
from bidwatch.schema import material_key

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

# Evidence lists at most this many items (the furthest from their reference first).
_SHOWN = 12


def median_of_others(
    frame: pl.DataFrame, group: list[str], member: str, value: str
) -> pl.DataFrame:
    """``frame`` (one row per member of each group) with _others, the median of ``value``
    over the other members of its group, and _count, how many they are.

    Without a join of each group with itself: the group's values are sorted once, and the
    median of the others is read at the middle of the sorted values with the member's own
    left out (position j of the others is position j, or j + 1 past the member's own, of
    the group). The groups are integer codes and the reading is vector arithmetic: a group
    per item of a tender makes hundreds of thousands of tiny groups, too many for a
    group-by. Which member comes first among equal values does not change the medians, so
    ``member`` names the rows only.
    """
    n = frame.height
    if n == 0:
        return frame.with_columns(
            pl.lit(None, dtype=pl.Float64).alias("_others"),
            pl.lit(None, dtype=pl.Int64).alias("_count"),
        )
    single = frame.get_column(group[0]) if len(group) == 1 else None
    if single is not None and single.dtype.is_integer() and single.null_count() == 0:
        # Integer codes already: the groups and their order are the codes'.
        codes = single.to_numpy()
    else:
        # Null is a group of its own, as in a group-by.
        key = pl.col(group[0]) if len(group) == 1 else pl.struct(group)
        codes = frame.select(key.rank("dense").fill_null(0)).to_series().to_numpy()
    values = frame.get_column(value).cast(pl.Float64).fill_null(np.nan).to_numpy()
    order = (
        pl.DataFrame({"c": codes, "v": values})
        .select(pl.arg_sort_by("c", "v"))
        .to_series()
        .to_numpy()
    )
    sorted_codes, sorted_values = codes[order], values[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sizes = np.diff(np.r_[starts, n])
    start = np.repeat(starts, sizes)
    m = np.repeat(sizes, sizes).astype(np.int64)
    own = np.arange(n) - start
    others = m - 1

    def at(j: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        index = start + np.where(j < own, j, j + 1)
        gathered: npt.NDArray[np.float64] = sorted_values[np.clip(index, start, start + m - 1)]
        return gathered

    median = (at((others - 1) // 2) + at(others // 2)) / 2
    # Back to the frame's rows: position order[k] holds sorted row k.
    out_median = np.empty(n)
    out_median[order] = np.where(others >= 1, median, np.nan)
    out_count = np.empty(n, dtype=np.int64)
    out_count[order] = others
    return frame.with_columns(
        pl.Series("_others", out_median).fill_nan(None),
        pl.Series("_count", out_count),
    )


def _codes(frame: pl.DataFrame, columns: list[str]) -> list[pl.Expr]:
    """For each leading part of the ``columns`` of ``frame`` (the first, the first two,
    ...), one integer per distinct combination, null where one of them is null (as a join
    on them would not match): each text column's code among its distinct values (an
    unsigned integer column is its own code), combined as the digits of a mixed-radix
    number."""
    out: list[pl.Expr] = []
    code = pl.lit(0, dtype=pl.UInt64)
    span = 1
    for k, column in enumerate(columns, start=1):
        series = frame.get_column(column)
        if series.dtype.is_unsigned_integer():
            top = series.max()
            radix = 0 if top is None else int(top) + 1  # type: ignore[arg-type]
            digit = pl.col(column).cast(pl.UInt64)
        else:
            values = series.unique().drop_nulls()
            radix = values.len()
            digit = pl.col(column).cast(pl.Enum(values)).to_physical().cast(pl.UInt64)
        if radix == 0:
            code = pl.lit(None, dtype=pl.UInt64)
        else:
            code = code * pl.lit(radix, dtype=pl.UInt64) + digit
        span *= max(radix, 1)
        if span < 2**63:
            out.append(code)
        else:
            whole = pl.all_horizontal(pl.col(c).is_not_null() for c in columns[:k])
            out.append(pl.when(whole).then(pl.struct(columns[:k]).rank("dense").cast(pl.UInt64)))
    return out


def _item_key(items: pl.DataFrame) -> pl.Expr:
    """What names an item across the bills of its tender, as an integer: its code, else
    its material, else its description as a material name (each kind in a range of its
    own), null when it has none of them."""
    codes = items.get_column("item_code").unique().drop_nulls()
    materials = items.get_column("_material").unique().drop_nulls()
    # Descriptions are normalised once each, and only where neither a code nor a material
    # names the item.
    texts = (
        items.filter(
            pl.col("item_code").is_null()
            & pl.col("_material").is_null()
            & pl.col("description").is_not_null()
        )
        .select("description")
        .unique()
        .with_columns(material_key(pl.col("description")).alias("_text"))
    )
    names = texts.get_column("_text").unique().drop_nulls()

    def code(column: pl.Expr, values: pl.Series, offset: int) -> pl.Expr:
        if values.len() == 0:
            return pl.lit(None, dtype=pl.UInt64)
        return column.cast(pl.Enum(values)).to_physical().cast(pl.UInt64) + offset

    text = pl.col("description").replace_strict(
        texts.get_column("description"), texts.get_column("_text"), default=None
    )
    return pl.coalesce(
        code(pl.col("item_code"), codes, 0),
        code(pl.col("_material"), materials, codes.len()),
        code(text, names, codes.len() + materials.len()),
    )


# What unbalanced-bid reads of the bills besides their value_sort columns.
_READ = (
    "tender_id",
    TENDER,
    BIDDER,
    HOLDER,
    "_class",
    "_material",
    "period",
    "_dimension",
    "region",
    "_price",
    "_quantity",
)

# The item's reference is the published price of its key material where there is one.
_PUBLISHED = pl.col("_class").is_not_null() & pl.col("_reference").is_not_null()


@dataclass(frozen=True)
class UnbalancedBid:
    """The winner's bill of quantities puts a large share of its value in items priced far
    above their reference and another large share in items priced far below it.

    ## What it flags
    Tenders whose winning bill (the contract holder's) has at least `min_items` items
    compared with a reference, of which items priced above `high` x their reference and
    items priced below `low` x their reference both hold a large share of the compared
    value: larger, on the smaller of the two shares, than the upper fence of all bills
    assessed (or `threshold`).

    ## Why it is a risk
    An unbalanced bid keeps its total competitive while moving money between items: up on
    items paid early (mobilisation, earthworks: front-loading) or whose quantities the
    bidder expects to grow, down on items paid late or expected to shrink or be cut. The
    contractor is paid more than the bid promised once quantities change (and change
    orders do the rest), the buyer finances the works early, and an item priced below cost
    invites skimping on it. Cattell, Bowen & Kaka (2007) review the models bidders use to
    unbalance bids. Under the bill-of-quantities code GB 50500-2013 every bidder prices the
    items of the buyer's bill as listed (same codes, descriptions, units and quantities), so
    that the bills can be compared rate by rate and an unbalanced one seen.

    ## Method
    Every bidder's bill is compared item by item with a reference: the reference price
    (信息价) of the item's material, region and month for key materials (asphalt, cement,
    steel, aggregate, concrete) where one is published, else the median unit price of the
    other bidders for the same item in the same tender (same item code, else the same
    material or description, in the same unit dimension, prices per base unit), when at
    least `min_peers` other bidders priced it. r = price / reference. Each item weighs its
    value, unit price x quantity (items without a quantity are not weighed). Of a bill's
    compared value, the high share lies in items with r > `high` and the low share in items
    with r < `low`; the statistic is min(high share, low share), which is zero unless both
    kinds are present: a bill that is dear or cheap throughout is not unbalanced. Bills
    with at least `min_items` compared items are assessed. The limit is the upper Tukey
    fence Q3 + `fence` x IQR of the statistic over every bill assessed (winners' and
    losers'), raised to `min_share` (most honest bills score 0, which leaves the fence at
    0), or a fixed `threshold`; it needs `min_comparable` bills. Only the contract holder's
    bill is flagged, where its statistic exceeds the limit. Score: the bill's mid-rank
    percentile of the statistic among all bills assessed.

    ## Evidence
    The high and low shares, the statistic, the limit and how it was set, the percentile,
    the items compared and their value, the bill's value, and the items furthest from
    their reference (code, material, description, unit, price, reference in the item's
    unit, ratio, what the reference is, value).

    ## Parameters
    - `high`: an item is priced high when its price is more than this times its reference.
    - `low`: an item is priced low when its price is less than this times its reference.
    - `threshold`: fixed limit on min(high share, low share) replacing the fence, e.g. 0.1
      (None: fence).
    - `fence`: Tukey multiplier of the interquartile range of the statistic.
    - `min_share`: the least limit: the fence is raised to this share of the compared value.
    - `min_items`: fewest items compared with a reference a bill needs to be assessed.
    - `min_peers`: fewest other bidders that must price an item for their median to be its
      reference.
    - `min_comparable`: fewest bills assessed that a data-driven fence needs.

    ## Known false positives
    A bidder with a real cost advantage on some items (its own quarry or plant) and a
    weakness on others; a reference price that is material-only set against an all-in unit
    rate (综合单价, which includes labour, plant and overheads) prices key-material items
    high; items the other bidders misread. In a tender with few bidders the median of the
    others is itself noisy. The flag is a lead for the contract's change orders and
    quantity variations, above all on the items priced high.

    ## References
    - Cattell, D. W., Bowen, P. A. & Kaka, A. P. (2007). Review of unbalanced bidding models
      in construction. Journal of Construction Engineering and Management 133(8), 562-573.
    - GB 50500-2013 建设工程工程量清单计价规范 (Code of valuation with bill of quantities of
      construction works).
    """

    high: float = 1.5
    low: float = 0.67
    threshold: float | None = None
    fence: float = 1.5
    min_share: float = 0.05
    min_items: int = 4
    min_peers: int = 2
    min_comparable: int = 30

    name: ClassVar[str] = "unbalanced-bid"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset({"items.unit_price"})
    # A known strategy of skilled bidders as well as a way to be paid twice: it counts less
    # than a price the material cannot be bought at.
    default_weight: ClassVar[float] = 0.75
    family: ClassVar[Family] = "materials"

    def __post_init__(self) -> None:
        if not self.high > 1:
            raise ValueError(f"high must be > 1, got {self.high}")
        if not 0 < self.low < 1:
            raise ValueError(f"low must be in (0, 1), got {self.low}")
        if self.threshold is not None and not 0 < self.threshold <= 0.5:
            raise ValueError(
                f"threshold must be in (0, 0.5] (the smaller of two shares), got {self.threshold}"
            )
        if self.fence < 0:
            raise ValueError(f"fence must be >= 0, got {self.fence}")
        if not 0 <= self.min_share <= 0.5:
            raise ValueError(f"min_share must be in [0, 0.5], got {self.min_share}")
        if self.min_items < 2:
            raise ValueError(f"min_items must be >= 2, got {self.min_items}")
        if self.min_peers < 1:
            raise ValueError(f"min_peers must be >= 1, got {self.min_peers}")
        if self.min_comparable < 4:
            raise ValueError(f"min_comparable must be >= 4, got {self.min_comparable}")

    def detect(self, data: Dataset) -> Findings:
        bills, notes, priced = priced_bills(data)
        if priced == 0:
            raise NotComputable(
                f"no item has a unit and a positive unit price ({data.items.height} item rows)"
            )
        # The columns read below, before the rows are filtered (which copies them).
        read = [*_READ, *(c for c in bills.columns if c in VALUE_ORDER)]
        bills = bills.select(read).filter(pl.col(BIDDER).is_not_null())
        if bills.height == 0:
            raise NotComputable("no priced item belongs to a known bidder's bill")
        rated = self._rated(bills, data)
        bill = pl.col("_value").filter(pl.col("_r").is_not_null())
        r = pl.col("_r").filter(pl.col("_r").is_not_null() & pl.col("_value").is_not_null())
        per_bill = (
            value_sort(
                rated, "tender_id", BIDDER, carry=["tender_id", BIDDER, HOLDER, "_r", "_value"]
            )
            .group_by("tender_id", BIDDER)
            .agg(
                pl.col(HOLDER).first(),
                r.len().alias("items"),
                pl.col("_value").sum().alias("bill_value"),
                bill.sum().alias("compared_value"),
                pl.col("_value").filter(pl.col("_r") > self.high).sum().alias("_high"),
                pl.col("_value").filter(pl.col("_r") < self.low).sum().alias("_low"),
            )
            .filter((pl.col("items") >= self.min_items) & (pl.col("compared_value") > 0))
            .with_columns(
                (pl.col("_high") / pl.col("compared_value")).alias("high_share"),
                (pl.col("_low") / pl.col("compared_value")).alias("low_share"),
            )
            .with_columns(pl.min_horizontal("high_share", "low_share").alias("value"))
        )
        if per_bill.height == 0:
            raise NotComputable(
                f"no bill has {self.min_items}+ items with a quantity and a reference (a "
                f"published reference price, or the prices of {self.min_peers}+ other "
                "bidders for the same item)"
            )
        count = per_bill.height
        if self.threshold is None:
            if count < self.min_comparable:
                raise NotComputable(
                    f"needs at least {self.min_comparable} bills with {self.min_items}+ "
                    f"compared items for a data-driven fence, found {count}; set `threshold` "
                    f"under [detectors.{self.name}] to use a fixed limit, or lower "
                    "`min_comparable`"
                )
            q1 = per_bill.get_column("value").quantile(0.25, "linear") or 0.0
            q3 = per_bill.get_column("value").quantile(0.75, "linear") or 0.0
            fence = q3 + self.fence * (q3 - q1)
            limit = max(fence, self.min_share)
            how = (
                f"upper fence of {count} bills"
                if fence >= self.min_share
                else f"the least share, above the fence of {count} bills ({fence:.3g})"
            )
        else:
            limit, how = self.threshold, "fixed threshold"
        per_bill = per_bill.with_columns(
            ((pl.col("value").rank("average") - 0.5) / count).alias("_pct")
        )
        winners = per_bill.filter((pl.col(BIDDER) == pl.col(HOLDER)).fill_null(False))
        flagged = winners.filter(pl.col("value") > limit)
        shown = self._shown(rated, flagged)
        flagged = flagged.join(shown, on=["tender_id", BIDDER], how="left")
        return build(
            flagged,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=pl.col("_pct"),
            value=pl.col("value"),
            threshold=pl.lit(limit),
            message=pl.format(
                "unbalanced winning bill: {}% of its compared value in items priced above {}x "
                "their reference and {}% below {}x (the smaller share, {}%, > {}%, {})",
                sig(pl.col("high_share") * 100, 3),
                pl.lit(self.high),
                sig(pl.col("low_share") * 100, 3),
                pl.lit(self.low),
                sig(pl.col("value") * 100, 3),
                pl.lit(float(f"{limit * 100:.4g}")),
                pl.lit(how),
            ),
            evidence={
                "contract_holder": pl.col(BIDDER),
                "high_share": pl.col("high_share"),
                "low_share": pl.col("low_share"),
                "statistic": pl.col("value"),
                "limit": pl.lit(limit),
                "limit_from": pl.lit(how),
                "percentile": pl.col("_pct"),
                "bills_assessed": pl.lit(count),
                "items_compared": pl.col("items"),
                "compared_value": pl.col("compared_value"),
                "bill_value": pl.col("bill_value"),
                "items": pl.col("shown"),
            },
            firms=pl.concat_list(pl.col(BIDDER)),
            assessed=winners.get_column("tender_id"),
            notes=(*notes, *self._notes(rated)),
        )

    def _rated(self, bills: pl.DataFrame, data: Dataset) -> pl.DataFrame:
        """Every item of every bill with _ref (per base unit), _peers, _r and _value."""
        # A published reference is read for key materials alone (_PUBLISHED): the others
        # are not looked up.
        is_key = bills.get_column("_class").is_not_null()
        looked_up = with_reference(
            bills.select("_material", "period", "_dimension", "region").filter(is_key),
            data,
            reasons=False,
        ).get_column("_reference")
        reference = (
            pl.select(pl.repeat(None, bills.height, dtype=pl.Float64))
            .to_series()
            .scatter(is_key.arg_true(), looked_up)
            .alias("_reference")
        )
        keyed = bills.with_columns(reference)
        keyed = keyed.with_columns(_item_key(keyed).alias("_key"))
        # The item (tender, key, dimension) and the bill's entry for it (the item and the
        # bidder) as integer codes, null where a part is null so that they join as the text
        # would: sorting and joining on them is several times faster than on the strings.
        on = [TENDER, "_key", "_dimension"]
        *_, item, entry = _codes(keyed, [*on, BIDDER])
        keyed = keyed.with_columns(item.alias("_item"), entry.alias("_entry")).drop("_key")
        # A bidder's own price for an item: the median of its prices for it, which is the
        # price itself for all but the few items a bill lists twice.
        entries = keyed.filter(pl.col("_entry").is_not_null()).select(
            "_item", "_entry", pl.col("_price").alias("_own")
        )
        twice = entries.get_column("_entry").is_duplicated()
        own = pl.concat(
            [
                entries.filter(~twice),
                entries.filter(twice).group_by("_item", "_entry").agg(pl.col("_own").median()),
            ]
        )
        peers = median_of_others(own, ["_item"], "_entry", "_own").select(
            "_entry", pl.col("_others").alias("_median"), pl.col("_count").alias("_peers")
        )
        if own.height == keyed.height:
            # Every item is its bill's only entry for it, in the same order: no join.
            keyed = keyed.with_columns(peers.get_column("_median"), peers.get_column("_peers"))
        else:
            keyed = keyed.join(peers, on="_entry", how="left", maintain_order="left")
        by_peers = (pl.col("_peers") >= self.min_peers).fill_null(False)
        return (
            keyed.drop("_item", "_entry")
            .with_columns(
                pl.when(_PUBLISHED)
                .then(pl.col("_reference"))
                .when(by_peers)
                .then(pl.col("_median"))
                .alias("_ref")
            )
            .with_columns(
                (pl.col("_price") / pl.col("_ref")).alias("_r"),
                (pl.col("_price") * pl.col("_quantity")).alias("_value"),
            )
        )

    def _shown(self, rated: pl.DataFrame, flagged: pl.DataFrame) -> pl.DataFrame:
        """tender_id, _bidder, shown: the flagged bills' items priced high or low, furthest
        from their reference first."""
        off = (pl.col("_r") > self.high) | (pl.col("_r") < self.low)
        items = (
            rated.join(flagged.select("tender_id", BIDDER), on=["tender_id", BIDDER], how="semi")
            .filter(off.fill_null(False))
            .with_columns(
                pl.col("_r").log().abs().alias("_far"),
                pl.when(_PUBLISHED)
                .then(pl.lit("reference price"))
                .otherwise(pl.format("median of {} other bids", pl.col("_peers")))
                .alias("_basis"),
            )
        )
        # Furthest first: sorted on minus the distance.
        items = value_sort(items.with_columns(-pl.col("_far")), "tender_id", BIDDER, "_far")
        return items.group_by("tender_id", BIDDER).agg(
            pl.struct(
                item_code=pl.col("item_code"),
                material=pl.col("material"),
                description=pl.col("description"),
                unit=pl.col("unit"),
                unit_price=pl.col("unit_price"),
                reference=pl.col("_ref") * pl.col("unit_price") / pl.col("_price"),
                ratio=pl.col("_r"),
                reference_is=pl.col("_basis"),
                quantity=pl.col("quantity"),
                value=pl.col("_value"),
            )
            .head(_SHOWN)
            .alias("shown")
        )

    def _notes(self, rated: pl.DataFrame) -> tuple[str, ...]:
        notes = []
        without = rated.filter(pl.col("_r").is_null()).height
        if without:
            notes.append(
                f"{without} of {rated.height} priced items have no reference (no published "
                f"reference price, and fewer than {self.min_peers} other bidders priced the "
                "same item); they are not compared"
            )
        unweighed = rated.filter(pl.col("_r").is_not_null() & pl.col("_value").is_null()).height
        if unweighed:
            notes.append(f"{unweighed} compared items have no quantity and carry no weight")
        return tuple(notes)
