"""Scale: the full scan of synthetic national data, timed stage by stage, with peak memory.

    python benchmarks/scale.py [--sizes 10000 100000 1000000] [--data /tmp/bidwatch-scale]
                               [--jobs N]

For each size, synthetic data (``bidwatch synth --tenders N --seed 1 --format parquet``,
every table after the award included) is generated into DATA/tN unless it is already
there. Then the scan runs in a fresh process exactly as a user runs it:
``bidwatch scan DIR --out OUT --no-html --quiet`` (with ``--jobs N`` if given; else the
scan's default number of detectors at a time), through the command line's own entry point.
The child records the time of each stage (reading, entity resolution, the detectors, risk,
writing the tables) from ``ScanResult.stages``, each detector's from its run (timed while
sharing the machine with the detector beside it), and its own peak memory (maximum RSS),
then writes the HTML report of the same result, timed apart. A watchdog in this process
reads the child's RSS from /proc and kills it above ``--max-rss-gib``, so that a size too
large for the machine fails alone instead of taking the machine down.

Bids per second = bids / full scan time. The growth exponent between two sizes is
log(t2 / t1) / log(bids2 / bids1): 1 is linear.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path("/tmp/bidwatch-scale")
DEFAULT_SIZES = [10_000, 100_000, 1_000_000]
SEED = 1


# ----------------------------------------------------------------------------- the machine


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, load and versions: what a figure was measured on."""
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = 0.0
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) / 2**20
    versions = {"python": platform.python_version()}
    for package in ("bidwatch", "polars", "numpy", "scipy", "pandas"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_gib": round(memory, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "versions": versions,
    }


def describe(info: dict[str, Any]) -> str:
    v = info["versions"]
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB; {info['os']}; "
        f"Python {v['python']}, polars {v['polars']}, numpy {v['numpy']}, scipy {v['scipy']}, "
        f"bidwatch {v['bidwatch']}; load average at start {info['load_average']}"
    )


# -------------------------------------------------------------------- running under a limit


def rss_gib(pid: int) -> float | None:
    """Resident memory of a live process, from /proc (None once it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def run_limited(command: list[str], max_rss_gib: float) -> dict[str, Any]:
    """Run ``command``; kill it if its RSS passes ``max_rss_gib``. Returns stdout, stderr,
    wall seconds, the return code, the largest RSS seen by the watchdog and whether it was
    killed."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = {"peak": 0.0, "killed": False}

    def watch() -> None:
        while child.poll() is None:
            rss = rss_gib(child.pid)
            if rss is not None:
                seen["peak"] = max(seen["peak"], rss)
                if rss > max_rss_gib:
                    seen["killed"] = True
                    child.kill()
                    return
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = child.communicate()
    watcher.join()
    return {
        "stdout": out,
        "stderr": err,
        "seconds": time.perf_counter() - started,
        "returncode": child.returncode,
        "watch_peak_gib": seen["peak"],
        "killed": seen["killed"],
    }


# ------------------------------------------------------------------------------ the child


