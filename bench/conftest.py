"""Shared pieces of the benchmark suites: `pytest bench/ --benchmark-only`.

Every benchmark sets `benchmark.group` to the problem (op, shape, pass) and
`benchmark.extra_info["provider"]` to the implementation (reference, compile, cpu, cuda,
triton). At the end of the run a table of speed-ups against `reference` and against
`compile` (torch.compile of the reference) measured in the same run is printed, and
written as Markdown to $MSCLR_BENCH_MD when that is set (the README's tables come from it).
"""

from __future__ import annotations

import os
import platform
from collections import defaultdict

import torch


def machine() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (torch {torch.__version__})"


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _median(bench) -> float | None:
    stats = getattr(bench, "stats", None)
    stats = getattr(stats, "stats", stats)  # Metadata.stats -> Stats
    return getattr(stats, "median", None)


def ratio_table(benchmarks) -> list[str]:
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    extra: dict[str, dict[str, dict]] = defaultdict(dict)
    for b in benchmarks:
        med = _median(b)
        prov = b.extra_info.get("provider", b.name)
        if med is not None:
            groups[b.group or b.name][prov] = med
            extra[b.group or b.name][prov] = b.extra_info
    lines = [
        f"Machine: {machine()}",
        "",
        "| problem | provider | median ms | x reference | x compile | notes |",
        "|---|---|---:|---:|---:|---|",
    ]
    for group in sorted(groups):
        times = groups[group]
        ref, comp = times.get("reference"), times.get("compile")
        for prov, t in sorted(times.items(), key=lambda kv: kv[1]):
            vs_ref = f"{ref / t:.2f}" if ref else "-"
            vs_comp = f"{comp / t:.2f}" if comp else "-"
            note = extra[group][prov].get("note", "")
            lines.append(f"| {group} | {prov} | {t * 1e3:.3f} | {vs_ref} | {vs_comp} | {note} |")
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
