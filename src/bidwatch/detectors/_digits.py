"""Second-digit tests of bid amounts per subject, shared by benford-firm and benford-buyer.

A subject's bids are tested on their second significant digit given their first: the
expected count of each second digit is the sum, over the subject's bids, of its chance
given that bid's first digit, under the other bids of the input or under Benford's law.
Conditioning on the first digit makes the test blind to the range of amounts a subject
bids in. Bids of one tender cluster around its estimate and share digits: the statistic
is divided by a design effect for the subject's own clusters of bids (with the
within-tender correlation estimated from the whole input) and for the uncertainty of a
reference drawn from the other bids. Everything is a polars group-by or a numpy array
over all subjects at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats

from bidwatch.detectors._base import NotComputable, sig
from bidwatch.findings import Findings, SubjectKind, build

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset

# Benford's law for the second digit b given the first digit a: P(b | a), 9 x 10.
_A = np.arange(1, 10)[:, None]
_B = np.arange(10)[None, :]
BENFORD_SECOND: np.ndarray = np.log10(1 + 1 / (10 * _A + _B)) / np.log10(1 + 1 / _A)
# Pseudo-bids per first digit, spread as Benford's law, added to the input's counts so
# that a first digit seldom seen in the input still has a usable reference.
PRIOR_BIDS = 10.0
DF = 9
REFERENCES = ("market", "benford")


def leading_two(amount: pl.Expr) -> pl.Expr:
    """The first two significant digits of a positive amount, 10..99 (1,234,567 -> 12)."""
    scaled = amount / pl.lit(10.0).pow(amount.log10().floor() - 1)
    # Rounded first, so that 1,199,999.9999999998 (1.2 million in floating point) reads 12;
    # a logarithm off by one ulp at a power of ten is put back into range.
    scaled = scaled.round(6)
    scaled = (
        pl.when(scaled >= 100)
        .then(scaled / 10)
        .when(scaled < 10)
        .then(scaled * 10)
        .otherwise(scaled)
    )
    return scaled.floor().cast(pl.Int64).clip(10, 99)


def _grid(
    index: np.ndarray, d1: np.ndarray, d2: np.ndarray, count: np.ndarray, size: int
) -> np.ndarray:
    """Counts as a size x 9 x 10 array (rows index, first digit, second digit)."""
    flat = np.bincount(index * 90 + (d1 - 1) * 10 + d2, weights=count, minlength=size * 90)
    return flat.reshape(size, 9, 10)


def _codes(values: pl.Series) -> tuple[npt.NDArray[np.int64], pl.Series]:
    """Each value's 0-based position among the sorted distinct values (null first, as
    polars sorts), and those values."""
    distinct = values.unique().sort()
    if values.dtype == pl.String:
        # A lookup among the few distinct values: ranking the text row by row is slower.
        codes = values.cast(pl.Enum(distinct.drop_nulls())).to_physical().cast(pl.Int64)
        if values.has_nulls():
            codes = codes.fill_null(-1) + 1
    else:
        codes = (values.rank("dense") - 1).cast(pl.Int64).fill_null(-1) + int(values.has_nulls())
    return np.asarray(codes.to_numpy(), dtype=np.int64), distinct


def clustering(digits: pl.DataFrame, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``coded_clustering`` of a frame of tender_id, d1 and d2 (one row per bid)."""
    tender, _ = _codes(digits.get_column("tender_id"))
    d1 = np.asarray(digits.get_column("d1").to_numpy(), dtype=np.int64)
    d2 = np.asarray(digits.get_column("d2").to_numpy(), dtype=np.int64)
    return coded_clustering(tender, d1, d2, reference)


