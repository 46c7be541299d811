"""Key materials in the contractor's bill priced well below the published reference price."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from bidwatch.detectors._after import missing_note, with_reference
from bidwatch.detectors._base import Family, NotComputable, priced_bids, sig
from bidwatch.detectors._bills import (
    BIDDER,
    HOLDER,
    holder_notes,
    priced_bills,
    value_sort,
)
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

# Evidence lists at most this many items per tender (the worst first); the count is given.
_SHOWN = 20


@dataclass(frozen=True)
class BelowReferencePrice:
    """Key materials in the contract holder's bill of quantities are priced well below the
    reference price (信息价) of the tender's region and month.

    ## What it flags
    Tenders whose winner (or contract holder) prices at least one item of a key material
    (asphalt, cement, steel, aggregate, concrete) at less than `max_ratio` of the reference
    price published for that material, region and month, compared per base unit.

    ## Why it is a risk
    A contractor cannot buy the specified material at a price far below the market: a bill
    that prices steel or asphalt there either was never meant to be built as priced (the
    loss is recovered later through change orders and claims) or will be built with less,
    or lesser, material (偷工减料, 以次充好). The PRC Bidding Law (招标投标法) art. 33 forbids
    bidding below cost and art. 41(2) lets no below-cost bid win; the bill-of-quantities
    code GB 50500-2013 likewise says a bid may not be priced below the cost of the works
    (投标报价不得低于工程成本). Reference prices (信息价) are what the construction cost
    offices of each region publish, month by month, as the market price of the main
    materials; buyers' estimates are priced on them.

    ## Method
    Items of the contract holder's bill (the contract's contractor, else the winning
    bidder; a tender whose items name no bidder at all gives only the contract's bill) that
    are key materials (by the words of their material name) and have a unit and a positive
    unit price are put in the base unit of their dimension (元/kg -> 元/t) and matched with
    the reference price of their material, the tender's region (or a price given for every
    region) and the month the tender was priced in (bid deadline, else publication, else
    award), in the same dimension: a price per m3 is never compared with one per t. An item
    without such a reference is never guessed: it is counted in the notes, and a tender
    none of whose key items has one is not assessed. ratio = item price / reference, both
    per base unit; an item with ratio < `max_ratio` is flagged, and a tender with at least
    one flagged item.

    The default 0.8 is a screening threshold, not a proof of loss: reference prices are
    market prices, and a contractor's purchasing discount on them rarely exceeds 10-15%
    (bulk contracts, own quarries or mixing plants); 20% below the reference leaves room for
    that and for a month's price movement.

    Score = 1 - (1 - depth) x exp(-S / (`scale` x V)), in [0, 1): depth = 1 - (lowest
    ratio / `max_ratio`), how far the worst item lies below the limit; S = sum over flagged
    items of (reference - price) x quantity, the money the bill is short of the reference
    on them; V = the contract holder's bid amount, else the contract amount, else the total
    of its priced items. The score grows with the depth of the worst item and with the share
    of the bid the shortfall touches: a shortfall of `scale` of the bid brings the score
    63% of the way from the depth to 1. Items without a quantity add nothing to S.

    ## Evidence
    The flagged items (material, class, code, unit, unit price as given, the reference in
    the item's unit, both per base unit, ratio, quantity, shortfall), how many key items
    were compared, the shortfall S and the bid value V.

    ## Parameters
    - `max_ratio`: flag key-material items priced at less than this share of the reference
      price (0.8: 20% below it).
    - `scale`: shortfall, as a share of the bid value, that takes the score 63% of the way
      from the depth of the worst item to 1.

    ## Known false positives
    A reference price that includes tax (含税价) compared with a bill priced without it, or a
    reference for a different specification named alike (C25 against C50 concrete: the
    material names must match); a contractor with its own quarry, plant or stock bought
    before a price rise; a unit written wrong in the bill (a price per kg given per t shows
    as a ratio near 0.001 — the evidence shows the unit). A flagged tender is a lead for
    the contract's inspections and change orders.

    ## References
    - 中华人民共和国招标投标法 (1999, rev. 2017), arts. 33, 41.
    - 中华人民共和国招标投标法实施条例 (2011, rev. 2019), art. 51(5).
    - GB 50500-2013 建设工程工程量清单计价规范 (Code of valuation with bill of quantities of
      construction works).
    - Decarolis, F. (2014). Awarding price, contract performance, and bids screening:
      evidence from procurement auctions. AEJ: Applied Economics 6(1).
    """

    max_ratio: float = 0.8
    scale: float = 0.02

    name: ClassVar[str] = "below-reference-price"
    subject: ClassVar[SubjectKind] = "tender"
    requires: ClassVar[frozenset[str]] = frozenset(
        {"items.unit_price", "reference_prices.unit_price"}
    )
    # A price the material cannot be bought at, in the bill the works are paid on.
    default_weight: ClassVar[float] = 1.0
    family: ClassVar[Family] = "materials"

    def __post_init__(self) -> None:
        if not 0 < self.max_ratio <= 1:
            raise ValueError(f"max_ratio must be in (0, 1], got {self.max_ratio}")
        if not 0 < self.scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {self.scale}")

    def detect(self, data: Dataset) -> Findings:
        bills, notes, priced = priced_bills(data)
        if priced == 0:
            raise NotComputable(
                f"no item has a unit and a positive unit price ({data.items.height} item rows)"
            )
        key = bills.select("tender_id", BIDDER, HOLDER, "_class").filter(
            pl.col("_class").is_not_null()
        )
        if key.height == 0:
            raise NotComputable(
                f"none of {bills.height} priced items is a key material (asphalt, cement, "
                "steel, aggregate, concrete) by its material name"
            )
        notes += holder_notes(key, "key-material items")
        is_own = (pl.col(BIDDER) == pl.col(HOLDER)).fill_null(False)
        own = bills.filter(is_own)
        compared = with_reference(own.filter(pl.col("_class").is_not_null()), data)
        notes += missing_note(compared, "key-material items of contract holders' bills")
        judged = compared.filter(pl.col("_reference").is_not_null())
        if judged.height == 0:
            raise NotComputable(
                f"no key-material item of a contract holder's bill ({compared.height} items) "
                "has a reference price for its material, region and month: "
                + (notes[-1] if compared.height else "no such item")
            )
        ratio = pl.col("_price") / pl.col("_reference")
        low = pl.col("_ratio") < self.max_ratio
        # Worst first; the content alone orders the rows, so that sums do not depend on the
        # order of the input.
        judged = value_sort(
            judged.with_columns(ratio.alias("_ratio")).with_columns(
                pl.when(low)
                .then((pl.col("_reference") - pl.col("_price")) * pl.col("_quantity"))
                .alias("_short")
            ),
            "tender_id",
            "_ratio",
        )
        item = pl.struct(
            material=pl.col("material"),
            material_class=pl.col("_class"),
            item_code=pl.col("item_code"),
            unit=pl.col("unit"),
            unit_price=pl.col("unit_price"),
            reference=pl.col("_reference") * pl.col("unit_price") / pl.col("_price"),
            base_unit=pl.col("_base"),
            price_per_base_unit=pl.col("_price"),
            reference_per_base_unit=pl.col("_reference"),
            ratio=pl.col("_ratio"),
            quantity=pl.col("quantity"),
            shortfall=pl.col("_short"),
        )
        per_tender = judged.group_by("tender_id").agg(
            pl.col(HOLDER).first(),
            pl.len().alias("compared"),
            low.sum().alias("flagged"),
            pl.col("_ratio").min().alias("lowest"),
            pl.col("_short").sum().alias("S"),
            item.filter(low).head(_SHOWN).alias("items"),
        )
        flagged = per_tender.filter(pl.col("flagged") > 0)
        flagged = flagged.join(self._bid_values(data, own), on="tender_id", how="left")
        share = pl.when(pl.col("V") > 0).then(pl.col("S") / pl.col("V")).otherwise(0.0)
        depth = (1 - pl.col("lowest") / self.max_ratio).clip(0.0, 1.0)
        score = 1 - (1 - depth) * (-share / self.scale).exp()
        worst = pl.col("items").list.first().struct
        return build(
            flagged,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=score,
            value=pl.col("lowest"),
            threshold=pl.lit(self.max_ratio),
            message=pl.format(
                "{} of {} key-material items of the contract holder's bill priced below {}% "
                "of the reference price; lowest: {} at {} of the reference ({} vs {} per {}){}",
                "flagged",
                "compared",
                pl.lit(round(self.max_ratio * 100, 6)),
                worst.field("material"),
                sig(pl.col("lowest"), 3),
                sig(worst.field("unit_price")),
                sig(worst.field("reference")),
                worst.field("unit"),
                pl.when(pl.col("V") > 0)
                .then(
                    pl.format(
                        "; {}% of the bid short of the reference",
                        sig(pl.col("S") / pl.col("V") * 100, 3),
                    )
                )
                .otherwise(pl.lit("")),
            ),
            evidence={
                "contract_holder": pl.col(HOLDER),
                "max_ratio": pl.lit(self.max_ratio),
                "items_compared": pl.col("compared"),
                "items_flagged": pl.col("flagged"),
                "shortfall": pl.col("S"),
                "bid_value": pl.col("V"),
                "bid_value_from": pl.col("V_from"),
                "items": pl.col("items"),
            },
            firms=pl.concat_list(pl.col(HOLDER)),
            assessed=per_tender.get_column("tender_id"),
            notes=notes,
        )

    @staticmethod
    def _bid_values(data: Dataset, own: pl.DataFrame) -> pl.DataFrame:
        """tender_id, V (the value the shortfall is a share of) and V_from (where it came
        from): the contract holder's bid, else the contract amount, else its bill's total."""
        holders = own.select("tender_id", HOLDER).unique()
        bids = (
            priced_bids(data)
            .select("tender_id", "firm_id", "amount")
            .filter(pl.col("firm_id").is_not_null())
            .join(holders, left_on=["tender_id", "firm_id"], right_on=["tender_id", HOLDER])
            .group_by("tender_id")
            .agg(pl.col("amount").max().alias("_bid"))
            if "firm_id" in data.bids.columns
            else pl.DataFrame(schema={"tender_id": pl.String, "_bid": pl.Float64})
        )
        contracts = (
            data.contracts.filter(pl.col("contract_amount") > 0)
            .group_by("tender_id")
            .agg(pl.col("contract_amount").max().alias("_contract"))
        )
        bill = (
            value_sort(own, "tender_id", carry=["tender_id", "_price", "_quantity"])
            .group_by("tender_id")
            .agg((pl.col("_price") * pl.col("_quantity")).sum().alias("_bill"))
        )
        return (
            holders.select("tender_id")
            .join(bids, on="tender_id", how="left")
            .join(contracts, on="tender_id", how="left")
            .join(bill, on="tender_id", how="left")
            .select(
                "tender_id",
                pl.coalesce(
                    pl.when(pl.col("_bid") > 0).then("_bid"),
                    "_contract",
                    pl.when(pl.col("_bill") > 0).then("_bill"),
                ).alias("V"),
                pl.when(pl.col("_bid") > 0)
                .then(pl.lit("bid"))
                .when(pl.col("_contract").is_not_null())
                .then(pl.lit("contract"))
                .when(pl.col("_bill") > 0)
                .then(pl.lit("bill of quantities"))
                .alias("V_from"),
            )
        )
