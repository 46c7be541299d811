"""REGISTRY: the one list of detectors. A detector is one module here plus one line below."""

from __future__ import annotations

from bidwatch.detectors._base import Detector
from bidwatch.detectors.bid_cv import BidCV
from bidwatch.detectors.bid_kurtosis import BidKurtosis
from bidwatch.detectors.bid_pattern import BidPattern
from bidwatch.detectors.bid_skewness import BidSkewness
from bidwatch.detectors.bid_spread import BidSpread
from bidwatch.detectors.bid_uniformity import BidUniformity
from bidwatch.detectors.identical_bids import IdenticalBids
from bidwatch.detectors.lowest_gap import LowestGap
from bidwatch.detectors.regular_differences import RegularDifferences
from bidwatch.detectors.relative_distance import RelativeDistance
from bidwatch.detectors.shared_traces import SharedTraces
from bidwatch.detectors.winner_near_estimate import WinnerNearEstimate

REGISTRY: tuple[type[Detector], ...] = (
    BidCV,
    BidSpread,
    LowestGap,
    RelativeDistance,
    BidSkewness,
    BidKurtosis,
    BidUniformity,
    IdenticalBids,
    RegularDifferences,
    SharedTraces,
    WinnerNearEstimate,
    BidPattern,
)


def get(name: str) -> type[Detector]:
    for detector in REGISTRY:
        if detector.name == name:
            return detector
    raise KeyError(name)
