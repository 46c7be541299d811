"""bidwatch: find bid rigging and substandard-materials risk in public procurement data.

ds = bidwatch.load(bids="bids.csv", tenders="tenders.csv")
result = bidwatch.scan(ds)
result.ranking("tender")
"""

from bidwatch.api import DetectorRun, ScanResult, scan
from bidwatch.config import Config, Mapping
from bidwatch.dataset import Dataset, load
from bidwatch.detectors import REGISTRY
from bidwatch.errors import InputError
from bidwatch.findings import Finding, Findings, Subject

__all__ = [
    "REGISTRY",
    "Config",
    "Dataset",
    "DetectorRun",
    "Finding",
    "Findings",
    "InputError",
    "Mapping",
    "ScanResult",
    "Subject",
    "load",
    "scan",
]
