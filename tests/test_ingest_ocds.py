"""OCDS reader: real ProZorro releases and records, and synthetic samples of every shape."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

import bidwatch
from bidwatch import entities
from bidwatch.dataset import Dataset
from bidwatch.ingest import ROW, RawTable, ocds
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
    # The same five contracts again: the first of each tender is kept.
    assert ds.contracts.height == 5
    contracts = ds.rejected.filter(pl.col("table") == "contracts")
    assert contracts.height == 5
    assert contracts.get_column("reason").str.starts_with("duplicated contract").all()
    assert contracts.get_column("where").str.contains("compiledRelease.contracts").all()
    assert_accounted(ds, "contracts")


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


# ------------------------------------------------------------- contracts and amendments

CONTRACTS = SAMPLES / "contracts.json"


def utc(*parts: int) -> datetime:
    return datetime(*parts)  # canonical dates are naive UTC


def notes_of(ds: Dataset, table: str) -> tuple[str, ...]:
    return next(s.notes for s in ds.sources if s.table == table)


def test_prozorro_contracts_name_the_winning_bidder(releases: Dataset) -> None:
    assert releases.contracts.height == 5
    assert releases.change_orders.height == 0  # the sample has no amendments
    assert releases.rejected.height == 0
    assert_accounted(releases, "contracts")
    # Every contractor is the winning bidder of the same tender (or lot), by the same id.
    winners = releases.bids.filter(pl.col("is_winner")).select("tender_id", "bidder_id")
    paired = releases.contracts.join(winners, on="tender_id", how="left")
    assert paired.get_column("bidder_id").to_list() == paired.get_column("contractor_id").to_list()
    bananas = one(releases.contracts, tender_id=BANANAS)
    assert bananas["contractor_id"] == "UA-EDR-2304707963"
    assert bananas["contractor_name"] == 'ФОП "КРИШТАЛЬ НАТАЛІЯ ІВАНІВНА"'
    assert bananas["contract_amount"] == 43788.9
    assert bananas["signed_at"] == utc(2017, 4, 25, 11, 44)  # 14:44+03:00
    assert bananas["planned_completion"] == utc(2017, 12, 30, 22, 0)
    # Active contracts, no payments published: nothing final, nothing completed.
    assert releases.contracts.get_column("final_amount").null_count() == 5
    assert releases.contracts.get_column("actual_completion").null_count() == 5
    lot = "3775e4cf289645d888fd3a8264666622"
    massage = one(releases.contracts, tender_id=f"{MASSAGE_TABLE}/{lot}")
    assert (massage["contractor_name"], massage["contract_amount"]) == ('ЧП "ОКСИМЕД"', 2910.0)


def test_prozorro_records_give_the_same_contracts_as_releases(
    releases: Dataset, records: Dataset
) -> None:
    a = releases.contracts.drop("_src", ROW).sort("tender_id")
    b = records.contracts.drop("_src", ROW).sort("tender_id")
    assert a.equals(b)
    assert records.change_orders.height == 0


def test_prozorro_contractors_resolve_to_the_winners_firm(releases: Dataset) -> None:
    data = entities.resolve(releases)
    winners = data.bids.filter(pl.col("is_winner")).select("tender_id", pl.col("firm_id"))
    paired = data.contracts.join(winners, on="tender_id", how="left", suffix="_winner")
    assert paired.get_column("firm_id").null_count() == 0
    assert paired.get_column("firm_id").to_list() == paired.get_column("firm_id_winner").to_list()


def test_contracts_fixture_rows() -> None:
    ds = bidwatch.load(ocds=[CONTRACTS])
    rows = ds.contracts.sort("tender_id").drop("_src", ROW).rows(named=True)
    assert rows == [
        {
            # Amended (+30,000): the value as signed, from the release the amendment amends;
            # terminated: paid 400,000 + 350,000 + 280,000; completed on implementation.endDate.
            "tender_id": "ocds-test-2024-301/L1",
            "contractor_id": "CN-USCC-91330106MA2B3C4D5D",
            "contractor_name": "杭州恒达道路工程有限公司",
            "contract_amount": 1_000_000.0,
            "final_amount": 1_030_000.0,
            "signed_at": utc(2024, 3, 5, 2, 0),
            "planned_completion": utc(2024, 10, 30, 16, 0),  # as extended by the amendment
            "actual_completion": utc(2024, 11, 9, 16, 0),
        },
        {
            # The award names no supplier, nor does the contract; still active, so the
            # 200,000 paid so far is no final amount; the 1.0 amendment's former value.
            "tender_id": "ocds-test-2024-301/L2",
            "contractor_id": None,
            "contractor_name": None,
            "contract_amount": 450_000.0,
            "final_amount": None,
            "signed_at": utc(2024, 3, 6, 2, 0),
            "planned_completion": utc(2024, 8, 30, 16, 0),
            "actual_completion": None,
        },
        {
            # 1.0 transactions (amount): 1,200,000 + 790,000. The amendment gives only
            # amendsAmount and no earlier release: the value as published.
            "tender_id": "ocds-test-2024-302",
            "contractor_id": "CN-USCC-91330110MA2K1R5T7J",
            "contractor_name": "浙江清源水务建设有限公司",
            "contract_amount": 1_950_000.0,
            "final_amount": 1_990_000.0,
            "signed_at": utc(2024, 2, 20, 2, 0),
            "planned_completion": utc(2024, 10, 30, 16, 0),
            "actual_completion": None,
        },
        {
            # Amended by a release tagged contractAmendment: the value in the release before.
            "tender_id": "ocds-test-2024-303",
            "contractor_id": "CN-USCC-91330102MA2L3M4N68",
            "contractor_name": "杭州润泽管道工程有限公司",
            "contract_amount": 300_000.0,
            "final_amount": None,
            "signed_at": utc(2024, 2, 5, 2, 0),
            "planned_completion": utc(2024, 7, 30, 16, 0),
            "actual_completion": None,
        },
    ]


def test_contracts_fixture_change_orders() -> None:
    ds = bidwatch.load(ocds=[CONTRACTS])
    rows = ds.change_orders.drop("_src", ROW).sort("tender_id", "approved_at").rows()
    assert rows == [
        # value 1,030,000 in the amending release less 1,000,000 in the amended one
        ("ocds-test-2024-301/L1", 30_000.0, "增加排水工程", utc(2024, 6, 1, 1, 0)),
        # a time extension that says nothing of the value: no amount, reason = description
        ("ocds-test-2024-301/L1", None, "工期顺延 14 天", utc(2024, 8, 9, 16, 0)),
        # 1.0 former value 450,000 to the contract's 480,000; repeated by two releases, read once
        ("ocds-test-2024-301/L2", 30_000.0, "钢材价格上涨调差", utc(2024, 5, 19, 16, 0)),
        ("ocds-test-2024-302", 50_000.0, "追加零星工程", utc(2024, 6, 30, 16, 0)),  # amendsAmount
        # the release tagged contractAmendment: 330,000 less 300,000, dated by the release
        ("ocds-test-2024-303", 30_000.0, None, utc(2024, 4, 1, 1, 0)),
    ]


def test_contracts_fixture_accounts_for_every_contract_and_amendment() -> None:
    ds = bidwatch.load(ocds=[CONTRACTS])
    for table in ("tenders", "bids", "firms", "contracts", "change_orders"):
        assert_accounted(ds, table)
    contracts = next(s for s in ds.sources if s.table == "contracts")
    # C4, C5 (ocds-test-2024-302), C1, C2 (301), C6 (303); the cancelled C3 is not read.
    assert (contracts.rows_read, contracts.rows_used, contracts.rows_rejected) == (5, 4, 1)
    (duplicate,) = ds.rejected.filter(pl.col("table") == "contracts").rows(named=True)
    assert duplicate["where"] == "releases[2] ocid=ocds-test-2024-302 contracts[2]"
    assert duplicate["reason"].startswith("duplicated contract: ocds-test-2024-302")
    orders = next(s for s in ds.sources if s.table == "change_orders")
    assert (orders.rows_read, orders.rows_used, orders.rows_rejected) == (5, 5, 0)
    notes = notes_of(ds, "contracts")
    for start in (
        "1 contract(s) with status cancelled (cancelled before signature) are not read, nor "
        "their 1 amendment(s)",
        "1 contract(s) name no award of their release",
        "1 contract(s) whose award names no supplier: contractor taken from the contract's",
        "1 contract(s) name no supplier, in their award or themselves: contractor left empty "
        "(e.g. releases[4] ocid=ocds-test-2024-301 contracts[1])",
        "3 amended contract(s): contract_amount is the value before the first amendment",
        "1 amended contract(s) whose value before the amendments the file does not give",
        "2 terminated contract(s): final_amount is the sum of their implementation "
        "transactions, the amount paid as published",
        "1 contract(s) not terminated have payments published",
    ):
        assert any(n.startswith(start) for n in notes), start
    notes = notes_of(ds, "change_orders")
    for start in (
        "1 release(s) tagged contractAmendment give no amendment object",
        # C5 repeats the tender of C4: its amendment would be taken for C4's.
        "1 amendment(s) of a contract whose tender already has one are not read",
        "1 change order amount(s) are the amendment's amendsAmount",
        "2 change order amount(s) are the change in contract value from the release before",
        "1 change order amount(s) come from the former value",
        "1 change order(s) whose change in contract value the file does not give",
    ):
        assert any(n.startswith(start) for n in notes), start


def test_contracts_fixture_locations() -> None:
    raw = {t.table: t for t in ocds.read(CONTRACTS)}
    assert raw["contracts"].locations is not None
    assert raw["contracts"].locations.get_column("where").to_list() == [
        "releases[2] ocid=ocds-test-2024-302 contracts[1]",
        "releases[2] ocid=ocds-test-2024-302 contracts[2]",
        "releases[4] ocid=ocds-test-2024-301 contracts[0]",
        "releases[4] ocid=ocds-test-2024-301 contracts[1]",
        "releases[6] ocid=ocds-test-2024-303 contracts[0]",
    ]
    assert raw["change_orders"].locations is not None
    assert raw["change_orders"].locations.get_column("where").to_list() == [
        "releases[2] ocid=ocds-test-2024-302 contracts[1].amendments[0]",
        "releases[4] ocid=ocds-test-2024-301 contracts[0].amendments[0]",
        "releases[4] ocid=ocds-test-2024-301 contracts[0].amendments[1]",
        "releases[4] ocid=ocds-test-2024-301 contracts[1].amendment",
        "releases[5] ocid=ocds-test-2024-303 contracts[0]",  # the contractAmendment release
    ]


def test_contracts_fixture_contractors_resolve_like_bidders() -> None:
    data = entities.resolve(bidwatch.load(ocds=[CONTRACTS]))
    firm_of = dict(data.bids.select("bidder_id", "firm_id").unique().iter_rows())
    for row in data.contracts.iter_rows(named=True):
        expected = firm_of.get(row["contractor_id"]) if row["contractor_id"] else None
        assert row["firm_id"] == expected, row["tender_id"]
    # The contractor of ocds-test-2024-303 won no bid there but bid elsewhere: same firm.
    assert one(data.contracts, tender_id="ocds-test-2024-303")["firm_id"] is not None


def test_files_without_contracts_give_no_contract_tables() -> None:
    tables = {t.table for t in ocds.read(SAMPLES / "release_package_lots.json")}
    assert tables == {"tenders", "bids", "firms"}


# Small releases written in the tests: one bid each, so that the loader accepts them.

BID = {"status": "valid", "value": {"amount": 100}, "tenderers": [{"id": "F1", "name": "Firm 1"}]}
SUPPLIER = [{"id": "F1", "name": "Firm 1"}]


def release(
    rid: str,
    date: str,
    contracts: list[object],
    *,
    ocid: str = "ocds-t",
    tag: tuple[str, ...] = ("contract",),
    **extra: object,
) -> dict[str, object]:
    return {
        "ocid": ocid,
        "id": rid,
        "date": date,
        "tag": list(tag),
        "bids": {"details": [BID]},
        "awards": [{"id": "A1", "status": "active", "suppliers": SUPPLIER}],
        "contracts": contracts,
        **extra,
    }


def contract(cid: str = "C1", amount: object = 100, currency: str = "EUR", **extra: object) -> dict:
    return {"id": cid, "awardID": "A1", "value": {"amount": amount, "currency": currency}, **extra}


def write(tmp_path: Path, document: object, name: str = "ocds.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def raw_tables(path: Path) -> dict[str, RawTable]:
    return {t.table: t for t in ocds.read(path)}


def column(raw: RawTable, name: str) -> list[object]:
    return raw.frame.get_column(name).to_list() if name in raw.frame.columns else []


def test_versioned_release_gives_values_before_and_after(tmp_path: Path) -> None:
    def versioned(rid: str, date: str, value: object) -> dict[str, object]:
        return {"releaseID": rid, "releaseDate": date, "releaseTag": ["contract"], "value": value}

    amendment = {
        "id": "1",
        "date": "2024-03-01T00:00:00Z",
        "rationale": "more asphalt",
        "amendsReleaseID": "R1",
        "releaseID": "R2",
    }
    record = {
        "ocid": "ocds-v",
        # Linked releases only: the values are in the versioned release.
        "releases": [
            {"url": "https://example.org/R1.json", "date": "2024-01-01T00:00:00Z"},
            {"url": "https://example.org/R2.json", "date": "2024-03-01T00:00:00Z"},
        ],
        "compiledRelease": release(
            "ocds-v-2024-03-01",
            "2024-03-01T00:00:00Z",
            [contract(amount=130, amendments=[amendment])],
            ocid="ocds-v",
        ),
        "versionedRelease": {
            "ocid": "ocds-v",
            "contracts": [
                {
                    "id": "C1",
                    "value": {
                        "amount": [
                            versioned("R1", "2024-01-01T00:00:00Z", 100),
                            versioned("R2", "2024-03-01T00:00:00Z", 130),
                        ],
                        # The currency did not change in R2: read as of R2's date.
                        "currency": [versioned("R1", "2024-01-01T00:00:00Z", "EUR")],
                    },
                }
            ],
        },
    }
    raw = raw_tables(write(tmp_path, {"records": [record]}))
    assert column(raw["contracts"], "contract_amount") == [100.0]
    assert column(raw["change_orders"], "amount") == [30.0]
    assert column(raw["change_orders"], "reason") == ["more asphalt"]


def test_closing_statuses(tmp_path: Path) -> None:
    paid = {
        "transactions": [{"value": {"amount": 60, "currency": "EUR"}}, {"value": {"amount": 50}}]
    }
    contracts = [
        # Terminated early: not completed, whatever was paid.
        contract("E", status="terminatedEarly", implementation={**paid, "endDate": "2024-05-01"}),
        # Completion extension: finalValue and endDate, whatever the transactions say.
        contract(
            "S",
            status="terminatedSuccessfully",
            implementation={
                **paid,
                "finalValue": {"amount": 120, "currency": "EUR"},
                "endDate": "2024-06-01T00:00:00Z",
            },
        ),
        contract("T", status="terminated", implementation=paid),  # 60 + 50
        contract("A", status="active", implementation=paid),  # paid so far
        contract("P", status="pending", implementation={"endDate": "2024-06-01T00:00:00Z"}),
        contract(
            "M",
            status="terminated",
            implementation={
                "transactions": [
                    {"value": {"amount": 60, "currency": "EUR"}},
                    {"value": {"amount": 5, "currency": "USD"}},
                ]
            },
        ),
        contract(
            "N", status="terminated", implementation={"transactions": [{"value": {"amount": "60"}}]}
        ),
        contract(
            "Z",
            status="terminated",
            implementation={
                "transactions": [{"value": {"amount": 60}}, {"value": {"amount": -60}}]
            },
        ),
        contract(
            "F",
            status="terminated",
            implementation={"finalValue": {"amount": 9, "currency": "USD"}},
        ),
    ]
    raw = raw_tables(write(tmp_path, release("R1", "2024-07-01T00:00:00Z", contracts)))
    frame = raw["contracts"].frame
    assert column(raw["contracts"], "final_amount") == [
        None,
        120.0,
        110.0,
        None,
        None,
        None,
        None,
        None,
        None,
    ]
    assert frame.get_column("actual_completion").to_list() == [
        None,
        "2024-06-01T00:00:00Z",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    ]
    notes = raw["contracts"].notes
    for start in (
        "1 contract(s) terminated early (terminatedEarly)",
        "1 contract(s): final_amount is implementation.finalValue",
        "1 terminated contract(s): final_amount is the sum",
        "1 contract(s) not terminated have payments published",
        "1 pending contract(s) give implementation.endDate",
        "1 terminated contract(s) have transactions in several currencies",
        "1 terminated contract(s) have a transaction without a numeric amount",
        "1 terminated contract(s) whose transactions sum to zero or less",
        "1 contract(s) whose implementation.finalValue is in another currency",
    ):
        assert any(n.startswith(start) for n in notes), start


def test_contract_tender_follows_the_awards_lot(tmp_path: Path) -> None:
    lots = [{"id": "L1"}, {"id": "L2"}]
    bids = {"details": [{**BID, "relatedLots": ["L1"]}, {**BID, "relatedLots": ["L2"]}]}
    awards = [
        {"id": "A1", "status": "active", "lotID": "L2", "suppliers": SUPPLIER},  # ProZorro
        {"id": "A2", "status": "active", "relatedLots": ["L1", "L2"], "suppliers": SUPPLIER},
        {"id": "A3", "status": "active", "suppliers": SUPPLIER},
    ]
    contracts = [
        {**contract(c), "awardID": a} for c, a in (("C1", "A1"), ("C2", "A2"), ("C3", "A3"))
    ]
    two_lots = release(
        "R1",
        "2024-01-01T00:00:00Z",
        contracts,
        tender={"id": "t", "lots": lots},
        bids=bids,
        awards=awards,
    )
    single = release(
        "R2",
        "2024-01-01T00:00:00Z",
        [contract()],
        ocid="ocds-one",
        tender={"id": "t", "lots": [{"id": "only"}]},
        bids={"details": [{**BID, "relatedLot": "only"}]},
    )
    raw = raw_tables(write(tmp_path, {"releases": [two_lots, single]}))
    assert column(raw["contracts"], "tender_id") == [
        "ocds-t/L2",
        "ocds-t",
        "ocds-t",
        "ocds-one/only",
    ]
    notes = raw["contracts"].notes
    assert any(n.startswith("1 contract(s) come from an award for several lots") for n in notes)
    assert any(
        n.startswith("1 contract(s) name no lot in a tender with several lots") for n in notes
    )


def test_consortium_contract_is_named_like_a_consortium_bid(tmp_path: Path) -> None:
    members = [{"id": "F1", "name": "Firm 1"}, {"id": "F2", "name": "Firm 2"}]
    awards = [{"id": "A1", "status": "active", "suppliers": members}]
    document = release("R1", "2024-01-01T00:00:00Z", [contract()], awards=awards)
    raw = raw_tables(write(tmp_path, document))
    assert column(raw["contracts"], "contractor_id") == ["F1+F2"]
    assert column(raw["contracts"], "contractor_name") == ["Firm 1 + Firm 2"]


def test_ocds_1_0_amendments_across_releases(tmp_path: Path) -> None:
    first = {
        "date": "2024-02-01T00:00:00Z",
        "rationale": "a",
        "changes": [{"property": "value", "former_value": {"amount": 100, "currency": "EUR"}}],
    }
    second = {
        "date": "2024-03-01T00:00:00Z",
        "rationale": "b",
        "changes": [{"property": "value.amount", "former_value": 120}],
    }
    releases = [
        release("R1", "2024-01-01T00:00:00Z", [contract(amount=100)]),
        release("R2", "2024-02-01T00:00:00Z", [contract(amount=120, amendment=first)]),
        # A 1.0 release carries only its latest amendment: the first is in R2 alone.
        release("R3", "2024-03-01T00:00:00Z", [contract(amount=150, amendment=second)]),
    ]
    raw = raw_tables(write(tmp_path, {"releases": releases}))
    orders = raw["change_orders"]
    assert column(orders, "reason") == ["b", "a"]
    assert column(orders, "amount") == [30.0, 20.0]  # 120 -> 150, then 100 -> 120
    assert column(raw["contracts"], "contract_amount") == [100.0]
    assert orders.locations is not None
    assert orders.locations.get_column("where").to_list() == [
        "releases[2] ocid=ocds-t contracts[0].amendment",
        "releases[1] ocid=ocds-t contracts[0].amendment",
    ]
    assert any(n.startswith("1 amendment(s) come from earlier releases") for n in orders.notes)


def test_amendment_values_in_other_currencies_give_no_amount(tmp_path: Path) -> None:
    across = {"id": "1", "date": "2024-02-01T00:00:00Z", "amendsReleaseID": "R1", "releaseID": "R2"}
    explicit = {
        "id": "2",
        "date": "2024-02-02T00:00:00Z",
        "amendsAmount": {"amount": 5, "currency": "CNY"},
    }
    releases = [
        release("R1", "2024-01-01T00:00:00Z", [contract(amount=100, currency="EUR")]),
        release(
            "R2",
            "2024-02-01T00:00:00Z",
            [contract(amount=110, currency="USD", amendments=[across, explicit])],
        ),
    ]
    raw = raw_tables(write(tmp_path, {"releases": releases}))
    assert column(raw["change_orders"], "amount") == []  # no row gives one: column left out
    assert raw["change_orders"].rows == 2
    notes = raw["change_orders"].notes
    assert any(n.startswith("2 change order(s) whose values before and after") for n in notes)


def test_contract_in_another_currency_than_its_tender_is_said(tmp_path: Path) -> None:
    document = release(
        "R1",
        "2024-01-01T00:00:00Z",
        [contract(currency="USD")],
        tender={"id": "t", "value": {"amount": 900, "currency": "CNY"}},
    )
    raw = raw_tables(write(tmp_path, document))
    assert column(raw["contracts"], "contract_amount") == [100.0]  # as published
    assert any(
        n.startswith("1 contract(s) are valued in another currency than their tender (USD in a CNY")
        for n in raw["contracts"].notes
    )


def test_contracts_of_the_wrong_shape_are_said_not_fatal(tmp_path: Path) -> None:
    not_array = release("R1", "2024-01-01T00:00:00Z", [], ocid="ocds-a")
    not_array["contracts"] = contract()
    strings = release("R2", "2024-01-01T00:00:00Z", ["C1", contract()], ocid="ocds-b")
    ds = bidwatch.load(ocds=[write(tmp_path, {"releases": [not_array, strings]})])
    assert ds.contracts.get_column("tender_id").to_list() == ["ocds-b"]
    notes = notes_of(ds, "contracts")
    assert any(
        n.startswith("1 release(s) have a contracts section that is not an array") for n in notes
    )
    assert any(
        n == "1 contracts entr(ies) are not contract objects: not read "
        "(e.g. releases[1] ocid=ocds-b contracts[0])"
        for n in notes
    )


def test_cancelled_contracts_alone_are_said_on_another_table(tmp_path: Path) -> None:
    cancelled = contract(status="cancelled", amendments=[{"id": "1", "rationale": "x"}])
    ds = bidwatch.load(ocds=[write(tmp_path, release("R1", "2024-01-01T00:00:00Z", [cancelled]))])
    assert ds.contracts.height == 0
    assert not any(s.table == "contracts" for s in ds.sources)
    said = [n for s in ds.sources for n in s.notes if n.startswith("contracts: ")]
    assert said == [
        "contracts: 1 contract(s) with status cancelled (cancelled before signature) are not "
        "read, nor their 1 amendment(s) (e.g. ocid=ocds-t contracts[0])"
    ]


def test_amendments_of_contracts_the_newest_release_drops_are_said(tmp_path: Path) -> None:
    old = contract("OLD", amendments=[{"id": "1", "date": "2024-01-05", "rationale": "x"}])
    releases = [
        release("R1", "2024-01-01T00:00:00Z", [old]),
        release("R2", "2024-02-01T00:00:00Z", [contract("NEW")]),
    ]
    raw = raw_tables(write(tmp_path, {"releases": releases}))
    assert "change_orders" not in raw
    assert any(
        n.startswith("change_orders: 1 amendment(s) in earlier releases belong to contracts")
        for n in raw["contracts"].notes
    )
