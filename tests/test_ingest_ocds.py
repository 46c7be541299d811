"""OCDS reader: real ProZorro releases and records, and synthetic samples of every shape."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

import bidwatch
from bidwatch.dataset import Dataset
from bidwatch.ingest import ROW, ocds
from bidwatch.schema import TABLES

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "fixtures" / "ingest" / "ocds"
PROZORRO = ROOT.parent / "shared" / "data" / "ocds" / "ukraine_prozorro"

BANANAS = "ocds-be6bcu-UA-2017-04-12-001619-b"  # three bids, lowest bidder disqualified
MASSAGE_TABLE = "ocds-be6bcu-UA-2016-06-02-000468-c"  # one lot, one bid


def prozorro(kind: str) -> list[Path]:
    folder = PROZORRO / kind
    if not folder.is_dir():
        pytest.skip(f"real OCDS data not available: {folder} is absent (shared data folder)")
    files = sorted(folder.glob("*.json"))
    assert len(files) == 5
    return files


def one(frame: pl.DataFrame, **where: object) -> dict[str, object]:
    rows = frame.filter(*(pl.col(k) == v for k, v in where.items())).to_dicts()
    assert len(rows) == 1, f"{len(rows)} rows match {where}"
    return rows[0]


def assert_accounted(ds: Dataset, table: str) -> None:
    """Each source's rows of ``table``: read = used (in the table) + rejected (with a where)."""
    for src, report in enumerate(ds.sources):
        if report.table != table:
            continue
        used = getattr(ds, table).filter(pl.col("_src") == src).height
        rejected = ds.rejected.filter((pl.col("file") == report.path) & (pl.col("table") == table))
        assert rejected.get_column("where").null_count() == 0
        assert report.rows_read == used + rejected.get_column("row").n_unique()
        assert (report.rows_used, report.rows_rejected) == (used, report.rows_read - used)


# ------------------------------------------------------------------- real ProZorro data


@pytest.fixture(scope="module")
def releases() -> Dataset:
    return bidwatch.load(ocds=prozorro("releases"))


@pytest.fixture(scope="module")
def records() -> Dataset:
    return bidwatch.load(ocds=prozorro("records"))


def test_prozorro_releases_give_every_tender_and_bid(releases: Dataset) -> None:
    assert releases.tenders.height == 5
    assert releases.bids.height == 12
    assert releases.firms.height == 12
    assert releases.rejected.height == 0
    assert set(releases.bids.get_column("currency")) == {"UAH"}
    assert set(releases.tenders.get_column("currency")) == {"UAH"}
    assert set(releases.bids.get_column("status")) == {"valid"}  # ProZorro "active"
    assert_accounted(releases, "bids")
    assert_accounted(releases, "tenders")


def test_prozorro_winner_is_the_active_award_not_the_lowest_bid(releases: Dataset) -> None:
    bids = releases.bids.filter(pl.col("tender_id") == BANANAS).sort("amount")
    assert bids.get_column("bidder_name").to_list() == [
        'ФОП "Фоміна Тетяна Анатоліївна"',
        'ФОП "КРИШТАЛЬ НАТАЛІЯ ІВАНІВНА"',
        "ТОВ Тропік",
    ]
    assert bids.get_column("amount").to_list() == [42074.56, 43788.9, 43789.0]
    # The lowest bidder's award is "unsuccessful"; the second's is "active".
    assert bids.get_column("is_winner").to_list() == [False, True, False]
    winner = one(bids, is_winner=True)
    assert winner["bidder_id"] == "UA-EDR-2304707963"
    assert winner["phone"] == "+380676342660"
    assert winner["submitted_at"] == datetime(2017, 4, 19, 8, 23, 36, 921804)


