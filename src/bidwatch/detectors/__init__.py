"""REGISTRY: the one list of detectors. A detector is one module here plus one line below."""

from __future__ import annotations

from bidwatch.detectors._base import Detector
from bidwatch.detectors.abnormally_low_bid import AbnormallyLowBid
from bidwatch.detectors.below_reference_price import BelowReferencePrice
from bidwatch.detectors.benchmark_influence import BenchmarkInfluence
from bidwatch.detectors.benford_buyer import BenfordBuyer
from bidwatch.detectors.benford_firm import BenfordFirm
from bidwatch.detectors.bid_cv import BidCV
from bidwatch.detectors.bid_kurtosis import BidKurtosis
from bidwatch.detectors.bid_pattern import BidPattern
from bidwatch.detectors.bid_rotation import BidRotation
from bidwatch.detectors.bid_skewness import BidSkewness
from bidwatch.detectors.bid_spread import BidSpread
from bidwatch.detectors.bid_uniformity import BidUniformity
from bidwatch.detectors.buyer_concentration import BuyerConcentration
from bidwatch.detectors.capacity_mismatch import CapacityMismatch
from bidwatch.detectors.cobid_pairs import CobidPairs
from bidwatch.detectors.contractor_failures import ContractorFailures
from bidwatch.detectors.cover_band import CoverBand
from bidwatch.detectors.cover_bid_gap import CoverBidGap
from bidwatch.detectors.deep_discount_win import DeepDiscountWin
from bidwatch.detectors.delivery_anomaly import DeliveryAnomaly
from bidwatch.detectors.group_price_correlation import GroupPriceCorrelation
from bidwatch.detectors.identical_bids import IdenticalBids
from bidwatch.detectors.inspection_failures import InspectionFailures
from bidwatch.detectors.late_winner import LateWinner
from bidwatch.detectors.lowest_disqualified import LowestDisqualified
from bidwatch.detectors.lowest_gap import LowestGap
from bidwatch.detectors.market_allocation import MarketAllocation
from bidwatch.detectors.persistent_loser import PersistentLoser
from bidwatch.detectors.regular_differences import RegularDifferences
from bidwatch.detectors.relative_distance import RelativeDistance
from bidwatch.detectors.round_bids import RoundBids
from bidwatch.detectors.settlement_growth import SettlementGrowth
from bidwatch.detectors.shared_traces import SharedTraces
from bidwatch.detectors.short_period import ShortPeriod
from bidwatch.detectors.single_valid_bid import SingleValidBid
from bidwatch.detectors.sole_survivor import SoleSurvivor
from bidwatch.detectors.submission_cluster import SubmissionCluster
from bidwatch.detectors.suspected_groups import SuspectedGroups
from bidwatch.detectors.trace_network import TraceNetwork
from bidwatch.detectors.unbalanced_bid import UnbalancedBid
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
    BuyerConcentration,
    BenfordFirm,
    BenfordBuyer,
    RoundBids,
    CoverBand,
    CoverBidGap,
    DeepDiscountWin,
    SingleValidBid,
    LowestDisqualified,
    SoleSurvivor,
    LateWinner,
    ShortPeriod,
    SubmissionCluster,
    CobidPairs,
    PersistentLoser,
    MarketAllocation,
    TraceNetwork,
    SuspectedGroups,
    BidRotation,
    GroupPriceCorrelation,
    BenchmarkInfluence,
    BidPattern,
    BelowReferencePrice,
    UnbalancedBid,
    InspectionFailures,
    ContractorFailures,
    AbnormallyLowBid,
    SettlementGrowth,
    DeliveryAnomaly,
    CapacityMismatch,
)


def get(name: str) -> type[Detector]:
    for detector in REGISTRY:
        if detector.name == name:
            return detector
    raise KeyError(name)
