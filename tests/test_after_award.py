"""Tables after the award: units, months, signed amounts, row rules, contractors as firms."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import bidwatch
from bidwatch import entities
from bidwatch.cli import find_inputs, main
from bidwatch.config import Mapping
from bidwatch.errors import InputError
from bidwatch.normalise import period_text
from bidwatch.units import base_symbol, factor, parse_unit

BIDS = pl.DataFrame(
    {
        "tender_id": ["T1", "T1", "T2", "T2"],
        "bidder_name": [
            "上海市通达路桥工程有限公司",
            "上海恒远建设有限公司",
            "上海恒远建设有限公司",
            "上海市通达路桥工程有限公司",
        ],
        "amount": [100.0, 110.0, 200.0, 210.0],
        "is_winner": [True, False, True, False],
    }
)


@pytest.mark.parametrize(
    ("written", "symbol"),
    [
        ("元/吨", "t"),
        ("元/t", "t"),
        ("吨", "t"),
        ("T", "t"),
        ("公斤", "kg"),
        ("㎡", "m2"),
        ("平方米", "m2"),
        ("m²", "m2"),
        ("元/m³", "m3"),
        ("立方米", "m3"),
        ("0.01mm", "0.01mm"),
        ("MPa", "MPa"),
        ("套", "set"),
    ],
)
def test_units_read_into_one_symbol(written: str, symbol: str) -> None:
    assert parse_unit(written) == (symbol, None)


def test_unknown_units_and_price_scales_are_refused_with_the_fix() -> None:
    symbol, problem = parse_unit("桶")
    assert symbol is None
    assert problem is not None
    assert "'桶'" in problem
    assert "[values.unit]" in problem
    symbol, problem = parse_unit("万元/吨")
    assert symbol is None
    assert problem is not None
    assert "元 per unit" in problem


def test_base_units_convert_within_a_dimension_only() -> None:
    frame = pl.DataFrame({"unit": ["kg", "t", "cm", "set", "pc"]})
    out = frame.select(base_symbol(pl.col("unit")).alias("base"), factor(pl.col("unit")))
    assert out.get_column("base").to_list() == ["t", "t", "m", "set", "pc"]
    assert out.get_column("unit").to_list() == pytest.approx([1e-3, 1.0, 1e-2, 1.0, 1.0])


@pytest.mark.parametrize(
    ("written", "month"),
    [
        ("2024-03", "2024-03"),
        ("2024/3", "2024-03"),
        ("2024年3月", "2024-03"),
        ("202403", "2024-03"),
        ("2024-03-15", "2024-03"),
        ("2024.12", "2024-12"),
    ],
)
def test_periods_read_as_months(written: str, month: str) -> None:
    assert period_text(written) == (month, None)


@pytest.mark.parametrize("written", ["March", "2024-13", "24-03"])
def test_periods_that_are_not_months_are_refused(written: str) -> None:
    value, problem = period_text(written)
    assert value is None
    assert problem is not None
    assert "YYYY-MM" in problem


def _reasons(data: bidwatch.Dataset, table: str) -> dict[tuple[int, str], str]:
    rows = data.rejected.filter(pl.col("table") == table)
    return {(r, c): why for r, c, why in rows.select("row", "column", "reason").iter_rows()}


def test_bad_rows_after_the_award_are_rejected_with_their_reason() -> None:
    data = bidwatch.load(
        bids=BIDS,
        items=pl.DataFrame(
            {
                "tender_id": ["T1", "T1", "T1", "T1"],
                "bidder_name": ["上海市通达路桥工程有限公司"] * 3 + [None],
                "material": ["沥青", "钢筋", "水泥", "碎石"],
                "unit": ["元/吨", "公斤", "桶", "m3"],
                "quantity": ["10", "-5", "3", "8"],
                "unit_price": ["4200", "4.1", "300", "110"],
            }
        ),
        reference_prices=pl.DataFrame(
            {
                "material": ["沥青", "沥青", "钢筋", "碎石"],
                "period": ["2024-03", "2024年3月", None, "March"],
                "unit": ["t", "吨", "t", "m3"],
                "unit_price": [4500.0, 4400.0, 4000.0, 100.0],
            }
        ),
        change_orders=pl.DataFrame(
            {"tender_id": ["T1", "T1"], "amount": ["-2000", "3,500"], "reason": ["减少", "增加"]}
        ),
        inspections=pl.DataFrame(
            {
                "tender_id": ["T1", "T1"],
                "item": ["压实度", "路面厚度"],
                "measured": [95.0, None],
                "required": [96.0, 20.0],
                "result": [None, None],
            }
        ),
        contracts=pl.DataFrame({"tender_id": ["T1", "T1"], "contract_amount": [100.0, 100.0]}),
    )
    items = _reasons(data, "items")
    assert "quantity -5 is negative" in items[(2, "quantity")]
    assert "'桶' is not a known unit" in items[(3, "unit")]
    assert "names no bidder" in items[(4, "bidder_name")]
    assert data.items.get_column("unit").to_list() == ["t"]
    refs = _reasons(data, "reference_prices")
    assert "duplicated reference price" in refs[(2, "material")]
    assert "period is empty" in refs[(3, "period")]
    assert "'March' is not a month" in refs[(4, "period")]
    assert data.change_orders.get_column("amount").to_list() == [-2000.0, 3500.0]
    assert "no result" in _reasons(data, "inspections")[(2, "result")]
    assert "duplicated contract" in _reasons(data, "contracts")[(2, "tender_id")]
    for source in data.sources:
        assert source.rows_read == source.rows_used + source.rows_rejected, source.path


def test_the_mapping_spells_out_units(tmp_path: Path) -> None:
    items = pl.DataFrame(
        {
            "tender_id": ["T1"],
            "bidder_name": ["上海市通达路桥工程有限公司"],
            "material": ["碎石"],
            "unit": ["车"],
            "quantity": [4.0],
            "unit_price": [900.0],
        }
    )
    mapping = Mapping.from_dict({"values": {"unit": {"车": "m3"}}})
    data = bidwatch.load(bids=BIDS, items=items, mapping=mapping)
    assert data.items.get_column("unit").to_list() == ["m3"]
    with pytest.raises(InputError, match=r"\[values.unit\] maps '车' to 'truck'"):
        Mapping.from_dict({"values": {"unit": {"车": "truck"}}})


def test_contractors_resolve_to_the_firms_that_bid() -> None:
    data = entities.resolve(
        bidwatch.load(
            bids=BIDS,
            contracts=pl.DataFrame(
                {
                    "tender_id": ["T1", "T2", "T9"],
                    "contractor_name": [
                        "通达路桥工程有限公司",
                        "上海恒远建设有限公司",
                        "江西省鑫盛市政工程有限公司",
                    ],
                    "contract_amount": [100.0, 200.0, 300.0],
                }
            ),
        )
    )
    firm_of = dict(data.bids.select("bidder_name", "firm_id").unique().iter_rows())
    contracts = dict(data.contracts.select("tender_id", "firm_id").iter_rows())
    assert contracts["T1"] == firm_of["上海市通达路桥工程有限公司"]
    assert contracts["T2"] == firm_of["上海恒远建设有限公司"]
    assert contracts["T9"] is not None
    assert contracts["T9"] not in firm_of.values()
    assert any("T9" in note for note in data.notes), "a contract of an unknown tender is said"


def test_a_folder_is_searched_for_every_table(tmp_path: Path) -> None:
    BIDS.write_csv(tmp_path / "bids.csv")
    pl.DataFrame(
        {"tender_id": ["T1"], "contract_amount": [100.0], "final_amount": [150.0]}
    ).write_csv(tmp_path / "contracts.csv")
    pl.DataFrame({"tender_id": ["T1"], "amount": [50.0], "reason": ["设计变更"]}).write_parquet(
        tmp_path / "change_orders.parquet"
    )
    found = find_inputs(tmp_path)
    assert found["contracts"].name == "contracts.csv"
    assert found["change_orders"].name == "change_orders.parquet"
    out = tmp_path / "out"
    assert main(["scan", str(tmp_path), "--out", str(out), "--no-html", "--quiet"]) == 0
    summary = pl.read_json(out / "scan.json")
    tables = {row["table"] for row in summary.get_column("inputs").explode().to_list()}
    assert {"bids", "contracts", "change_orders"} <= tables


def test_inspection_values_may_be_zero_or_negative() -> None:
    data = bidwatch.load(
        bids=BIDS,
        inspections=pl.DataFrame(
            {
                "tender_id": ["T1", "T1"],
                "item": ["裂缝宽度", "高程偏差"],
                "measured": [0.0, -3.0],
                "required": [0.2, 10.0],
                "unit": ["mm", "mm"],
                "result": ["合格", "合格"],
            }
        ),
    )
    assert data.rejected.height == 0
    assert data.inspections.get_column("measured").to_list() == [0.0, -3.0]


def test_items_of_a_tender_that_names_no_bidder_are_kept() -> None:
    data = bidwatch.load(
        bids=BIDS,
        items=pl.DataFrame(
            {
                "tender_id": ["T1", "T2", "T2"],
                "bidder_name": [None, "上海恒远建设有限公司", None],
                "material": ["沥青", "沥青", "钢筋"],
                "unit": ["t", "t", "t"],
                "quantity": [10.0, 10.0, 2.0],
                "unit_price": [4000.0, 4100.0, 3900.0],
            }
        ),
    )
    # T1's bill names no bidder: the contract holder's. In T2 the unnamed item is nobody's.
    assert data.items.get_column("tender_id").to_list() == ["T1", "T2"]
    assert _reasons(data, "items") == {
        (3, "bidder_name"): "the item names no bidder: give a bidder_id or bidder_name"
    }


def test_labour_is_priced_per_working_day() -> None:
    assert parse_unit("工日") == ("工日", None)
    frame = pl.DataFrame({"unit": ["工时", "工日", "h"]})
    out = frame.select(base_symbol(pl.col("unit")).alias("base"), factor(pl.col("unit")))
    assert out.get_column("base").to_list() == ["工日", "工日", "d"]
    assert out.get_column("unit").to_list() == pytest.approx([1 / 8, 1.0, 1 / 24])


def test_key_materials_are_named_many_ways() -> None:
    from bidwatch.detectors._after import material_class

    names = [
        "C30商品混凝土",
        "HRB400螺纹钢筋",
        "70#道路石油沥青",
        "沥青混凝土AC-13",
        "中砂",
        "M7.5水泥砂浆",
        "P.O42.5水泥",
        "土方开挖",
    ]
    classes = pl.DataFrame({"m": names}).select(material_class(pl.col("m"))).to_series()
    assert classes.to_list() == [
        "concrete",
        "steel",
        "asphalt",
        "asphalt",
        "aggregate",
        "cement",
        "cement",
        None,
    ]
