"""Second digits of the bids in a buyer's tenders depart from those of everyone else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from bidwatch.detectors._base import NotComputable
from bidwatch.detectors._digits import DigitScreen
from bidwatch.findings import SubjectKind
from bidwatch.schema import buyer

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset


@dataclass(frozen=True)
class BenfordBuyer(DigitScreen):
    """The second digits of the bids in a buyer's tenders are distributed unlike those of
    the other bids in the input, beyond chance across all buyers tested.

    ## What it flags
    Buyers whose tenders hold at least `min_bids` bids with amounts whose second
    significant digits depart from what the other bids of the input (or Benford's law,
    with `reference` = "benford") give for the same first digits, at a false discovery
    rate `max_q` across buyers, after allowing for bids of one tender sharing digits.

    ## Why it is a risk
    Amounts worked out from costs carry digits no one chose; amounts made up by a person
    do not: people favour some digits, avoid others and repeat themselves (Nigrini 2012).
    Where a buyer's procurement is staged (bid records filled in after the award was
    decided, tenders run on paper with invented rival bids, covers arranged by the buyer's
    agent), the bids of its tenders are written by few hands and can carry that trace.
    It is weak evidence: see the false positives.

    ## Method
    A tender's buyer is its buyer_id, else its buyer_name. The first two significant
    digits of each bid (every status) in the buyer's tenders are read from its amount
    (1,234,567.89 -> 1 and 2). First digits depend on the sizes of the buyer's works, so
    the test is on the second digit given the first: a bid with first digit a has second
    digit b with chance P(b | a), and the buyer's expected count of each second digit is
    the sum of P(b | a) over its bids, which removes the effect of the range. P(b | a)
    comes from every bid of the input outside the buyer's tenders (`reference` =
    "market", the default), plus 10 pseudo-bids per first digit spread as Benford's law,
    so that the market's own conventions cancel out; with `reference` = "benford" it is
    Benford's law, log10(1 + 1/(10a + b)) / log10(1 + 1/a). Pearson's chi-square of the
    ten observed against expected counts would follow chi-square with 9 degrees of
    freedom for independent bids, but the bids of one tender cluster around its estimate
    and share digits, which inflates the statistic for every buyer. It is therefore
    divided by a design effect (Kish 1965; a first-order Rao-Scott correction): the
    variance of the counts over that of independent bids. The bids of one tender with
    one first digit a form a cluster of m bids whose second digits are correlated by
    rho_a, estimated by moments over every tender of the input (larger for low first
    digits, whose second digit spans a wider share of the amount); the buyer's part is
    sum m (1 + rho_a (m - 1)) over its clusters, divided by its bids. A reference drawn
    from the other bids is itself a sample of clustered bids, and its uncertainty adds to
    the variance as in a two-sample test (nothing is added against Benford's law). On
    simulated honest buyers of 8 tenders of 5 bids within 6% of each other, about 5% get
    a chance below 0.05 and 1% below 0.01 (over a third below 0.05 without the correction);
    chances below 0.001 occur two to three times as often as they should. Chances of all
    buyers tested become Benjamini-Hochberg q-values; a buyer is flagged when q <=
    `max_q`. Score = 1 - q: among buyers scored at least this high, the expected share
    of false discoveries is at most 1 - score.

    ## Evidence
    The observed and expected counts of second digits 0-9, the counts of first digits 1-9,
    the number of bids and tenders, bids written with two significant digits or fewer,
    the chi-square, design effect, within-tender correlation per first digit, degrees of
    freedom, chance and q-value; the message names the digit most over-represented. No
    firm is named: the finding is about the buyer's records.

    ## Parameters
    - `min_bids`: fewest bids with amounts a buyer's tenders need for it to be tested (at
      least 10). Bids of one tender count for less than independent bids: 30 bids are
      often only six tenders.
    - `max_q`: flag a buyer when its Benjamini-Hochberg q-value is at most this (the false
      discovery rate accepted across buyers).
    - `reference`: "market" to compare with the bids of other buyers' tenders, "benford"
      to compare with Benford's law.

    ## Known false positives
    Buyers whose tenders draw bidders that round to two significant digits, or that ask
    for bids as a discount on a round estimate, or set one fixed price; buyers with many
    bids per tender but unusually tight bidding (the design effect is the input's average,
    not the buyer's own); a buyer of one kind of works priced from one public unit-rate
    schedule.

    ## References
    - Nigrini, M. (2012). Benford's Law: Applications for forensic accounting, auditing,
      and fraud detection. Wiley.
    - Diekmann, A. (2007). Not the first digit! Using Benford's law to detect fraudulent
      scientific data. Journal of Applied Statistics 34(3).
    - Kish, L. (1965). Survey sampling. Wiley (design effect).
    - Rao, J. N. K. & Scott, A. J. (1981). The analysis of categorical data from complex
      sample surveys. JASA 76(374).
    - Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57(1).
    """

    name: ClassVar[str] = "benford-buyer"
    subject: ClassVar[SubjectKind] = "buyer"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.amount"})
    min_bids: int = 30

    label: ClassVar[str] = "buyer"
    # Weak evidence: see the false positives; enough to look, not to rank.
    default_weight: ClassVar[float] = 0.25

    def bids(self, data: Dataset) -> pl.DataFrame:
        buyers = data.tenders.select("tender_id", buyer().alias("subject")).drop_nulls("subject")
        if buyers.height == 0:
            raise NotComputable(
                "no tender names its buyer; give tenders a buyer_id or buyer_name column"
            )
        return data.bids.select("tender_id", "amount").join(buyers, on="tender_id")