def scan_child(folder: Path, out: Path, jobs: int | None = None) -> dict[str, Any]:
    """Run ``bidwatch scan folder --out out --no-html --quiet [--jobs N]`` through the
    command line's entry point, recording each stage; then write the HTML report of the same
    result."""
    from bidwatch import api, cli

    caught: dict[str, Any] = {}
    load, scan = api.load, api.scan

    def timed_load(*args: Any, **kwargs: Any) -> Any:
        clock = time.perf_counter()
        data = load(*args, **kwargs)
        caught["load"] = time.perf_counter() - clock
        return data

    def timed_scan(*args: Any, **kwargs: Any) -> Any:
        clock = time.perf_counter()
        result = scan(*args, **kwargs)
        caught["scan"] = time.perf_counter() - clock
        caught["result"] = result
        return result

    api.load, api.scan = timed_load, timed_scan  # type: ignore[assignment]
    clock = time.perf_counter()
    command = ["scan", str(folder), "--out", str(out), "--no-html", "--quiet"]
    if jobs is not None:
        command += ["--jobs", str(jobs)]
    code = cli.main(command)
    total = time.perf_counter() - clock
    api.load, api.scan = load, scan  # type: ignore[assignment]
    if code != 0:
        raise SystemExit(code)
    peak_scan = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    result = caught["result"]
    data = result.data
    stages = {"load": caught["load"], **result.stages}
    # Writing: what the command did after the scan (tables, scan.json).
    stages["write"] = total - caught["load"] - caught["scan"]
    html: float | None
    html_error = None
    try:
        clock = time.perf_counter()
        result.write(out / "with_html", html=True)
        with_html = time.perf_counter() - clock
        clock = time.perf_counter()
        result.write(out / "without_html", html=False)
        html = max(0.0, with_html - (time.perf_counter() - clock))
    except Exception as exc:  # the report is measured apart: its failure must not hide the scan
        html = None
        html_error = f"{type(exc).__name__}: {exc}"
    firms = data.bids.get_column("firm_id").n_unique() if "firm_id" in data.bids.columns else 0
    return {
        "jobs": api.default_jobs() if jobs is None else jobs,
        "tenders": data.tenders.height,
        "bids": data.bids.height,
        "firms": firms,
        "rows": sum(s.rows_read for s in data.sources),
        "detectors": sum(r.status == "ran" for r in result.runs),
        "scan_seconds": total,
        "stages": stages,
        "detector_seconds": {r.name: r.seconds for r in result.runs if r.status == "ran"},
        "html_seconds": html,
        "html_error": html_error,
        "peak_scan_gib": peak_scan,
        "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


# ------------------------------------------------------------------------------ measuring


def generate(folder: Path, tenders: int, max_rss_gib: float) -> dict[str, Any] | None:
    """Synthetic data for ``tenders`` in ``folder``, unless it is there. Returns its cost."""
    if (folder / "bids.parquet").is_file():
        return None
    command = [sys.executable, "-m", "bidwatch.cli", "synth", "--tenders", str(tenders)]
    command += ["--seed", str(SEED), "--out", str(folder), "--format", "parquet"]
    done = run_limited(command, max_rss_gib)
    if done["returncode"] != 0:
        raise RuntimeError(f"synth {tenders} failed: {done['stderr'][-2000:]}")
    return {"seconds": done["seconds"], "peak_gib": done["watch_peak_gib"]}


def measure(
    tenders: int, data: Path, max_rss_gib: float, jobs: int | None = None
) -> dict[str, Any]:
    """Generate (if needed) and scan ``tenders`` tenders in a fresh, watched process."""
    folder = data / f"t{tenders}"
    synth = generate(folder, tenders, max_rss_gib)
    out = data / f"out{tenders}"
    command = [sys.executable, str(Path(__file__).resolve()), "_scan", str(folder), str(out)]
    if jobs is not None:
        command.append(str(jobs))
    done = run_limited(command, max_rss_gib)
    row: dict[str, Any] = {"size": tenders, "synth": synth, "wall_seconds": done["seconds"]}
    if done["killed"]:
        row["error"] = f"killed above {max_rss_gib} GiB RSS"
        return row
    if done["returncode"] != 0:
        row["error"] = done["stderr"].strip().splitlines()[-1] if done["stderr"] else "failed"
        return row
    row.update(json.loads(done["stdout"].strip().splitlines()[-1]))
    row["watch_peak_gib"] = done["watch_peak_gib"]
    row["bids_per_second"] = row["bids"] / row["scan_seconds"]
    return row


def exponent(small: dict[str, Any], large: dict[str, Any]) -> float:
    """log(t_large / t_small) / log(bids_large / bids_small): 1 is linear growth."""
    return math.log(large["scan_seconds"] / small["scan_seconds"]) / math.log(
        large["bids"] / small["bids"]
    )


# ----------------------------------------------------------------------------- the tables


GROUPS = ("load", "entities", "detectors", "risk", "write")


def grouped(stages: dict[str, float]) -> dict[str, float]:
    """The stages in table order: load, entities, detectors (all of them), risk, write."""
    return {name: stages.get(name, 0.0) for name in GROUPS}


def render(rows: list[dict[str, Any]], top: int = 12) -> str:
    lines = [
        "| tenders | bids | firms | detectors | jobs | load | entities | detectors (all) "
        "| risk | write | full scan | peak memory | bids/s | HTML report |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    done = [r for r in rows if "error" not in r]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['size']:,} | {row['error']} |" + " |" * 12)
            continue
        g = grouped(row["stages"])
        html = "n/a" if row["html_seconds"] is None else f"{row['html_seconds']:.1f} s"
        lines.append(
            f"| {row['tenders']:,} | {row['bids']:,} | {row['firms']:,} | {row['detectors']} "
            f"| {row['jobs']} | {g['load']:.1f} | {g['entities']:.1f} | {g['detectors']:.1f} "
            f"| {g['risk']:.1f} | {g['write']:.1f} | {row['scan_seconds']:.1f} s "
            f"| {row['peak_scan_gib']:.2f} GiB | {row['bids_per_second']:,.0f} | {html} |"
        )
    if done:
        largest = done[-1]
        detectors = largest["detector_seconds"]
        slowest = sorted(detectors.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        lines.append("")
        alone = largest["jobs"] == 1
        how = "one at a time" if alone else f"{largest['jobs']} at a time, each timed beside others"
        lines.append(
            f"Slowest detectors at {largest['tenders']:,} tenders ({how}): "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in slowest)
        )
    for row in done:
        if row.get("html_error"):
            lines.append(f"HTML report at {row['tenders']:,} tenders failed: {row['html_error']}")
    for a, b in itertools.pairwise(done):
        lines.append(
            f"Growth exponent {a['tenders']:,} -> {b['tenders']:,} tenders "
            f"({a['bids']:,} -> {b['bids']:,} bids): {exponent(a, b):.2f}"
        )
    synth = [r for r in rows if r.get("synth")]
    for row in synth:
        lines.append(
            f"Generated {row['size']:,} tenders in {row['synth']['seconds']:.1f} s "
            f"({row['synth']['peak_gib']:.2f} GiB)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=DEFAULT_SIZES, help="tenders per run"
    )
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder caching the synthetic data"
    )
    parser.add_argument(
        "--max-rss-gib",
        type=float,
        default=18.0,
        help="kill a run whose resident memory passes this (default 18)",
    )
    parser.add_argument(
        "--jobs", type=int, help="detectors at a time (default: the scan's own default)"
    )
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["_scan"]:
        jobs = int(argv[3]) if len(argv) > 3 else None
        print(json.dumps(scan_child(Path(argv[1]), Path(argv[2]), jobs)))
        return 0
    args = parser.parse_args(argv)
    info = machine()
    print(describe(info), file=sys.stderr)
    rows = []
    for size in sorted(args.sizes):
        row = measure(size, args.data, args.max_rss_gib, args.jobs)
        rows.append(row)
        summary = row.get("error") or f"{row['scan_seconds']:.1f} s, {row['peak_gib']:.2f} GiB"
        print(f"{size:,} tenders: {summary}", file=sys.stderr)
    print(f"Machine: {describe(info)}\n")
    print(render(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "runs": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
