"""The command line: each command, its outputs, its errors, its determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from bidwatch.cli import build_parser, main
from bidwatch.detectors import REGISTRY

from .conftest import ROOT, random_market

OUTPUTS = {
    "tenders.csv",
    "firms.csv",
    "groups.csv",
    "pairs.csv",
    "buyers.csv",
    "findings.csv",
    "findings.parquet",
    "contributions.csv",
    "entities.csv",
    "rejected.csv",
    "scan.json",
    "report.html",
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("market")
    tenders, bids = random_market(seed=11, tenders=150)
    tenders.write_csv(path / "tenders.csv")
    bids.write_csv(path / "bids.csv")
    return path


def test_scan_writes_every_output(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "scan",
            "--bids",
            str(folder / "bids.csv"),
            "--tenders",
            str(folder / "tenders.csv"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert {p.name for p in out.iterdir()} == OUTPUTS
    printed = capsys.readouterr().out
    assert "Scanned 150 tenders" in printed
    assert "Top tenders:" in printed
    tenders = pl.read_csv(out / "tenders.csv")
    assert tenders.height == 150
    assert tenders.columns[:6] == [
        "rank",
        "tender_id",
        "risk",
        "collusion_risk",
        "materials_risk",
        "top_reasons",
    ]
    firms = pl.read_csv(out / "firms.csv")
    assert firms.columns[:9] == [
        "rank",
        "firm_id",
        "name",
        "bidder_ids",
        "bidder_names",
        "risk",
        "collusion_risk",
        "materials_risk",
        "top_reasons",
    ]
    findings = pl.read_csv(out / "findings.csv")
    assert findings.equals(
        pl.read_parquet(out / "findings.parquet").with_columns(pl.col("firms").list.join(";"))
    )
    summary = json.loads((out / "scan.json").read_text(encoding="utf-8"))
    for source in summary["inputs"]:
        assert source["rows_read"] == source["rows_used"] + source["rows_rejected"]
    assert {d["name"] for d in summary["detectors"]} == {d.name for d in REGISTRY}
    ran = [d for d in summary["detectors"] if d["status"] == "ran"]
    assert ran
    assert all(d["flag_rate"] == pytest.approx(d["flagged"] / d["scanned"], abs=1e-6) for d in ran)
    assert summary["config"]["detectors"]["bid-cv"]["params"]["fence"] == 1.5


def test_folder_argument_and_outputs_are_byte_identical(folder: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    extras = ["--xlsx", "--graph", "--lang", "zh"]
    assert main(["scan", str(folder), "--out", str(first), "--quiet", *extras]) == 0
    # Detectors two at a time (the default here), then one at a time: the same files.
    assert main(["scan", str(folder), "--out", str(second), "--quiet", "--jobs", "1", *extras]) == 0
    for name in OUTPUTS - {"scan.json"} | {"report.xlsx", "graph.graphml", "graph.gexf"}:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    a = json.loads((first / "scan.json").read_text(encoding="utf-8"))
    b = json.loads((second / "scan.json").read_text(encoding="utf-8"))
    a.pop("started_at"), b.pop("started_at")
    assert a == b


def test_no_html(folder: Path, tmp_path: Path) -> None:
    assert main(["scan", str(folder), "--out", str(tmp_path), "--no-html", "--quiet"]) == 0
    assert not (tmp_path / "report.html").exists()


def test_bids_only_without_identities(tmp_path: Path) -> None:
    _, bids = random_market(seed=2, tenders=120)
    bids.select("tender_id", "amount").write_csv(tmp_path / "bids.csv")
    assert (
        main(
            ["scan", "--bids", str(tmp_path / "bids.csv"), "--out", str(tmp_path / "o"), "--quiet"]
        )
        == 0
    )
    summary = json.loads((tmp_path / "o" / "scan.json").read_text(encoding="utf-8"))
    status = {d["name"]: d for d in summary["detectors"]}
    assert status["bid-cv"]["status"] == "ran"
    assert status["winner-near-estimate"]["status"] == "skipped"
    assert "bids.is_winner" in status["winner-near-estimate"]["reason"]
    assert pl.read_csv(tmp_path / "o" / "firms.csv").height == 0


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["scan", "--bids", "nope.csv", "--out", "x"], "nope.csv: file not found"),
        (["scan", "--out", "x"], "no bids found"),
        (["detectors", "bid-cvv"], "no detector 'bid-cvv'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str],
    fragment: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert err.count("\n") == 1
    assert err.startswith("bidwatch: error: ")


@pytest.mark.parametrize("jobs", ["0", "-1", "two"])
def test_jobs_must_be_one_or_more(jobs: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["scan", "--bids", "b.csv", "--out", "x", "--jobs", jobs])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --jobs: {jobs!r} is not a number of detectors" in err
    assert "give 1 or more, e.g. --jobs 2" in err


def test_bad_config_is_one_line(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bidwatch.toml"
    config.write_text("[detectors.bid-cv]\nfense = 2\n", encoding="utf-8")
    assert main(["scan", str(folder), "--config", str(config), "--out", str(tmp_path / "o")]) == 2
    assert "unknown parameter 'fense'" in capsys.readouterr().err


def test_detectors_list_and_doc(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detectors"]) == 0
    listing = capsys.readouterr().out
    assert all(d.name in listing for d in REGISTRY)
    assert main(["detectors", "bid-cv"]) == 0
    doc = capsys.readouterr().out
    assert doc.startswith("# bid-cv")
    assert "## Parameters" in doc
    assert "`min_comparable`" in doc


def test_catalogue_in_step_with_code(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["catalogue", "--check", "--dir", str(ROOT / "detectors")]) == 0
    assert main(["catalogue", "--dir", str(tmp_path)]) == 0
    (tmp_path / "bid-cv.md").write_text("stale", encoding="utf-8")
    (tmp_path / "gone.md").write_text("old", encoding="utf-8")
    capsys.readouterr()
    assert main(["catalogue", "--check", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "bid-cv.md: out of date" in err
    assert "gone.md: no such detector" in err


def test_init_writes_a_config_that_loads(tmp_path: Path, folder: Path) -> None:
    path = tmp_path / "bidwatch.toml"
    assert main(["init", str(path)]) == 0
    assert main(["init", str(path)]) == 2
    assert (
        main(["scan", str(folder), "--config", str(path), "--out", str(tmp_path / "o"), "--quiet"])
        == 0
    )


def test_explain(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    main(["scan", str(folder), "--out", str(out), "--quiet"])
    top = pl.read_csv(out / "tenders.csv").row(0, named=True)
    capsys.readouterr()
    assert main(["explain", top["tender_id"], "--scan", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"tender {top['tender_id']}: risk {top['risk']:.1f}" in text
    low = pl.read_csv(out / "tenders.csv").filter(pl.col("risk") == 0).row(0, named=True)
    assert main(["explain", low["tender_id"], "--scan", str(out)]) == 0
    assert "risk 0" in capsys.readouterr().out
    assert main(["explain", "no-such-id", "--scan", str(out)]) == 2


def test_every_command_and_option_has_help() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0]  # type: ignore[union-attr]
    for choice in commands._choices_actions:
        assert choice.help, f"command {choice.dest} has no help"
    for name, sub in commands.choices.items():
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"{name} {action.dest} has no help"


def test_console_script_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bidwatch.cli", "detectors"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "bid-cv" in done.stdout


def test_outputs_never_overwrite_inputs(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "data"
    copy.mkdir()
    for name in ("bids.csv", "tenders.csv"):
        (copy / name).write_bytes((folder / name).read_bytes())
    before = (copy / "tenders.csv").read_bytes()
    assert main(["scan", str(copy), "--out", str(copy)]) == 2
    assert "folder being scanned" in capsys.readouterr().err
    assert (
        main(
            [
                "scan",
                "--bids",
                str(copy / "bids.csv"),
                "--tenders",
                str(copy / "tenders.csv"),
                "--out",
                str(copy),
            ]
        )
        == 2
    )
    assert "would overwrite its input" in capsys.readouterr().err
    assert (copy / "tenders.csv").read_bytes() == before


def test_unwritable_output_is_one_line(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    assert main(["scan", str(folder), "--out", str(blocker / "out"), "--quiet"]) == 2
    assert main(["synth", "--tenders", "5", "--out", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert err.count("bidwatch: error:") == 2


def test_demo_scan_names_its_top_tenders_and_groups(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's first command: the demo folder scans with nothing rejected."""
    out = tmp_path / "out"
    assert main(["scan", str(ROOT / "fixtures" / "demo"), "--out", str(out), "--no-html"]) == 0
    printed = capsys.readouterr().out
    assert "0 of 13747 input rows rejected" in printed
    groups = pl.read_csv(out / "groups.csv")
    top = groups.row(0, named=True)
    assert "Top suspected groups:" in printed
    assert (
        f"{top['group_id']}  risk {top['risk']:.1f}  {top['tenders']} tenders together" in printed
    )
    truth = pl.read_csv(ROOT / "fixtures" / "demo" / "truth" / "firms.csv")
    ring = dict(truth.select("bidder_id", "group").iter_rows())
    members = top["members"].split(";")
    assert len({ring[m] for m in members}) == 1, "the top group is one planted ring"
    assert ring[members[0]]


