"""bench/gpu_report.py: the one-command GPU report, checked on a CPU (--dry-run) and in parts."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "gpu_report.py"


@pytest.fixture(scope="module")
def gr():
    spec = importlib.util.spec_from_file_location("gpu_report", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_report"] = mod  # its dataclasses look their module up
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop("gpu_report", None)


DRY = {"dry_run": True, "rounds": 5, "compile_backend": "aot_eager", "budget_s": 60.0}


# ------------------------------------------------------------------------------ the cost formulas
def test_graph_conv_cost_by_hand(gr):
    # N=2, C_in=3, C_out=4, T=5, V=6, K=3, L=2 layouts
    # mix 2*K*N*T*V*C_in*C_out = 2*3*2*5*6*3*4 = 4320; aggregation 2*K*N*C_out*T*V*V = 2*3*2*4*5*6*6 = 8640
    flops, nbytes = gr.graph_conv_cost(2, 3, 4, 5, 6, k=3, layouts=2)
    assert flops == 4320 + 8640
    # x 180, y 240, W 36, b 12, A 216, importance 216 floats; layout 2 int64
    assert nbytes == (180 + 240 + 36 + 12 + 216 + 216) * 4 + 2 * 8
    flops_b, bytes_b = gr.graph_conv_cost(2, 3, 4, 5, 6, k=3, layouts=2, with_backward=True)
    assert flops_b == 3 * (4320 + 8640)
    # backward: reads gy 240, x 180, W 36, A 216, importance 216, layout; writes gx 180, gW 36, gb 12, gimp 216
    assert bytes_b == nbytes + (240 + 180 + 36 + 216 + 216 + 180 + 36 + 12 + 216) * 4 + 2 * 8


def test_infonce_enqueue_batch_norm_costs_by_hand(gr):
    # N=4, Q=10, P=2, D=8: logits 2*4*10*8 = 640, positives 2*4*2*8 = 128, twice (dq in the same pass)
    flops, nbytes = gr.infonce_cost(4, 10, 2, 8)
    assert flops == 2 * (640 + 128)
    assert nbytes == (4 * 8 + 4 * 2 * 8 + 10 * 8 + 2 * 4 + 4 * 8) * 4  # q, k, queue; losses, lse, dq
    flops2, bytes2 = gr.infonce_cost(4, 10, 2, 8, q2=True)
    assert flops2 == 2 * flops and bytes2 == nbytes + 2 * 4 * 8 * 4  # q2 read, dq2 written
    # the target shape: N=4096, Q=65536, D=128, P=1 is ~137 GFLOP
    assert gr.infonce_cost(4096, 65536, 1, 128)[0] == 4 * (4096 * 65536 * 128 + 4096 * 128)
    assert gr.enqueue_cost(128, 128) == (0, 2 * 128 * 128 * 4 + 16)
    # N=2, C=3, T=4, V=5: 120 elements; mask 10 bytes
    assert gr.batch_norm_cost(2, 3, 4, 5, residual=False, with_backward=False) == (120 * 5, 2 * 120 * 4 + 10)
    assert gr.batch_norm_cost(2, 3, 4, 5, residual=True, with_backward=True) == (
        3 * 120 * 6,
        3 * 120 * 4 + 10 + 4 * 120 * 4 + 10,
    )


def test_peaks_by_device_name(gr):
    assert gr.peak_for("NVIDIA H100 80GB HBM3")[0] == "H100 SXM"
    assert gr.peak_for("NVIDIA H100 80GB HBM3")[1].tb_per_s == 3.35
    assert gr.peak_for("NVIDIA H100 PCIe")[0] == "H100 PCIe"
    assert gr.peak_for("NVIDIA H200")[1] == gr.Peak(989.0, 67.0, 4.8)
    assert gr.peak_for("Tesla T4") is None


def test_ratios_and_share_of_peak_in_the_table(gr):
    rows = [
        {
            "problem": "p",
            "provider": "triton",
            "median_s": 1e-3,
            "spread": 0.1,
            "iters": 3,
            "flops": 67e9,
            "bytes": 3.35e9,
            "note": "",
        },
        {
            "problem": "p",
            "provider": "eager",
            "median_s": 2e-3,
            "spread": 0.0,
            "iters": 3,
            "flops": 67e9,
            "bytes": 3.35e9,
            "note": "",
        },
        {"problem": "p", "provider": "cuda", "error": "RuntimeError: boom"},
    ]
    lines = gr.render_ops(rows, gr.peak_for("H100 SXM")[1])
    assert lines[0].split(" | ")[4] == "x eager"
    triton = next(line for line in lines if "| triton |" in line)
    # 2.00 x eager; 67 TFLOPS = 100% of the fp32 peak; 3.35 TB/s = 100% of HBM
    assert "| 1.000 | 10% | 2.00 | 67 | 100% | 3.35 | 100% |" in triton
    assert [line.split(" | ")[1] for line in lines[2:]] == ["eager", "cuda", "triton"]  # the fixed provider order
    assert "RuntimeError: boom" in next(line for line in lines if "| cuda |" in line)
    no_peak = next(line for line in gr.render_ops(rows, None) if "| triton |" in line)
    assert "| 67 | - | 3.35 | - |" in no_peak  # an unknown GPU: no share of a peak


# ------------------------------------------------------------------------- robustness, the budget
def test_a_failing_section_is_recorded_and_the_run_carries_on(gr, tmp_path):
    saved: dict = {}

    def broken(ctx):
        ctx.note("started")
        raise ValueError("the kernel exploded")

    def fine(ctx):
        rows = ctx.table("enqueue", "ops")
        ctx.add(rows, problem="B=1", provider="eager", median_s=1e-3, spread=0.0, iters=1, flops=0, bytes=8, note="")

    funcs = {"tests": broken, "enqueue": fine}
    gr.run_sections(
        ["tests", "enqueue"], DRY, time.time() + 60, lambda r: saved.update({r["name"]: r}), tmp_path, funcs
    )
    assert saved["tests"]["status"] == "error"
    assert saved["tests"]["error"] == "ValueError: the kernel exploded"
    assert "the kernel exploded" in saved["tests"]["errors"][-1][1] and "Traceback" in saved["tests"]["errors"][-1][1]
    assert saved["enqueue"]["status"] == "done"
    meta = {"header": {}, "peak": None, "dry_run": True, "budget_s": 60, "rounds": 5, "load_before": "-", "t0": 0}
    text = gr.render(meta, saved, ["tests", "enqueue"])
    assert "Status: error" in text and "ValueError: the kernel exploded" in text
    assert "| B=1 | eager | 1.000 |" in text


def test_sections_past_the_budget_are_skipped_with_the_reason(gr, tmp_path):
    saved: dict = {}
    ran = []
    funcs = {name: (lambda ctx, name=name: ran.append(name)) for name in gr.SECTIONS}
    gr.run_sections(
        ["tests", "dali"],
        {**DRY, "dry_run": False},
        time.time() + 5,
        lambda r: saved.update({r["name"]: r}),
        tmp_path,
        funcs,
    )
    assert ran == []
    assert all(saved[n]["status"] == "skipped" and "time budget spent" in saved[n]["error"] for n in ("tests", "dali"))


def test_bad_arguments_exit_2():
    for args in (["--sections", "nope"], ["--rounds", "3"]):
        proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 2, proc.stderr


# ------------------------------------------------------------------------------- the dry run, end to end
@pytest.mark.slow
def test_dry_run_writes_the_whole_report(gr, tmp_path):
    out = tmp_path / "r.md"
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = out.read_text()
    for i, (title, _) in enumerate(gr.SECTIONS.values(), 1):
        assert f"## {i}. {title}" in text
    for header in ("## Skipped", "## Errors", "- Date:", "- Device:", "- Versions:", "- Load average", "- Command:"):
        assert header in text
    assert "Status: error" not in text and "Status: crashed" not in text and "Status: killed" not in text
    skipped = text.split("## Skipped")[1].split("## Errors")[0]
    assert "provider cuda: no GPU" in skipped and "provider triton: no GPU" in skipped
    assert "DALI GPU pipeline" in skipped and "no GPU" in skipped
    assert text.split("## Errors")[1].strip() == "None."
    # a timing row with a numeric median in every timed section
    for title in ("masked_graph_conv", "infonce_queue", "enqueue", "masked BatchNorm", "Pre-training step", "DALI"):
        body = text.split(f". {title}")[1].split("\n## ")[0]
        assert any(re.fullmatch(r"\d+\.\d+", m) for m in medians(body)), f"no timing row in {title}:\n{body}"


def medians(body: str) -> list[str]:
    """The cells of the 'median ...' column of the Markdown tables in `body`."""
    cells, col = [], None
    for line in body.splitlines():
        if not line.startswith("|"):
            col = None
        elif not set(line) <= set("|-: "):  # not the alignment row
            row = [c.strip() for c in line.strip("|").split(" | ")]
            if col is None:
                col = next(i for i, c in enumerate(row) if c.startswith("median"))
            else:
                cells.append(row[col])
    return cells
