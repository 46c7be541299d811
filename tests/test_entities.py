"""Entity resolution: one firm however spelt, two firms however alike, every merge explained."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import bidwatch
from bidwatch import entities
from bidwatch.config import EntityConfig
from bidwatch.entities import Links, word_endings
from bidwatch.errors import InputError
from bidwatch.identifiers import credit_code_valid
from bidwatch.names import parse
from bidwatch.report.i18n import labels


def code(first17: str) -> str:
    return next(
        first17 + c for c in "0123456789ABCDEFGHJKLMNPQRTUWXY" if credit_code_valid(first17 + c)
    )


def resolve(rows: list[dict[str, object]], **kwargs: object) -> pl.DataFrame:
    """bids -> {raw name: firm_id} table with method and matched_with."""
    bids = pl.DataFrame(rows)
    if "amount" not in bids.columns:
        bids = bids.with_columns(pl.lit(100.0).alias("amount"))
    data = entities.resolve(bidwatch.load(bids=bids, **kwargs))  # type: ignore[arg-type]
    assert data.entities is not None
    return data.entities.filter(pl.col("source") == "bids")


def firm_of(table: pl.DataFrame, name: str) -> str:
    return str(table.filter(pl.col("bidder_name") == name).get_column("firm_id").item())


SPELLINGS = [
    "大冶市路通公路工程有限公司",
    "大冶路通公路工程有限责任公司",
    "路通公路工程(大冶)有限公司",
    "路通公路工程（大冶）有限公司",
    "大冶市路通公路工程有限公司 ",
    "湖北省大冶市路通公路工程有限公司",
]


def test_one_firm_many_spellings() -> None:
    rows = [{"tender_id": f"T{i}", "bidder_name": n} for i, n in enumerate(SPELLINGS)]
    rows.append({"tender_id": "T0", "bidder_name": "大冶市鑫达路桥建设有限公司"})
    table = resolve(rows)
    assert (
        table.filter(pl.col("bidder_name").is_in(SPELLINGS)).get_column("firm_id").n_unique() == 1
    )
    assert firm_of(table, "大冶市鑫达路桥建设有限公司") != firm_of(table, SPELLINGS[0])
    merged = table.filter(pl.col("bidder_name") != SPELLINGS[0])
    assert set(merged.get_column("method")) <= {"exact", "self"}
    assert merged.filter(pl.col("method") == "exact").get_column("matched_with").is_not_null().all()


def test_same_trade_name_in_other_regions_stays_apart() -> None:
    table = resolve(
        [
            {"tender_id": "T1", "bidder_name": "大冶市路通公路工程有限公司"},
            {"tender_id": "T2", "bidder_name": "阳新县路通公路工程有限公司"},
            {"tender_id": "T3", "bidder_name": "路通公路工程有限公司"},
        ]
    )
    assert firm_of(table, "大冶市路通公路工程有限公司") != firm_of(
        table, "阳新县路通公路工程有限公司"
    )
    # Without a region and without a tender region to decide, the bare name joins neither.
    bare = table.filter(pl.col("bidder_name") == "路通公路工程有限公司")
    assert bare.get_column("method").item() == "self"


def test_the_tender_region_decides_a_bare_name() -> None:
    tenders = pl.DataFrame(
        {"tender_id": ["T1", "T2", "T3"], "region": ["大冶市", "阳新县", "阳新县"]}
    )
    table = resolve(
        [
            {"tender_id": "T1", "bidder_name": "大冶市路通公路工程有限公司"},
            {"tender_id": "T2", "bidder_name": "阳新县路通公路工程有限公司"},
            {"tender_id": "T3", "bidder_name": "路通公路工程有限公司"},
        ],
        tenders=tenders,
    )
    assert firm_of(table, "路通公路工程有限公司") == firm_of(table, "阳新县路通公路工程有限公司")


def test_look_alike_firms_stay_apart() -> None:
    table = resolve(
        [
            {"tender_id": "T1", "bidder_name": "大冶市路通公路工程有限公司"},
            {"tender_id": "T2", "bidder_name": "大冶市路达公路工程有限公司"},
            {"tender_id": "T3", "bidder_name": "大冶市路通市政工程有限公司"},
        ]
    )
    assert table.get_column("firm_id").n_unique() == 3


def test_a_typo_joins_only_with_a_shared_trace() -> None:
    alone = resolve(
        [
            {
                "tender_id": "T1",
                "bidder_name": "大冶市路通公路工程有限公司",
                "phone": "0714-6001001",
            },
            {
                "tender_id": "T2",
                "bidder_name": "大冶市路同公路工程有限公司",
                "phone": "0714-6009999",
            },
        ]
    )
    assert alone.get_column("firm_id").n_unique() == 2
    shared = resolve(
        [
            {
                "tender_id": "T1",
                "bidder_name": "大冶市路通公路工程有限公司",
                "phone": "0714-6001001",
            },
            {
                "tender_id": "T2",
                "bidder_name": "大冶市路同公路工程有限公司",
                "phone": "0714 600 1001",
            },
        ]
    )
    assert shared.get_column("firm_id").n_unique() == 1
    assert "supported" in set(shared.get_column("method"))


def test_a_shared_phone_alone_never_merges_different_names() -> None:
    table = resolve(
        [
            {
                "tender_id": "T1",
                "bidder_name": "大冶市路通公路工程有限公司",
                "phone": "13800001234",
            },
            {
                "tender_id": "T2",
                "bidder_name": "阳新县鑫达建筑安装有限公司",
                "phone": "13800001234",
            },
        ]
    )
    assert table.get_column("firm_id").n_unique() == 2


def test_co_bidders_are_never_one_firm() -> None:
    table = resolve(
        [
            {"tender_id": "T1", "bidder_name": "大冶市路通公路工程有限公司"},
            {"tender_id": "T1", "bidder_name": "路通公路工程(大冶)有限公司"},
        ]
    )
    assert table.get_column("firm_id").n_unique() == 2


def test_credit_codes() -> None:
    one, other = code("91420281MA4F00001"), code("91420281MA4F00002")
    table = resolve(
        [
            {"tender_id": "T1", "bidder_name": "路通公路工程有限公司", "credit_code": one},
            {"tender_id": "T2", "bidder_name": "Lutong Road Works", "credit_code": one},
            {"tender_id": "T3", "bidder_name": "路通公路工程有限公司(大冶)", "credit_code": other},
            {
                "tender_id": "T4",
                "bidder_name": "路通公路工程有限公司",
                "credit_code": "91420281MA4F000000",
            },
        ]
    )
    by_code = dict(table.select("credit_code", "firm_id").iter_rows())
    assert firm_of(table, "Lutong Road Works") == by_code[one], "a valid shared code merges"
    assert by_code[one] != by_code[other], "two valid codes never merge, whatever the names"
    assert "code" in set(table.get_column("method"))


def test_valid_codes_agree_with_the_check_of_one_code() -> None:
    valid = [code(f"91420281MA4F{n:05d}") for n in range(40)]
    written = [
        *valid,
        *(c.lower() for c in valid[:5]),
        *(f" {c}\t" for c in valid[5:10]),
        *(f"\x1c{c}\x1f" for c in valid[10:12]),  # str.strip() removes these too
        *(f"\u3000{c}" for c in valid[12:14]),  # non-ASCII: checked one by one
        *(c[:17] + ("1" if c[17] != "1" else "2") for c in valid[14:24]),  # wrong check
        *(c[:17] for c in valid[24:28]),
        *(c + "0" for c in valid[28:30]),
        "91420281MA4F0000I" + "0",  # I is no code letter
        "",
        "-",
    ]
    got = entities.valid_codes(pl.Series([*written, None], dtype=pl.String))
    expected = {c: c.strip().upper() for c in set(written) if credit_code_valid(c)}
    assert got == expected
    assert len(expected) == 40 + 5 + 5 + 2 + 2
    assert entities.valid_codes(pl.Series([], dtype=pl.String)) == {}


def test_codes_with_digits_of_other_scripts_are_invalid_not_a_crash() -> None:
    good = code("91420281MA4F00001")
    full_width = good[:2] + good[2:8].translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    arabic_indic = good[:2] + good[2:8].translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert credit_code_valid(good)
    for written in (full_width, arabic_indic):
        assert not credit_code_valid(written)
    got = entities.valid_codes(pl.Series([good, full_width, arabic_indic]))
    assert got == {good: good}


def test_transliteration() -> None:
    table = resolve(
        [
            {"tender_id": "T1", "bidder_name": "大冶市路通公路工程有限公司"},
            {"tender_id": "T2", "bidder_name": "Daye Lutong Highway Engineering Co., Ltd."},
            {"tender_id": "T3", "bidder_name": "Daye Hongda Highway Engineering Co., Ltd."},
        ]
    )
    assert firm_of(table, "Daye Lutong Highway Engineering Co., Ltd.") == firm_of(
        table, "大冶市路通公路工程有限公司"
    )
    assert firm_of(table, "Daye Hongda Highway Engineering Co., Ltd.") != firm_of(
        table, "大冶市路通公路工程有限公司"
    )


def test_homophone_firms_keep_an_english_name_unmerged() -> None:
    table = resolve(
        [
            {"tender_id": "T1", "bidder_name": "大冶市博峰建筑工程有限公司"},
            {"tender_id": "T2", "bidder_name": "大冶市博丰建筑工程有限公司"},
            {"tender_id": "T3", "bidder_name": "Daye Bofeng Construction Engineering Co., Ltd."},
        ]
    )
    assert table.get_column("firm_id").n_unique() == 3


def test_latin_legal_forms_and_short_names() -> None:
    table = resolve(
        [
            {"tender_id": "T1", "bidder_name": "Acme Construction S.p.A."},
            {"tender_id": "T2", "bidder_name": "ACME CONSTRUCTION SPA"},
            {"tender_id": "T3", "bidder_name": "Acne Construction S.p.A."},
            {"tender_id": "T4", "bidder_name": "Mediterranean Infrastructure Holdings GmbH"},
            {"tender_id": "T5", "bidder_name": "Mediteranean Infrastructure Holdings GmbH"},
        ]
    )
    assert firm_of(table, "Acme Construction S.p.A.") == firm_of(table, "ACME CONSTRUCTION SPA")
    assert firm_of(table, "Acme Construction S.p.A.") != firm_of(table, "Acne Construction S.p.A.")
    assert firm_of(table, "Mediterranean Infrastructure Holdings GmbH") == firm_of(
        table, "Mediteranean Infrastructure Holdings GmbH"
    ), "a one-letter typo in a long name is tolerated"


def test_branches_link_to_their_parent() -> None:
    table = resolve(
        [
            {"tender_id": "T1", "bidder_name": "大冶市路通公路工程有限公司"},
            {"tender_id": "T2", "bidder_name": "大冶市路通公路工程有限公司黄石分公司"},
        ]
    )
    parent = firm_of(table, "大冶市路通公路工程有限公司")
    branch = table.filter(pl.col("bidder_name").str.contains("分公司")).row(0, named=True)
    assert branch["firm_id"] != parent
    assert branch["parent_id"] == parent


def test_analyst_links_are_honoured(tmp_path: Path) -> None:
    links = tmp_path / "links.csv"
    links.write_text(
        "left,right,link\n"
        "大冶市路通公路工程有限公司,大冶市路达公路工程有限公司,must\n"
        "路通公路工程(大冶)有限公司,大冶市路通公路工程有限公司,cannot\n",
        encoding="utf-8",
    )
    rows = [
        {"tender_id": "T1", "bidder_name": "大冶市路通公路工程有限公司"},
        {"tender_id": "T2", "bidder_name": "大冶市路达公路工程有限公司"},
        {"tender_id": "T3", "bidder_name": "路通公路工程(大冶)有限公司"},
    ]
    data = entities.resolve(
        bidwatch.load(bids=pl.DataFrame(rows).with_columns(pl.lit(1.0).alias("amount"))),
        EntityConfig(),
        Links.load(links),
    )
    assert data.entities is not None
    table = data.entities
    assert firm_of(table, "大冶市路达公路工程有限公司") == firm_of(
        table, "大冶市路通公路工程有限公司"
    )
    assert firm_of(table, "路通公路工程(大冶)有限公司") != firm_of(
        table, "大冶市路通公路工程有限公司"
    )
    assert "must_link" in set(table.get_column("method"))


def test_links_through_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "links.csv").write_text(
        "left,right,link\n大冶市路通公路工程有限公司,大冶市路达公路工程有限公司,must\n",
        encoding="utf-8",
    )
    config = tmp_path / "bidwatch.toml"
    config.write_text('[entities]\nlinks = "links.csv"\n', encoding="utf-8")
    bids = pl.DataFrame(
        {
            "tender_id": ["T1", "T2"],
            "bidder_name": ["大冶市路通公路工程有限公司", "大冶市路达公路工程有限公司"],
            "amount": [1.0, 2.0],
        }
    )
    result = bidwatch.scan(bidwatch.load(bids=bids), config=config)
    assert result.ranking("firm").height == 1


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("a,b,link\nx,y,must\n", "needs the columns left, right, link"),
        ("left,right,link\nx,y,maybe\n", "row 2, column link"),
    ],
)
def test_bad_links_file(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "links.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=fragment):
        Links.load(path)


def test_word_endings_are_found_from_the_data() -> None:
    names = pl.Series(
        [
            f"{a}{b}kensetsu"
            for a in ("ara", "sei", "hoshi", "taka", "mori")
            for b in ("ka", "ki", "mo", "no", "ta")
        ]
        + [
            f"{a}gumi"
            for a in (
                "ara",
                "sei",
                "hoshi",
                "taka",
                "mori",
                "yama",
                "kawa",
                "ta",
                "naka",
                "ishi",
                "ono",
                "ue",
            )
        ]
    )
    endings = word_endings(names)
    assert "kensetsu" in endings
    assert "gumi" in endings
    assert "ensetsu" not in endings, "always preceded by k: not a word"
    assert not any(e.endswith("kensetsu") and e != "kensetsu" for e in endings)


def test_name_parts() -> None:
    parts = parse(
        pl.Series(["湖北省黄石市大冶市路通公路工程有限公司", "黄石市政工程有限公司"])
    ).to_dicts()
    assert parts[0]["regions"] == ["大冶", "湖北", "黄石"]
    assert (parts[0]["trade"], parts[0]["industry"]) == ("路通", "公路工程")
    assert parts[1]["regions"] == [], "黄石 may be a 字号; only the input can say it is a region"
    assert parts[1]["industry"] == "市政工程"


def test_entities_written_with_reasons(tmp_path: Path) -> None:
    rows = [
        {"tender_id": f"T{i}", "bidder_name": n, "amount": 1.0} for i, n in enumerate(SPELLINGS)
    ]
    result = bidwatch.scan(bidwatch.load(bids=pl.DataFrame(rows)))
    result.write(tmp_path, html=True)
    table = pl.read_csv(tmp_path / "entities.csv")
    assert {
        "firm_id",
        "bidder_id",
        "bidder_name",
        "method",
        "score",
        "matched_with",
        "parent_id",
    } <= set(table.columns)
    firms = pl.read_csv(tmp_path / "firms.csv")
    assert firms.height == 1
    assert (
        firms.get_column("bidder_names").item().count(";")
        == len(set(s.strip() for s in SPELLINGS)) - 1
    )
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "路通公路工程(大冶)有限公司" in page
    assert labels("en")["method_exact"] in page