def coded_clustering(
    tender: npt.NDArray[np.int64],
    d1: npt.NDArray[np.int64],
    d2: npt.NDArray[np.int64],
    reference: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Correlation of second digits within tenders, and the design effect it gives the
    whole input, per first digit (9 values each).

    Bids of one tender with one first digit a form a cluster of m bids. The count o_k of
    its bids with second digit k has mean e_k = m P(k | a) and, for independent bids,
    variance v_k = m P(k | a) (1 - P(k | a)); with correlation rho_a between them,
    E[sum_k (o_k - e_k)^2] = (1 + rho_a (m - 1)) sum_k v_k. rho_a is the moment estimate
    over every cluster of 2+ bids in the input (0 where there is none). It is larger for
    low first digits, whose second digit spans a wider share of the amount. The input's
    design effect for first digit a is sum m (1 + rho_a (m - 1)) / sum m over its clusters.

    ``tender`` codes tenders in the order of their ids (``_codes``): clusters are taken in
    the order of tender, then first digit, which the sums below add up in.
    """
    rho, deff = np.zeros(9), np.ones(9)
    if tender.shape[0] == 0:
        return rho, deff
    cluster, row = np.unique(tender * 9 + (d1 - 1), return_inverse=True)
    first = cluster % 9
    observed = (
        np.bincount(row.ravel() * 10 + d2, minlength=cluster.shape[0] * 10)
        .reshape(-1, 10)
        .astype(float)
    )
    m = observed.sum(axis=1)
    chance = reference[first]
    variance = (m[:, None] * chance * (1 - chance)).sum(axis=1)
    excess = ((observed - m[:, None] * chance) ** 2).sum(axis=1) - variance
    several = m >= 2
    num = np.bincount(first[several], weights=excess[several], minlength=9)
    den = np.bincount(first[several], weights=((m - 1) * variance)[several], minlength=9)
    np.divide(num, den, out=rho, where=den > 0)
    rho = np.clip(rho, 0.0, None)
    inflated = np.bincount(first, weights=m * (1 + rho[first] * (m - 1)), minlength=9)
    bids = np.bincount(first, weights=m, minlength=9)
    np.divide(inflated, bids, out=deff, where=bids > 0)
    return rho, deff


@dataclass(frozen=True)
class DigitScreen:
    """Base of the digit tests: a subclass says whose bids are tested (``bids``)."""

    min_bids: int = 30  # each test sets its own default
    max_q: float = 0.05
    reference: str = "market"

    name: ClassVar[str]
    subject: ClassVar[SubjectKind]
    requires: ClassVar[frozenset[str]]
    # Set by each test (0.25): digit tests are weak evidence in procurement. Honest bids
    # computed from unit rates, price lists and rounding habits deviate too, and covers
    # made by scaling the winner's bid keep natural digits.
    default_weight: ClassVar[float]
    label: ClassVar[str]

    def __post_init__(self) -> None:
        if self.min_bids < 10:
            raise ValueError(f"min_bids must be >= 10, got {self.min_bids}")
        if not 0 < self.max_q <= 1:
            raise ValueError(f"max_q must be in (0, 1], got {self.max_q}")
        if self.reference not in REFERENCES:
            raise ValueError(
                f"reference must be one of {', '.join(REFERENCES)}, got {self.reference!r}"
            )

    def bids(self, data: Dataset) -> pl.DataFrame:
        """tender_id, subject (the id tested) and amount of every bid to test."""
        raise NotImplementedError

    def detect(self, data: Dataset) -> Findings:
        return digit_findings(self, data)


def digit_findings(screen: DigitScreen, data: Dataset) -> Findings:
    """Test each subject's second digits; flag those whose BH q-value is <= max_q."""
    amount = pl.col("amount")
    bids = (
        screen.bids(data)
        .filter(amount.is_finite() & (amount > 0) & pl.col("subject").is_not_null())
        .with_columns(leading_two(amount).alias("_dd"))
        .select(
            "tender_id",
            "subject",
            (pl.col("_dd") // 10).alias("d1"),
            (pl.col("_dd") % 10).alias("d2"),
            (amount == amount.round_sig_figs(2)).alias("_round"),
        )
    )
    if bids.height == 0:
        raise NotComputable(f"no bid with an amount has a {screen.label}")
    d1 = bids.get_column("d1").to_numpy().astype(np.int64)
    d2 = bids.get_column("d2").to_numpy().astype(np.int64)
    tender, _ = _codes(bids.get_column("tender_id"))
    subject, subjects = _codes(bids.get_column("subject"))
    ones = np.ones(d1.shape[0], dtype=np.int64)
    total = _grid(np.zeros_like(d1), d1, d2, ones, 1)[0]
    pooled = (total + PRIOR_BIDS * BENFORD_SECOND) / (total.sum(axis=1, keepdims=True) + PRIOR_BIDS)
    rho, market_deff = coded_clustering(tender, d1, d2, pooled)

    span = int(tender.max()) + 1
    count = np.bincount(subject, minlength=subjects.len())
    # Distinct (subject, tender) pairs by sorting one integer key (numpy's unique hashes
    # integers when asked for the values alone, several times slower than a sort here).
    pairs = np.sort(subject * span + tender)
    pairs = pairs[np.append(True, pairs[1:] != pairs[:-1])] // span
    per_subject = pl.DataFrame(
        {
            "subject": subjects,
            "n": pl.Series(count, dtype=pl.UInt32),
            "tenders": pl.Series(np.bincount(pairs, minlength=subjects.len()), dtype=pl.UInt32),
            "two_digit_bids": pl.Series(
                np.bincount(
                    subject, weights=bids.get_column("_round").to_numpy(), minlength=subjects.len()
                ),
                dtype=pl.UInt32,
            ),
        }
    ).filter(pl.col("n") >= screen.min_bids)
    if per_subject.height == 0:
        most = int(count.max())
        raise NotComputable(
            f"no {screen.label} has {screen.min_bids}+ bids with amounts (the most is "
            f"{most}); lower `min_bids`"
        )
    # The tested subjects' bids, each labelled by its subject's row in per_subject (which
    # is sorted, as the subject codes are).
    position = np.full(subjects.len(), -1, dtype=np.int64)
    found = subjects.search_sorted(per_subject.get_column("subject"))
    position[np.asarray(found.to_numpy(), dtype=np.int64)] = np.arange(per_subject.height)
    row = position[subject]
    keep = row >= 0
    row, tender_kept, d1_kept, d2_kept = row[keep], tender[keep], d1[keep], d2[keep]
    rhos = pl.DataFrame({"d1": np.arange(1, 10), "_rho": rho})
    inflation = pl.col("m") * (1 + pl.col("_rho") * (pl.col("m") - 1))
    # Design effect: the variance of the subject's counts over that of independent bids,
    # sum over its clusters of m (1 + rho_a (m - 1)) over its bids. Cluster sizes m per
    # (subject, tender, first digit) by one integer key; the sum of the sorted inflations
    # does not depend on the order the clusters come in.
    cluster, members = np.unique(
        (row * span + tender_kept) * 9 + (d1_kept - 1), return_inverse=True
    )
    sizes = (
        pl.DataFrame(
            {
                "_s": cluster // 9 // span,
                "d1": cluster % 9 + 1,
                "m": pl.Series(np.bincount(members.ravel()), dtype=pl.UInt32),
            }
        )
        .join(rhos, on="d1")
        .group_by("_s")
        .agg((inflation.sort().sum() / pl.col("m").sum()).alias("_own_deff"))
        .sort("_s")
    )
    per_subject = per_subject.with_columns(sizes.get_column("_own_deff"))
    own = _grid(row, d1_kept, d2_kept, np.ones(row.shape[0], dtype=np.int64), per_subject.height)
    first = own.sum(axis=2)
    observed = own.sum(axis=1)
    if screen.reference == "market":
        # The subject is compared with every other bid of the input.
        rest = total[None] - own
        size = rest.sum(axis=2) + PRIOR_BIDS
        chance_of = (rest + PRIOR_BIDS * BENFORD_SECOND[None]) / size[:, :, None]
    else:
        chance_of = np.broadcast_to(BENFORD_SECOND[None], own.shape)
    expected = np.einsum("sa,sab->sb", first, chance_of)
    chi2 = ((observed - expected) ** 2 / expected).sum(axis=1)
    # Variance of observed - expected over that of independent bids against a known law:
    # the subject's own clustering, plus the uncertainty of a reference estimated from
    # the other bids (which cluster too), as in a two-sample test.
    spread = (chance_of * (1 - chance_of)).sum(axis=2)
    independent = (first * spread).sum(axis=1)
    variance = per_subject.get_column("_own_deff").to_numpy() * independent
    if screen.reference == "market":
        variance = variance + (first**2 * spread * market_deff[None] / size).sum(axis=1)
    deff = np.maximum(1.0, variance / independent)
    chance = stats.chi2.sf(chi2 / deff, DF)
    q = stats.false_discovery_control(chance, method="bh")
    pearson = (observed - expected) / np.sqrt(expected)
    per_subject = per_subject.with_columns(
        pl.Series("observed", observed.astype(np.int64)),
        pl.Series("expected", expected.round(3)),
        pl.Series("first_digits", first.astype(np.int64)),
        pl.Series("chi_square", chi2),
        pl.Series("design_effect", deff),
        pl.Series("chance", chance),
        pl.Series("q", q),
        pl.Series("_digit", pearson.argmax(axis=1)),
    )
    flagged = per_subject.filter(pl.col("q") <= screen.max_q).with_columns(
        pl.col("observed").arr.get(pl.col("_digit")).alias("_seen"),
        pl.col("expected").arr.get(pl.col("_digit")).alias("_expected"),
    )
    against = "the other bids of the input" if screen.reference == "market" else "Benford's law"
    return build(
        flagged,
        detector=screen.name,
        kind=screen.subject,
        subject_id=pl.col("subject"),
        score=1 - pl.col("q"),
        value=pl.col("q"),
        threshold=pl.lit(screen.max_q),
        message=pl.format(
            "second digits of {} bids depart from {} (digit {}: {} seen, {} expected; "
            "chi-square {} / design effect {}, df 9, chance {}), q {} <= {}",
            "n",
            pl.lit(against),
            "_digit",
            "_seen",
            sig(pl.col("_expected"), 3),
            sig(pl.col("chi_square"), 3),
            sig(pl.col("design_effect"), 3),
            sig(pl.col("chance"), 2),
            sig(pl.col("q"), 2),
            pl.lit(screen.max_q),
        ),
        evidence={
            "digit": pl.lit("second, given the first"),
            "reference": pl.lit(screen.reference),
            "bids": pl.col("n"),
            "tenders": pl.col("tenders"),
            "observed": pl.col("observed"),
            "expected": pl.col("expected"),
            "first_digits": pl.col("first_digits"),
            "two_digit_bids": pl.col("two_digit_bids"),
            "chi_square": pl.col("chi_square"),
            "design_effect": pl.col("design_effect"),
            "within_tender_correlation": pl.lit(rho.round(6).tolist(), dtype=pl.List(pl.Float64)),
            "df": pl.lit(DF),
            "chance": pl.col("chance"),
            "q": pl.col("q"),
        },
        firms=pl.concat_list(pl.col("subject")) if screen.subject == "firm" else None,
        assessed=per_subject.get_column("subject"),
    )