def test_prozorro_tender_fields(releases: Dataset) -> None:
    tender = one(releases.tenders, tender_id=BANANAS)
    assert tender["title"] == "Банани та лимони"
    assert tender["estimate"] == 49993.6
    assert tender["buyer_id"] == "UA-EDR-02124775"
    assert tender["buyer_name"] == "ВІДДІЛ ОСВІТИ СИНЕЛЬНИКІВСЬКОЇ МІСЬКОЇ РАДИ"
    assert tender["region"] == "Дніпропетровська область"
    assert tender["procedure"] == "open"
    assert tender["award_method"] == "lowest_price"  # awardCriteria "lowestCost"
    assert tender["published_at"] == datetime(2017, 4, 13, 12, 38)  # 15:38+03:00
    assert tender["bid_deadline"] == datetime(2017, 4, 14, 12, 39)
    # The active award (10:35+03:00), not the unsuccessful one 25 minutes earlier.
    assert tender["awarded_at"] == datetime(2017, 4, 21, 7, 35, 4, 399864)


def test_prozorro_lot_is_its_own_tender(releases: Dataset) -> None:
    lot = "3775e4cf289645d888fd3a8264666622"
    tender = one(releases.tenders, lot_id=lot)
    assert tender["tender_id"] == f"{MASSAGE_TABLE}/{lot}"
    assert tender["title"] == "Стіл масажний"
    assert tender["estimate"] == 3000.0
    bid = one(releases.bids, tender_id=f"{MASSAGE_TABLE}/{lot}")
    assert bid["bidder_name"] == 'ЧП "ОКСИМЕД"'
    assert bid["amount"] == 2910.0
    assert bid["is_winner"] is True


def test_prozorro_records_give_the_same_tables_as_releases(
    releases: Dataset, records: Dataset
) -> None:
    assert records.rejected.height == 0
    for table, keys in (
        ("tenders", ["tender_id"]),
        ("bids", ["tender_id", "bidder_id"]),
        ("firms", ["firm_id"]),
    ):
        a = getattr(releases, table).drop("_src", ROW).sort(keys)
        b = getattr(records, table).drop("_src", ROW).sort(keys)
        assert a.equals(b), table


def test_prozorro_releases_and_records_together_reject_the_repeats() -> None:
    ds = bidwatch.load(ocds=prozorro("releases") + prozorro("records"))
    assert ds.bids.height == 12
    repeats = ds.rejected.filter(pl.col("table") == "bids")
    assert repeats.height == 12
    assert repeats.get_column("reason").str.starts_with("duplicated bid").all()
    assert repeats.get_column("where").str.contains("compiledRelease.bids.details").all()
    assert_accounted(ds, "bids")


def test_prozorro_record_locations() -> None:
    (path,) = [p for p in prozorro("records") if p.stem == BANANAS]
    raw = {t.table: t for t in ocds.read(path)}
    where = raw["bids"].locations
    assert where is not None
    assert where.get_column("where").to_list() == [
        f"ocid={BANANAS} compiledRelease.bids.details[{i}]" for i in range(3)
    ]


# --------------------------------------------------------------------- synthetic samples


def test_raw_tables_are_canonical() -> None:
    for raw in ocds.read(SAMPLES / "release_package_lots.json"):
        assert raw.canonical
        assert raw.path == str(SAMPLES / "release_package_lots.json")
        assert set(raw.headers) <= set(TABLES[raw.table].names)
        assert raw.frame.columns == [*raw.headers, ROW]
        assert raw.frame.get_column(ROW).to_list() == list(range(1, raw.rows + 1))
        assert raw.locations is not None
        assert raw.locations.schema == pl.Schema({ROW: pl.Int64, "where": pl.String})
        assert raw.locations.get_column(ROW).to_list() == list(range(1, raw.rows + 1))


