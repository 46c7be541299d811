"""Second digits of a firm's bids depart from those of everyone else (Benford-type test)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import polars as pl

from bidwatch.detectors._digits import DigitScreen
from bidwatch.findings import SubjectKind

if TYPE_CHECKING:
    from bidwatch.dataset import Dataset


@dataclass(frozen=True)
class BenfordFirm(DigitScreen):
    """The second digits of a firm's bid amounts are distributed unlike those of the other
    bids in the input, beyond chance across all firms tested.

    ## What it flags
    Firms with at least `min_bids` bids with amounts whose second significant digits
    depart from what the other bids of the input (or Benford's law, with `reference` =
    "benford") give for the same first digits, at a false discovery rate `max_q` across
    firms.

    ## Why it is a risk
    Amounts worked out from costs carry digits no one chose; amounts made up by a person
    do not: people favour some digits, avoid others and repeat themselves (Nigrini 2012).
    A firm that writes cover bids it never priced (陪标), or whose bids are filled in by
    someone else, can leave that trace across its bids. It is weak evidence: see the false
    positives.

    ## Method
    The first two significant digits of each bid (every status) are read from its amount
    (1,234,567.89 -> 1 and 2). The first digit of tender bids says little: a firm bidding
    for similar works spans a narrow range of amounts, so its first digits are not
    Benford-distributed even when honest. The test is therefore on the second digit given
    the first: a bid with first digit a has second digit b with chance P(b | a), and the
    firm's expected count of each second digit is the sum of P(b | a) over its bids, which
    removes the effect of the range. P(b | a) comes from every bid of the input not made
    by the firm (`reference` = "market", the default), plus 10 pseudo-bids per first digit
    spread as Benford's law: the market's own price conventions (amounts pulled under an
    estimate, a platform's rounding) then cancel out, and only a firm that writes digits
    unlike its market stands out. With `reference` = "benford", P(b | a) is Benford's law,
    log10(1 + 1/(10a + b)) / log10(1 + 1/a). Pearson's chi-square of the ten observed
    against expected counts is referred to chi-square with 9 degrees of freedom, after
    dividing it by a design effect: the variance of the counts over that of independent
    bids. It has two parts. Bids of one tender with one first digit a share second
    digits (they cluster around the tender's estimate) with a correlation rho_a estimated
    over every tender of the input; a firm's bids are nearly all in different tenders, so
    this part is 1 unless it bid several times in one tender. And a reference drawn from
    the other bids is itself a sample of clustered bids, whose uncertainty adds to the
    variance as in a two-sample test (nothing is added against Benford's law). As each
    bid has its own expected distribution, the counts vary less than a multinomial's,
    which makes the test conservative. Chances of all firms tested become
    Benjamini-Hochberg q-values; a firm is flagged when q <= `max_q`. Score = 1 - q: among
    firms scored at least this high, the expected share of false discoveries is at most
    1 - score.

    ## Evidence
    The observed and expected counts of second digits 0-9, the counts of first digits 1-9,
    the number of bids and tenders, bids written with two significant digits or fewer,
    the chi-square, design effect, within-tender correlation per first digit, degrees of
    freedom, chance and q-value; the message names the digit most over-represented.

    ## Parameters
    - `min_bids`: fewest bids with amounts a firm needs to be tested (at least 10). On
      honest synthetic firms the chances hold from 10 bids up (3-6% below 0.05); the
      test has little power below about 30.
    - `max_q`: flag a firm when its Benjamini-Hochberg q-value is at most this (the false
      discovery rate accepted across firms).
    - `reference`: "market" to compare with the other bids of the input, "benford" to
      compare with Benford's law.

    ## Known false positives
    Firms that round their bids to two significant digits (1,200,000) or to a round unit
    while others do not: the second digit is then their rounding choice, with 0 and 5
    favoured (see `two_digit_bids`). Bids computed from one public unit-rate schedule, or
    as a fixed discount on the estimate, inherit the estimates' digits. Firms that bid for
    one buyer or one kind of works whose estimates are set in round figures. The test
    finds digits typed by hand, not collusion as such: a cartel that prices its covers
    from the winner's bid leaves natural digits. On the Japanese construction cartel data
    of García Rodríguez et al. (2022) the cartel firms' digits do not differ from the
    others' (firm-level ROC-AUC 0.45-0.50, no cartel firm flagged).

    ## References
    - Nigrini, M. (2012). Benford's Law: Applications for forensic accounting, auditing,
      and fraud detection. Wiley.
    - Diekmann, A. (2007). Not the first digit! Using Benford's law to detect fraudulent
      scientific data. Journal of Applied Statistics 34(3).
    - Mebane, W. (2006). Election forensics: the second-digit Benford's law test and recent
      American presidential elections.
    - Kish, L. (1965). Survey sampling. Wiley (design effect).
    - Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57(1).
    - García Rodríguez, M. J. et al. (2022). Collusion detection in public procurement
      auctions with machine learning algorithms. Automation in Construction 133.
    """

    name: ClassVar[str] = "benford-firm"
    subject: ClassVar[SubjectKind] = "firm"
    requires: ClassVar[frozenset[str]] = frozenset({"bids.amount", "bids.firm_id"})
    min_bids: int = 20

    label: ClassVar[str] = "firm"
    # Weak evidence: see the false positives; enough to look, not to rank.
    default_weight: ClassVar[float] = 0.25

    def bids(self, data: Dataset) -> pl.DataFrame:
        return data.bids.select("tender_id", pl.col("firm_id").alias("subject"), "amount")
