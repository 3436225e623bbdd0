"""Shared pieces of the benchmark suites: `pytest bench/ --benchmark-only`.

Every benchmark sets `benchmark.group` to the problem (op, shape, pass) and
`benchmark.extra_info["provider"]` to the implementation. Baselines a user would otherwise
write: `eager` (the formula in plain torch, autograd saving what it likes), `aimclr_style`
(the published code's way, where it applies), `compile` (torch.compile of the formula), and
msclr's own `reference` backend (explicit backward). At the end of the run a table of
speed-ups of every provider against each baseline measured in the same run is printed, and
written as Markdown to $MSCLR_BENCH_MD when that is set (the README's tables come from it).

Each problem runs `ROUNDS` timed rounds (default 5, `MSCLR_BENCH_ROUNDS`) after a warm-up;
the table gives the median and the spread (max - min) / median. The load average is recorded
before and after the run; when it exceeds the number of cores the table says the ratios are
distorted (other jobs slow the slower providers more), and with `MSCLR_BENCH_STRICT=1` the run
refuses to start.
"""

from __future__ import annotations

import os
import platform
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import torch

# The benches reuse the tests' fixtures (NTU file writers, the independent ST-GCN).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

ROUNDS = max(1, int(os.environ.get("MSCLR_BENCH_ROUNDS", "5")))
BASELINES = ("eager", "aimclr_style", "compile", "reference")
_LOAD: dict[str, tuple[float, float, float]] = {}


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def pytest_sessionstart(session):
    _LOAD["before"] = load_average()
    cores = os.cpu_count() or 1
    if os.environ.get("MSCLR_BENCH_STRICT") == "1" and _LOAD["before"][0] > cores:
        pytest.exit(f"load average {_LOAD['before'][0]:.2f} exceeds the {cores} cores: benchmarks refused", 2)


def machine() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (torch {torch.__version__})"


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _stats(bench):
    stats = getattr(bench, "stats", None)
    return getattr(stats, "stats", stats)  # Metadata.stats -> Stats


def _median(bench) -> float | None:
    return getattr(_stats(bench), "median", None)


def _spread(bench) -> float | None:
    s = _stats(bench)
    lo, hi, med = getattr(s, "min", None), getattr(s, "max", None), getattr(s, "median", None)
    return (hi - lo) / med if None not in (lo, hi, med) and med > 0 else None


def load_line() -> str:
    cores = os.cpu_count() or 1
    before, after = _LOAD.get("before"), load_average()
    worst = max(before[0] if before else 0.0, after[0])
    line = f"Load average (1/5/15 min): before {_fmt(before)}, after {_fmt(after)} on {cores} cores"
    if worst > cores:
        line += " -- LOADED MACHINE: other jobs distort these ratios; rerun on an idle machine"
    return line


def _fmt(load) -> str:
    return "n/a" if load is None else "/".join(f"{v:.2f}" for v in load)


def ratio_table(benchmarks) -> list[str]:
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    spread: dict[str, dict[str, float | None]] = defaultdict(dict)
    extra: dict[str, dict[str, dict]] = defaultdict(dict)
    for b in benchmarks:
        med = _median(b)
        prov = b.extra_info.get("provider", b.name)
        if med is not None:
            groups[b.group or b.name][prov] = med
            spread[b.group or b.name][prov] = _spread(b)
            extra[b.group or b.name][prov] = b.extra_info
    rounds = sorted({len(getattr(_stats(b), "data", []) or []) for b in benchmarks} - {0})
    lines = [
        f"Machine: {machine()}",
        load_line(),
        f"Rounds per problem: {', '.join(map(str, rounds)) or '?'} (median; spread = (max - min) / median)",
        "",
        "| problem | provider | median ms | spread | " + " | ".join(f"x {b}" for b in BASELINES) + " | notes |",
        "|---|---|---:|---:|" + "---:|" * len(BASELINES) + "---|",
    ]
    for group in sorted(groups):
        times = groups[group]
        for prov, t in sorted(times.items(), key=lambda kv: kv[1]):
            ratios = [f"{times[b] / t:.2f}" if b in times else "-" for b in BASELINES]
            sp = spread[group][prov]
            note = extra[group][prov].get("note", "")
            sp_text = f"{100 * sp:.0f}%" if sp is not None else "-"
            lines.append(f"| {group} | {prov} | {t * 1e3:.3f} | {sp_text} | " + " | ".join(ratios) + f" | {note} |")
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    lines = ratio_table(session.benchmarks)
    terminalreporter.write_sep("=", "msclr speed-ups (same run)")
    for line in lines:
        terminalreporter.write_line(line)
    path = os.environ.get("MSCLR_BENCH_MD")
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