def test_release_package_lots_awards_and_superseded_release() -> None:
    path = SAMPLES / "release_package_lots.json"
    ds = bidwatch.load(ocds=[path])
    assert ds.rejected.height == 0
    assert sorted(ds.tenders.get_column("tender_id")) == [
        "ocds-test-2024-001/L1",
        "ocds-test-2024-001/L2",
        "ocds-test-2024-002",
    ]
    # The older release of ocds-test-2024-001 (a bid of 999) is set aside and said so.
    assert 999.0 not in ds.bids.get_column("amount").to_list()
    notes = next(s.notes for s in ds.sources if s.table == "bids")
    assert any(n.startswith("1 release(s) set aside") for n in notes)
    assert any(n.startswith("1 bid(s) name several lots") for n in notes)
    assert any(n.startswith("1 consortium bid") for n in notes)

    lot2 = one(ds.tenders, tender_id="ocds-test-2024-001/L2")
    assert (lot2["title"], lot2["estimate"], lot2["lot_id"]) == (
        "第二标段：桥梁加固",
        500000.0,
        "L2",
    )
    assert lot2["buyer_name"] == "青山县交通运输局"
    assert lot2["region"] == "浙江省"
    assert lot2["category"] == "works"
    # The cancelled award of 02-10 is not the award date; the active one of 02-16 is.
    assert lot2["awarded_at"] == datetime(2024, 2, 16, 3, 0)

    winners = ds.bids.filter(pl.col("is_winner")).sort("tender_id")
    assert winners.select("tender_id", "bidder_name").rows() == [
        ("ocds-test-2024-001/L1", "杭州恒达道路工程有限公司"),
        ("ocds-test-2024-001/L2", "青山宏远桥梁有限公司"),
    ]
    # A bid for two lots: a row per lot; its award for L2 was cancelled, so it lost both.
    both = ds.bids.filter(pl.col("bidder_name") == "浙江鑫路市政工程有限公司").sort("tender_id")
    assert both.select("tender_id", "amount", "is_winner").rows() == [
        ("ocds-test-2024-001/L1", 980000.0, False),
        ("ocds-test-2024-001/L2", 980000.0, False),
    ]
    # Winning lot 1 does not make the same firm's bid for lot 2 a winner.
    hengda = ds.bids.filter(pl.col("bidder_id") == "CN-USCC-91330106MA2B3C4D5D").sort("tender_id")
    assert hengda.select("tender_id", "is_winner").rows() == [
        ("ocds-test-2024-001/L1", True),
        ("ocds-test-2024-001/L2", False),
    ]
    consortium = one(ds.bids, amount=495000.0)
    assert consortium["bidder_id"] == "CN-USCC-91330106MA2B3C4D5D+CN-USCC-91330109MA2J6P2Q3B"
    assert consortium["bidder_name"] == "杭州恒达道路工程有限公司 + 青山宏远桥梁有限公司"
    assert consortium["is_winner"] is False  # only one member is the L2 supplier
    assert consortium["credit_code"] is None
    # No awards in the release: winner unknown, not "lost".
    assert ds.bids.filter(pl.col("tender_id") == "ocds-test-2024-002").get_column(
        "is_winner"
    ).to_list() == [None, None]


def test_release_package_traces_and_firms() -> None:
    ds = bidwatch.load(ocds=[SAMPLES / "release_package_lots.json"])
    water = ds.bids.filter(pl.col("tender_id") == "ocds-test-2024-002").sort("amount")
    # 1.0-style tenderers without id: id from the identifier, traces from the bid itself.
    assert water.get_column("bidder_id").to_list() == [
        "CN-USCC-91330110MA2K1R5T7J",
        "CN-USCC-91330102MA2L3M4N68",
    ]
    assert water.get_column("credit_code").to_list() == ["91330110MA2K1R5T7J", "91330102MA2L3M4N68"]
    assert water.get_column("phone").to_list() == ["0571-8765-4321", "0571-8765-4321"]
    assert water.get_column("address").to_list() == ["文一路 88 号, 杭州, 浙江省"] * 2
    tender = one(ds.tenders, tender_id="ocds-test-2024-002")
    assert (tender["buyer_id"], tender["region"]) == ("CN-ORG-BS-0001", "白石镇")
    assert tender["procedure"] == "invited"  # procurementMethod "selective"
    # Parties of the newest release plus the tenderers embedded in bids; no duplicates.
    assert ds.firms.height == 5
    hengda = one(ds.firms, firm_id="CN-USCC-91330106MA2B3C4D5D")
    assert hengda["credit_code"] == "91330106MA2B3C4D5D"
    assert hengda["phone"] == "0571-8800-1234"
    assert hengda["address"] == "莫干山路 1 号, 杭州, 浙江省, 310005"