def test_explain_prints_the_case_of_a_tender_firm_and_group(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["scan", str(ROOT / "fixtures" / "demo"), "--out", str(out), "--no-html"]) == 0
    printed = capsys.readouterr().out
    assert "Top firms:" in printed
    assert f"bidwatch explain {pl.read_csv(out / 'tenders.csv')['tender_id'][0]}" in printed
    findings = pl.read_csv(out / "findings.csv", infer_schema_length=0)

    tender = pl.read_csv(out / "tenders.csv").row(0, named=True)
    assert main(["explain", tender["tender_id"], "--scan", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"tender {tender['tender_id']}: risk {tender['risk']:.1f}" in text
    assert "Where the risk comes from:" in text
    own = findings.filter(pl.col("subject_id") == tender["tender_id"])
    assert f"Findings ({own.height}):" in text
    assert all(message in text for message in own.get_column("message"))

    group = pl.read_csv(out / "groups.csv").row(0, named=True)
    assert main(["explain", group["group_id"], "--scan", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"group {group['group_id']}: risk {group['risk']:.1f}" in text
    assert group["members"] in text

    pair = pl.read_csv(out / "pairs.csv").row(0, named=True)
    assert main(["explain", pair["pair_id"], "--scan", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"pair {pair['pair_id']}: risk {pair['risk']:.1f}" in text
    assert "cobid-pairs" in text

    entities = pl.read_csv(out / "entities.csv", infer_schema_length=0)
    merged = entities.filter(pl.col("method") != "self").row(0, named=True)
    assert main(["explain", merged["firm_id"], "--scan", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Names merged into it:" in text
    assert merged["bidder_name"] in text
