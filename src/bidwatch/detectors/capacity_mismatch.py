"""A contract far larger than its contractor's registered capital, or held by a firm founded
just before the award."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from bidwatch.detectors._after import contractors
from bidwatch.detectors._base import Family, NotComputable, sig
from bidwatch.detectors._contracts import winning_amounts
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset


@dataclass(frozen=True)
class CapacityMismatch:
    """The contract is far beyond its contractor's registered capital, or the contractor was
    founded shortly before the award.

    ## What it flags
    Awarded tenders whose contract value (contract_amount, else the winning bid) exceeds
    `max_capital_ratio` times the contractor's registered capital, or whose contractor was
    founded fewer than `min_age_days` before the award (awarded_at, else signed_at).

    ## Why it is a risk
    A firm that cannot carry the works subcontracts them whole or in parts (转包, 违法分包),
    lends its name to someone who can (挂靠), or saves on what it builds. A firm formed for
    one tender is a classic shell: it has no record to lose. The Construction Law
    (建筑法) art. 13 grades construction firms by registered capital, professional staff,
    equipment and completed works and lets them work only within their grade, and the
    qualification standards (建筑业企业资质标准) tie the size of works a grade may contract
    to such conditions; the Bidding Law (招标投标法) art. 26 requires a bidder to be able to
    carry out the project. The ratio limit here is a screening rule, not a legal one: no
    law fixes a contract-to-capital ratio, and the default of 10 marks contracts an order
    of magnitude beyond what the firm's owners put at stake.

    ## Method
    The contractor of each awarded tender is the contract's contractor, else the winning
    bidder, as resolved into firms; its registry row is the firms row whose firm_id is that
    resolved firm id. ratio = contract value / registered_capital, for a capital above
    zero; age = days from founded_on to the award date (awarded_at, else signed_at). A
    founding date after the award is a re-registration (a new founding date for an old
    business), a registry row matched to the wrong firm, or an error: such tenders are
    counted in a note and not judged on age. A tender is flagged when ratio >
    `max_capital_ratio` or 0 <= age < `min_age_days`. Score: 1 - (1 - c)(1 - y) with c =
    1 - `max_capital_ratio` / ratio when the ratio is crossed (0.5 at twice the limit, 0.9
    at ten times) and y = 1 - age / `min_age_days` when the age is crossed (1 for a firm
    founded on the award day), each 0 otherwise. value and threshold: the ratio
    and `max_capital_ratio` where the ratio is crossed, else the age and `min_age_days`.

    ## Evidence
    The contractor, the contract value and where it comes from, the registered capital and
    ratio, the founding date, award date and age, and which rules were crossed.

    ## Parameters
    - `max_capital_ratio`: largest contract value, in multiples of the contractor's
      registered capital, that passes.
    - `min_age_days`: fewest days between a contractor's founding and the award that pass.

    ## Known false positives
    Registered capital is subscribed, not paid (认缴), and says little about a subsidiary
    backed by its group; joint ventures where one member's capital is recorded; a firm
    re-registered after a merger or a change of form (a new founding date for an old
    business). Registry capital in another unit than the contracts (元 vs 万元) makes every
    ratio wrong by 10,000: check the header's unit.

    ## References
    - 中华人民共和国建筑法 (1997, rev. 2019), art. 13.
    - 中华人民共和国招标投标法 (1999, rev. 2017), art. 26.
    - 建筑业企业资质标准 (住房和城乡建设部, 建市〔2014〕159号).
    """

    max_capital_ratio: float = 10.0
    min_age_days: int = 180

    name: ClassVar[str] = "capacity-mismatch"
    subject: ClassVar[SubjectKind] = "tender"
    # The registry columns are optional to each other; the detector says when neither holds
    # values.
    requires: ClassVar[frozenset[str]] = frozenset({"bids.firm_id"})
    # A registry screen: strong when it fires, often explained by group structure.
    default_weight: ClassVar[float] = 0.75
    family: ClassVar[Family] = "materials"

    def __post_init__(self) -> None:
        if not self.max_capital_ratio > 0:
            raise ValueError(f"max_capital_ratio must be > 0, got {self.max_capital_ratio}")
        if self.min_age_days < 0:
            raise ValueError(f"min_age_days must be >= 0, got {self.min_age_days}")

    def detect(self, data: Dataset) -> Findings:
        if not data.has("firms.registered_capital") and not data.has("firms.founded_on"):
            raise NotComputable(
                f"the firm registry ({data.firms.height} rows) holds neither registered_capital "
                "(注册资本) nor founded_on (成立日期): give a firms table with either to judge "
                "contractors' capacity"
            )
        holders = contractors(data)
        if holders.height == 0:
            raise NotComputable(
                "no tender has a contractor: give contracts with a contractor or mark the "
                "winning bids (is_winner)"
            )
        signed = data.contracts.select(
            "tender_id",
            pl.when(pl.col("contract_amount") > 0).then(pl.col("contract_amount")).alias("_c"),
            "signed_at",
        )
        tenders = data.tenders.select("tender_id", "awarded_at").unique(
            "tender_id", keep="first", maintain_order=True
        )
        registry = data.firms.select(
            "firm_id",
            pl.when(pl.col("registered_capital") > 0)
            .then(pl.col("registered_capital"))
            .alias("_capital"),
            "founded_on",
            pl.lit(True).alias("_listed"),
        ).unique("firm_id", keep="first", maintain_order=True)
        frame = (
            holders.join(signed, on="tender_id", how="left")
            .join(winning_amounts(data), on="tender_id", how="left")
            .join(tenders, on="tender_id", how="left")
            .join(registry, on="firm_id", how="left")
            .with_columns(
                pl.coalesce("_c", "_winning").alias("_value"),
                pl.when(pl.col("_c").is_not_null())
                .then(pl.lit("contract_amount"))
                .otherwise(pl.lit("winning bid"))
                .alias("_value_from"),
                pl.coalesce("awarded_at", "signed_at").alias("_award"),
            )
            .with_columns(
                (pl.col("_value") / pl.col("_capital")).alias("_ratio"),
                (pl.col("_award") - pl.col("founded_on")).dt.total_days().alias("_days"),
            )
            .with_columns(pl.when(pl.col("_days") >= 0).then(pl.col("_days")).alias("_age"))
        )
        judged = pl.col("_ratio").is_not_null() | pl.col("_age").is_not_null()
        assessed = frame.filter(judged)
        notes = self._notes(frame)
        if assessed.height == 0:
            raise NotComputable(
                f"no contractor of {frame.height} awarded tender(s) could be judged: "
                + "; ".join(notes)
            )
        cross_ratio = (pl.col("_ratio") > self.max_capital_ratio).fill_null(False)
        cross_age = (pl.col("_age") < self.min_age_days).fill_null(False)
        flagged = assessed.with_columns(
            cross_ratio.alias("_cross_ratio"), cross_age.alias("_cross_age")
        ).filter(pl.col("_cross_ratio") | pl.col("_cross_age"))
        return self._build(flagged, assessed.get_column("tender_id"), notes)

    def _notes(self, frame: pl.DataFrame) -> tuple[str, ...]:
        notes = []
        unlisted = frame.filter(pl.col("_listed").is_null())
        if unlisted.height:
            firms = unlisted.get_column("firm_id").drop_nulls().unique().sort()
            notes.append(
                f"{unlisted.height} awarded tender(s) are held by {firms.len()} firm(s) not in "
                f"the registry (e.g. {', '.join(firms.head(3).to_list()) or 'unresolved'}): "
                "not judged"
            )
        listed = frame.filter(pl.col("_listed").is_not_null())
        no_capital = listed.filter(pl.col("_ratio").is_null()).height
        if no_capital:
            notes.append(
                f"{no_capital} tender(s) held by registered firms lack a registered_capital "
                "above zero or a contract value: the capital ratio is not judged for them"
            )
        later = listed.filter(pl.col("_days") < 0).height
        if later:
            notes.append(
                f"{later} tender(s) are held by firms whose registry founding date is after the "
                "award (a re-registration, a wrong registry match or an error): not judged on age"
            )
        no_age = listed.filter(pl.col("_days").is_null()).height
        if no_age:
            notes.append(
                f"{no_age} tender(s) held by registered firms lack the firm's founded_on or an "
                "award date (awarded_at, signed_at): the firm's age is not judged for them"
            )
        return tuple(notes)

    def _build(
        self, flagged: pl.DataFrame, assessed: pl.Series, notes: tuple[str, ...]
    ) -> Findings:
        limit = self.max_capital_ratio
        capital = (
            pl.when(pl.col("_cross_ratio")).then(1.0 - limit / pl.col("_ratio")).otherwise(0.0)
        )
        if self.min_age_days > 0:
            young = (1.0 - pl.col("_age") / self.min_age_days).clip(0.0, 1.0)
        else:
            young = pl.lit(1.0)
        youth = pl.when(pl.col("_cross_age")).then(young).otherwise(0.0)
        date = "%Y-%m-%d"
        ratio_text = pl.when(pl.col("_cross_ratio")).then(
            pl.format(
                "{} {} is {} x the contractor's registered capital {} (> {} x)",
                pl.col("_value_from"),
                sig(pl.col("_value"), 6),
                sig(pl.col("_ratio"), 3),
                sig(pl.col("_capital"), 6),
                pl.lit(limit),
            )
        )
        age_text = pl.when(pl.col("_cross_age")).then(
            pl.format(
                "contractor founded {}, {} days before the award on {} (< {} days)",
                pl.col("founded_on").dt.strftime(date),
                pl.col("_age"),
                pl.col("_award").dt.strftime(date),
                pl.lit(self.min_age_days),
            )
        )
        return build(
            flagged,
            detector=self.name,
            kind="tender",
            subject_id=pl.col("tender_id"),
            score=1.0 - (1.0 - capital) * (1.0 - youth),
            value=pl.when(pl.col("_cross_ratio"))
            .then(pl.col("_ratio"))
            .otherwise(pl.col("_age").cast(pl.Float64)),
            threshold=pl.when(pl.col("_cross_ratio"))
            .then(pl.lit(limit, dtype=pl.Float64))
            .otherwise(pl.lit(float(self.min_age_days))),
            message=pl.format(
                "{}: {}",
                pl.col("firm_id"),
                pl.concat_str([ratio_text, age_text], separator="; ", ignore_nulls=True),
            ),
            evidence={
                "contractor": pl.col("firm_id"),
                "value": pl.col("_value"),
                "value_from": pl.col("_value_from"),
                "registered_capital": pl.col("_capital"),
                "capital_ratio": pl.col("_ratio"),
                "max_capital_ratio": pl.lit(limit, dtype=pl.Float64),
                "founded_on": pl.col("founded_on").dt.strftime(date),
                "award_date": pl.col("_award").dt.strftime(date),
                "age_days": pl.col("_days"),
                "min_age_days": pl.lit(self.min_age_days),
                "crossed": pl.concat_list(
                    pl.when(pl.col("_cross_ratio")).then(pl.lit("capital ratio")),
                    pl.when(pl.col("_cross_age")).then(pl.lit("firm age")),
                ).list.drop_nulls(),
            },
            firms=pl.concat_list(pl.col("firm_id")).list.drop_nulls(),
            assessed=assessed,
            notes=notes,
        )