def test_bid_locations_name_release_and_lot() -> None:
    raw = {t.table: t for t in ocds.read(SAMPLES / "release_package_lots.json")}
    assert raw["bids"].locations is not None
    where = raw["bids"].locations.get_column("where").to_list()
    assert where[0] == "releases[1] ocid=ocds-test-2024-002 bids.details[0]"
    assert where[3:5] == [
        "releases[2] ocid=ocds-test-2024-001 bids.details[1] lot=L1",
        "releases[2] ocid=ocds-test-2024-001 bids.details[1] lot=L2",
    ]


def test_record_package_reads_compiled_releases() -> None:
    ds = bidwatch.load(ocds=[SAMPLES / "record_package.json"])
    assert ds.rejected.height == 0
    assert ds.tenders.height == 2
    school = ds.bids.filter(pl.col("tender_id") == "ocds-test-2024-003").sort("amount")
    # Tenderers are references; name, credit code and traces come from parties.
    assert school.select("bidder_id", "credit_code", "phone", "is_winner").rows() == [
        ("T7", "91320102MA1Q2W3E4Y", "025-6666-1010", True),
        ("T6", "91320100MA1X2Y3T4R", "025-6666-1010", False),
    ]
    tender = one(ds.tenders, tender_id="ocds-test-2024-003")
    assert (tender["buyer_id"], tender["region"]) == ("CN-LH-EDU", "江苏省")
    assert tender["award_method"] == "scoring"  # ratedCriteria
    dredging = ds.bids.filter(pl.col("tender_id") == "ocds-test-2024-004").sort("bidder_id")
    # pending is a submitted bid; a withdrawn bid needs no price.
    assert dredging.select("bidder_id", "status", "amount", "is_winner").rows() == [
        ("T6", "valid", 290000.0, None),
        ("T7", "withdrawn", None, None),
        ("T8", "disqualified", 150000.0, None),
    ]
    # No tenderPeriod and no datePublished: published_at is the release date.
    assert one(ds.tenders, tender_id="ocds-test-2024-004")["published_at"] == datetime(
        2024, 4, 10, 1, 0
    )
    assert sorted(ds.firms.get_column("firm_id")) == ["T6", "T7", "T8"]


def test_json_lines_releases_and_packages() -> None:
    path = SAMPLES / "releases.jsonl"
    ds = bidwatch.load(ocds=[path])
    assert ds.rejected.height == 0
    assert ds.bids.height == 4
    assert one(ds.bids, tender_id="ocds-test-2024-102")["bidder_id"] == "DE-CR-HRA 4711"
    assert one(ds.bids, tender_id="ocds-test-2024-103")["is_winner"] is True
    raw = {t.table: t for t in ocds.read(path)}
    assert raw["bids"].locations is not None
    assert raw["bids"].locations.get_column("where").to_list() == [
        "line 1 ocid=ocds-test-2024-101 bids.details[0]",
        "line 1 ocid=ocds-test-2024-101 bids.details[1]",
        "line 3 ocid=ocds-test-2024-102 bids[0]",  # line 2 is blank
        "line 4 releases[0] ocid=ocds-test-2024-103 bids.details[0]",
    ]


