"""Every detector in REGISTRY honours the same contract; no detector is special-cased."""

from __future__ import annotations

import dataclasses
import json
import math

import polars as pl
import pytest

from bidwatch import entities
from bidwatch.catalogue import problems
from bidwatch.dataset import Dataset
from bidwatch.detectors import REGISTRY
from bidwatch.detectors._base import NotComputable
from bidwatch.findings import FINDING_SCHEMA, SUBJECT_KINDS, Findings
from bidwatch.schema import TABLES

DETECTORS = pytest.mark.parametrize("detector", REGISTRY, ids=lambda d: d.name)


def run(detector: type, data: Dataset) -> Findings:
    try:
        return detector().detect(data)
    except NotComputable:
        return Findings.empty()


@DETECTORS
def test_constructs_without_arguments_and_is_frozen(detector: type) -> None:
    instance = detector()
    assert dataclasses.is_dataclass(instance)
    for field in dataclasses.fields(instance):
        assert field.default is not dataclasses.MISSING, f"{field.name} has no default"
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(instance, field.name, field.default)


@DETECTORS
def test_parameters_stored_as_given(detector: type) -> None:
    for field in dataclasses.fields(detector):
        instance = detector(**{field.name: field.default})
        assert getattr(instance, field.name) == field.default


@DETECTORS
def test_documented(detector: type) -> None:
    assert problems(detector) == []


@DETECTORS
def test_declares_name_subject_and_known_requirements(detector: type) -> None:
    assert detector.name == detector.name.lower()
    assert " " not in detector.name
    assert detector.subject in SUBJECT_KINDS
    assert detector.default_weight >= 0
    for ref in detector.requires:
        table, _, column = ref.partition(".")
        assert table in TABLES, ref
        assert column in TABLES[table].names or ref == "bids.firm_id", ref


def test_names_unique() -> None:
    names = [d.name for d in REGISTRY]
    assert len(names) == len(set(names))


@DETECTORS
def test_no_findings_on_empty_data(detector: type, market: Dataset) -> None:
    empty = entities.resolve(
        market.with_tables(**{name: getattr(market, name).clear() for name in TABLES})
    )
    assert len(run(detector, empty)) == 0


@DETECTORS
def test_findings_are_well_formed(detector: type, market: Dataset) -> None:
    data = entities.resolve(market)
    found = detector().detect(data)
    frame = found.frame
    assert frame.schema == pl.Schema(FINDING_SCHEMA)
    assert len(found) > 0, "the random market should give every detector something to say"
    assert found.scanned >= frame.get_column("subject_id").n_unique()
    assert frame.get_column("detector").unique().to_list() == [detector.name]
    assert frame.get_column("subject_kind").unique().to_list() == [detector.subject]
    assert frame.get_column("score").is_between(0.0, 1.0).all()
    assert frame.get_column("message").str.len_chars().min() > 10  # type: ignore[operator]
    for evidence in frame.get_column("evidence"):
        parsed = json.loads(evidence, parse_constant=_reject_constant)
        assert isinstance(parsed, dict)
        assert parsed
    for finding in found:
        assert 0.0 <= finding.score <= 1.0
        assert finding.value is None or math.isfinite(finding.value)


def _reject_constant(name: str) -> float:
    raise AssertionError(f"evidence holds {name}, which is not JSON")


@DETECTORS
def test_invariant_to_row_order(detector: type, market: Dataset) -> None:
    data = entities.resolve(market)
    shuffled = data.with_tables(
        **{
            name: getattr(data, name).sample(fraction=1.0, shuffle=True, seed=seed)
            for seed, name in enumerate(TABLES, start=1)
        }
    )
    first = run(detector, data).frame
    second = run(detector, shuffled).frame
    assert first.equals(second)


@DETECTORS
def test_input_untouched(detector: type, market: Dataset) -> None:
    data = entities.resolve(market)
    before = {name: getattr(data, name).clone() for name in TABLES}
    run(detector, data)
    for name, frame in before.items():
        assert getattr(data, name).equals(frame), name