def test_bad_bids_are_rejected_with_where_and_reason() -> None:
    path = SAMPLES / "rejected_bids.json"
    ds = bidwatch.load(ocds=[path])
    assert ds.bids.get_column("bidder_id").to_list() == ["R1"]
    rejected = ds.rejected.filter(pl.col("table") == "bids").sort("row")
    assert rejected.select("file", "row", "where", "column").rows() == [
        (str(path), 2, "ocid=ocds-test-2024-201 bids.details[1]", "amount"),
        (str(path), 3, "ocid=ocds-test-2024-201 bids.details[2]", "status"),
    ]
    reasons = rejected.get_column("reason").to_list()
    assert reasons[0].startswith("amount is empty")
    assert "'invited'" in reasons[1]
    report = next(s for s in ds.sources if s.table == "bids")
    assert (report.rows_read, report.rows_used, report.rows_rejected) == (3, 1, 2)
    assert_accounted(ds, "bids")


def test_every_table_of_a_file_accounts_for_its_own_rows() -> None:
    ds = bidwatch.load(ocds=[SAMPLES / "rejected_bids.json"])
    for table in ("tenders", "bids", "firms"):
        assert_accounted(ds, table)


# ------------------------------------------------------------------------------ errors


def test_malformed_json_line_names_file_and_line() -> None:
    path = SAMPLES / "bad_line.jsonl"
    with pytest.raises(bidwatch.InputError) as err:
        ocds.read(path)
    assert str(err.value).startswith(f"{path}: line 2 is not valid JSON")


def test_wrong_shape_names_file_and_keys() -> None:
    path = SAMPLES / "wrong_shape.json"
    with pytest.raises(bidwatch.InputError) as err:
        bidwatch.load(ocds=[path])
    message = str(err.value)
    assert message.startswith(f"{path}: found a JSON object with keys 'data', 'meta'")
    assert '{"releases": [...]}' in message


def test_not_json_names_file(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text("tender_id,bidder,amount\nT1,A,100\n", encoding="utf-8")
    with pytest.raises(bidwatch.InputError, match=r"export\.json: not valid JSON"):
        ocds.read(path)


def test_top_level_array_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text(json.dumps([{"ocid": "x"}]), encoding="utf-8")
    with pytest.raises(bidwatch.InputError, match=r"list\.json: found a JSON array of 1 item"):
        ocds.read(path)


def test_record_without_compiled_release_names_the_record(tmp_path: Path) -> None:
    path = tmp_path / "records.json"
    records = [
        {"ocid": "ocds-a", "compiledRelease": {"ocid": "ocds-a", "bids": {"details": []}}},
        {"ocid": "ocds-b", "releases": [{"url": "https://example.org/r.json"}]},
    ]
    path.write_text(json.dumps({"records": records}), encoding="utf-8")
    with pytest.raises(bidwatch.InputError) as err:
        ocds.read(path)
    message = str(err.value)
    assert message.startswith(f"{path}: the record at records[1] (ocid=ocds-b) has no compiled")
    assert "ocdskit compile" in message


def test_json_that_is_several_documents_suggests_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "lines.json"
    path.write_text('{"ocid": "a"}\n{"ocid": "b"}\n', encoding="utf-8")
    with pytest.raises(bidwatch.InputError, match=r"name it \.jsonl"):
        ocds.read(path)


def test_newest_release_wins_ties_by_position(tmp_path: Path) -> None:
    def release(amount: int) -> dict[str, object]:
        return {
            "ocid": "ocds-t",
            "date": "2024-01-01T00:00:00Z",
            "bids": {"details": [{"status": "valid", "value": {"amount": amount}}]},
        }

    path = tmp_path / "tie.json"
    path.write_text(json.dumps({"releases": [release(1), release(2)]}), encoding="utf-8")
    (bids,) = ocds.read(path)
    assert bids.frame.get_column("amount").to_list() == [2.0]
    assert bids.locations is not None
    assert bids.locations.get_column("where").to_list() == [
        "releases[1] ocid=ocds-t bids.details[0]"
    ]
