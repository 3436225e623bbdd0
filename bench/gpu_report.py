"""One command for a GPU session: tests, op benches, a pre-training step and DALI, in one Markdown report.

    python bench/gpu_report.py --out gpu_report.md              # on one GPU, within --budget-s (480 s)
    python bench/gpu_report.py --dry-run --out /tmp/r.md        # CPU only: tiny shapes, GPU parts skipped

Sections (--sections picks a subset, in this order):
  tests       pytest -k TEST_SELECTION (the cuda / triton-gpu cases, `gpu` marks) in a child process, outcomes
  graph_conv  masked_graph_conv at the encoder's shapes (bench/bench_graph_conv.py), N=128, fwd+bwd then fwd
  infonce     infonce_queue fwd+bwd at the training shape and at N=4096 Q=65536 (bench/bench_infonce.py)
  enqueue     the ring-buffer write, B=128 and 4096 keys into Q=65536 (bench/bench_enqueue.py)
  batch_norm  MaskedBatchNorm at the encoder's shapes (bench/bench_batch_norm.py)
  train       a pre-training step (bench/bench_train.py): fused (backend auto) vs reference, fp32 and
              AMP bf16, without and with --compile; sequences/s
  dali        the DALI GPU augmentation pipeline vs the torch augmentation (bench/bench_augment.py); sequences/s

The problems and providers (eager, aimclr_style, compile, reference, cpu, cuda, triton) are the benches'
own (their make_step / _problem functions); this script times them its own way: warm-up calls (compilation
and autotuning happen there), then `--rounds` rounds of `iters` calls each (iters chosen so that a round
lasts at least 20 ms on a GPU, 200 ms for a training step), timed with CUDA events on a GPU and
perf_counter on a CPU; the median per call and the spread (max - min) / median of the rounds. Achieved
TFLOPS and TB/s come from the cost functions below (one per op, formulas in their docstrings) and are set
against the GPU's peaks (PEAKS): fp32 rows against the fp32 SIMT peak (kernels on TF32 tensor cores
can pass 100%), bf16 rows against the dense bf16 tensor-core peak.

Robustness (a GPU session is short and may be lent once): the sections run in a worker process that
records each row as it goes; a section that raises is recorded with its traceback tail and the next one
runs; a worker that crashes or overruns its section's time (its share of the budget x 1.5 + 30 s) is
killed, the section recorded, and a fresh worker takes the remaining sections (a CUDA error that breaks the
context cannot spoil the others). The budget (--budget-s) is shared among the sections still to run, in
proportion to their weights, so time one section leaves unused goes to the next ones; a section with no
time left is skipped with the reason. The report is rewritten whenever a row lands, so a killed run still
leaves one.

Exit status: 0 report written, every section done or skipped; 1 report written, some section or case
failed (listed under "Errors"); 2 a bad argument, or no GPU without --dry-run.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import gc
import json
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# ------------------------------------------------------------------------------------ sections
# name -> (title, weight: its share of the budget among the sections still to run)
SECTIONS: dict[str, tuple[str, float]] = {
    "tests": ("GPU tests", 20),
    "graph_conv": ("masked_graph_conv", 16),
    "infonce": ("infonce_queue", 12),
    "enqueue": ("enqueue", 4),
    "batch_norm": ("masked BatchNorm", 9),
    "train": ("Pre-training step", 30),
    "dali": ("DALI augmentation", 10),
}
# -k matches names, parameter ids and markers (`gpu`); this file's own test is not a GPU test
TEST_SELECTION = "(cuda or triton or gpu) and not interpreter and not gpu_report"
RESERVE_S = 10.0  # kept back from the budget for the last report
MIN_SHARE_S = {False: 20.0, True: 2.0}  # the least time a section gets; with less left it is skipped (GPU, dry run)
COMPILE_EST_S = 20.0  # a torch.compile case is not started with less of the section's share left (GPU run)
BASELINES = ("eager", "aimclr_style", "compile", "reference")
PROVIDER_ORDER = (*BASELINES, "cpu", "cuda", "triton")  # the rows of a problem in the report


# ----------------------------------------------------------------------------------- GPU peaks
@dataclass(frozen=True)
class Peak:
    bf16_tflops: float  # dense tensor-core bf16
    fp32_tflops: float  # fp32 on the CUDA cores (SIMT)
    tb_per_s: float  # HBM bandwidth


# Substrings of torch.cuda.get_device_name(), checked in this order; NVIDIA's data sheets (dense figures).
PEAKS: list[tuple[str, str, Peak]] = [
    ("H200", "H200 SXM", Peak(989.0, 67.0, 4.8)),
    ("H100 PCIe", "H100 PCIe", Peak(756.0, 51.0, 2.0)),
    ("H100 NVL", "H100 NVL", Peak(835.0, 60.0, 3.9)),
    ("H100", "H100 SXM", Peak(989.0, 67.0, 3.35)),
]


def peak_for(device_name: str) -> tuple[str, Peak] | None:
    """(table key, peaks) of a GPU by its name; None for a GPU (or CPU) not in the table."""
    for needle, key, peak in PEAKS:
        if needle.lower() in device_name.lower():
            return key, peak
    return None


# ------------------------------------------------------------------------- FLOPs and bytes per op
def graph_conv_cost(n, c_in, c_out, t, v, k=3, layouts=3, with_backward=False, elem=4) -> tuple[int, int]:
    """(FLOPs, bytes) of masked_graph_conv (docs/architecture.md section 3.1) at these shapes.

    FLOPs, dense-equivalent, as the conv1x1 + einsum formulation computes them: the 1x1 channel mix
    2*K*N*T*V*C_in*C_out plus the aggregation over joints 2*K*N*C_out*T*V*V. The backward (grad x, and
    grad W / importance, each about one forward) makes fwd+bwd = 3 x fwd.
    Bytes, every input and output read or written once: forward x, W, b, A, importance, layout (int64)
    read, y written; the backward reads grad y, x, W, A, importance, layout and writes grad x, W, b and
    importance.
    """
    fwd_flops = 2 * k * n * t * v * c_in * c_out + 2 * k * n * c_out * t * v * v
    x, y = n * c_in * t * v, n * c_out * t * v
    w, b, adj = k * c_out * c_in, k * c_out, layouts * k * v * v
    fwd_bytes = (x + w + b + 2 * adj + y) * elem + 8 * n
    if not with_backward:
        return fwd_flops, fwd_bytes
    bwd_bytes = (y + x + w + 2 * adj) * elem + 8 * n + (x + w + b + adj) * elem
    return 3 * fwd_flops, fwd_bytes + bwd_bytes


def infonce_cost(n, q, p, d, q2=False, elem=4) -> tuple[int, int]:
    """(FLOPs, bytes) of one infonce_queue forward+backward (docs/architecture.md section 3.2).

    FLOPs: the logits against the queue 2*N*Q*D and the positives 2*N*P*D, and as much again for dL/dq
    (computed in the same pass; queue and keys take no gradient, so fwd+bwd = 2 x the logits, not 3 x);
    AimCLR's divergence (q2) repeats all of it for q2.
    Bytes: q, k (N, P, D), the queue and q2 read once; the per-query losses, lse, dq (and dq2) written once.
    """
    passes = 2 if q2 else 1
    flops = passes * 2 * (2 * n * q * d + 2 * n * p * d)
    read = n * d + n * p * d + q * d + (n * d if q2 else 0)
    written = 2 * n + passes * n * d
    return flops, (read + written) * elem


def enqueue_cost(b, d, elem=4) -> tuple[int, int]:
    """(FLOPs, bytes) of enqueue: no arithmetic; B keys of D read, B queue rows written, the pointer read
    and written (int64)."""
    return 0, 2 * b * d * elem + 16


def batch_norm_cost(n, c, t, v, residual, with_backward, elem=4) -> tuple[int, int]:
    """(FLOPs, bytes) of a training-mode MaskedBatchNorm (statistics + fused apply); memory-bound, TB/s
    is its figure.

    FLOPs: per element, 3 for the sums of x and x^2, 2 for the affine, 1 for the residual; fwd+bwd =
    3 x fwd. Bytes: forward x (and the residual) read and y written once, the (N, V) bool mask read; the
    backward reads grad y and x and writes grad x (and grad residual).
    """
    e = n * c * t * v
    extra = 1 if residual else 0
    fwd_flops = e * (5 + extra)
    fwd_bytes = (2 + extra) * e * elem + n * v
    if not with_backward:
        return fwd_flops, fwd_bytes
    return 3 * fwd_flops, fwd_bytes + (3 + extra) * e * elem + n * v


# ------------------------------------------------------------------------------------- timing
def time_step(step: Callable[[], object], device: str, rounds: int, min_round_s: float, warmup: int = 2) -> dict:
    """Warm-up calls, then `rounds` rounds of `iters` calls (a round lasts >= min_round_s).

    Returns median_s and spread (max - min) / median per call over the rounds, iters, and first_s, the
    first call's time (compilation, autotuning)."""
    import torch

    cuda = device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    t0 = time.perf_counter()
    step()
    sync()
    first = time.perf_counter() - t0
    for _ in range(max(0, warmup - 1)):
        step()
    sync()
    t0 = time.perf_counter()
    step()
    sync()
    est = max(time.perf_counter() - t0, 1e-7)
    iters = max(1, min(1000, int(min_round_s / est + 0.999)))
    per_call = []
    for _ in range(rounds):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                step()
            end.record()
            end.synchronize()
            per_call.append(start.elapsed_time(end) / 1e3 / iters)
        else:
            t0 = time.perf_counter()
            for _ in range(iters):
                step()
            per_call.append((time.perf_counter() - t0) / iters)
    med = statistics.median(per_call)
    spread = (max(per_call) - min(per_call)) / med if med > 0 else None
    return {"median_s": med, "spread": spread, "iters": iters, "first_s": first}


# ------------------------------------------------------------------------------ a section's record
def tail(text: str, lines: int = 12, chars: int = 2000) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])[-chars:]


def error_line(e: BaseException) -> str:
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {first}"[:200]


class Ctx:
    """What a section function gets: the run's settings, its time share, and its record (rows, skips, errors)."""

    def __init__(self, name, opts: dict, share_s: float, save: Callable[[dict], None], tmp: Path):
        self.name, self.opts, self.share_s, self._save, self.tmp = name, opts, share_s, save, tmp
        self.dry = bool(opts["dry_run"])
        self.device = "cpu" if self.dry else "cuda"
        self.rounds = int(opts["rounds"])
        self.compile_backend = opts["compile_backend"]
        self.min_round_s = 0.002 if self.dry else 0.02
        self.started = time.time()
        self.deadline = self.started + share_s
        self.rec: dict = {
            "name": name,
            "status": "running",
            "started": self.started,
            "share_s": share_s,
            "tables": [],
            "notes": [],
            "skipped": [],
            "errors": [],
        }

    def left(self) -> float:
        return self.deadline - time.time()

    def save(self) -> None:
        self.rec["seconds"] = time.time() - self.started
        self._save(self.rec)

    def table(self, title: str, kind: str) -> list:
        self.rec["tables"].append({"title": title, "kind": kind, "rows": []})
        return self.rec["tables"][-1]["rows"]

    def add(self, rows: list, **row) -> None:
        rows.append(row)
        self.save()

    def note(self, text: str) -> None:
        self.rec["notes"].append(text)

    def skip(self, what: str, reason: str) -> None:
        self.rec["skipped"].append([what, reason])
        self.save()

    def error(self, what: str, e: BaseException) -> str:
        self.rec["errors"].append([what, tail(traceback.format_exc())])
        self.save()
        return error_line(e)

    def out_of_time(self, what: str, need: float = 0.0) -> bool:
        """True (and `what` skipped with the reason) when the section's share has less than `need` s left."""
        if self.left() > need:
            return False
        used = time.time() - self.started
        reason = f"the section's time share ({self.share_s:.0f} s) is spent ({used:.0f} s used)"
        if need:
            reason = f"needs ~{need:.0f} s, {max(0.0, self.left()):.0f} s of the section's share left"
        self.skip(what, reason)
        return True


def run_section(name: str, fn: Callable[[Ctx], None], opts: dict, share_s: float, save, tmp: Path) -> dict:
    """Run one section; an exception is recorded (status "error", traceback tail), never raised."""
    ctx = Ctx(name, opts, share_s, save, tmp)
    ctx.save()
    try:
        fn(ctx)
        ctx.rec["status"] = "done"
    except Exception as e:
        ctx.rec["status"] = "error"
        ctx.rec["error"] = error_line(e)
        ctx.rec["errors"].append(["section", tail(traceback.format_exc())])
    ctx.save()
    return ctx.rec


def _free(device: str) -> None:
    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def cuda_healthy() -> bool:
    import torch

    if not torch.cuda.is_available():
        return True
    try:
        torch.cuda.synchronize()
        torch.zeros(1, device="cuda").add_(1).item()
        return True
    except Exception:
        return False


def bench_op(ctx: Ctx, rows: list, problems: list, providers: list[str]) -> None:
    """Time every provider of every problem (problem, (FLOPs, bytes), make[, dtype]) into `rows`;
    make(provider) returns the step. The compile provider runs last, problem by problem while the share
    lasts (its compilation is the slow part); a failing case becomes an error row."""
    cases = [(pb, prov) for pb in problems for prov in providers if prov != "compile"]
    cases += [(pb, "compile") for pb in problems if "compile" in providers]
    for (problem, cost, make, *dtype), prov in cases:
        if ctx.out_of_time(f"{problem} {prov}", COMPILE_EST_S if prov == "compile" and not ctx.dry else 0.0):
            continue
        step = None
        try:
            step = make(prov)
            r = time_step(step, ctx.device, ctx.rounds, ctx.min_round_s)
            note = f"first call {r['first_s']:.1f} s (compilation)" if prov == "compile" else ""
            dt = dtype[0] if dtype else "float32"
            ctx.add(rows, problem=problem, provider=prov, dtype=dt, flops=cost[0], bytes=cost[1], note=note, **r)
        except Exception as e:
            ctx.add(rows, problem=problem, provider=prov, error=ctx.error(f"{problem} {prov}", e))
            if ctx.device == "cuda" and not cuda_healthy():
                raise RuntimeError("the CUDA context is broken after this error; the section stops") from e
        finally:
            step = None
            _free(ctx.device)


def providers_here(ctx: Ctx, wanted: list[str]) -> list[str]:
    """The providers of `wanted` that run here; the others are recorded as skipped, with the reason."""
    from msclr.ops import why_unavailable

    keep = []
    for prov in wanted:
        if prov in ("eager", "aimclr_style", "compile", "reference"):
            keep.append(prov)
            continue
        if prov in ("cuda", "triton") and ctx.dry:
            reason = "no GPU (dry run)"
        elif prov == "cpu" and not ctx.dry:
            reason = "a GPU run times the GPU providers"
        else:
            reason = why_unavailable(prov, ctx.device)
        if reason:
            ctx.skip(f"provider {prov}", reason)
        else:
            keep.append(prov)
    return keep


def _import_benches() -> None:
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))  # bench/conftest.py (ROUNDS, sync) and the bench modules


# --------------------------------------------------------------------------------- the sections
def sec_tests(ctx: Ctx) -> None:
    rows = ctx.table("pytest outcomes", "tests")
    cmd = [sys.executable, "-m", "pytest", "tests", "-k", TEST_SELECTION, "-p", "no:cacheprovider"]
    cmd += ["--collect-only", "-q"] if ctx.dry else ["-v", "--tb=short", "-rfE"]
    ctx.note("command: `" + shlex.join(["python", *cmd[1:]]) + "`")
    log_path = ctx.tmp / "pytest.log"
    limit = max(1.0, ctx.left())
    t0 = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent
        )
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            rc = None
    text = log_path.read_text(errors="replace")
    seconds = time.time() - t0
    if ctx.dry:
        m = re.search(r"^(\d+)(?:/(\d+))? tests? collected.*$", text, re.M)
        ctx.add(rows, outcome="collected (not run)", count=int(m.group(1)) if m else None)
        ctx.skip("running the GPU tests", "no GPU (dry run): the selection is collected, not run")
        ctx.note(f"pytest exit status {rc}, {seconds:.1f} s: {m.group(0) if m else tail(text, 3)}")
        return
    counts: dict[str, int] = {}
    failed = []
    for m in re.finditer(r"^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b", text, re.M):
        counts[m.group(2).lower()] = counts.get(m.group(2).lower(), 0) + 1
        if m.group(2) in ("FAILED", "ERROR"):
            failed.append(m.group(1))
    for outcome, count in sorted(counts.items()):
        ctx.add(rows, outcome=outcome, count=count)
    summary = re.findall(r"^=+ (.*\bin [\d.]+s.*?) =+$", text, re.M)
    if rc is None:
        progress = re.findall(r"\[\s*(\d+)%\]\s*$", text, re.M)
        reached = f", {progress[-1]}% of the selection reached" if progress else ""
        ctx.note(f"pytest stopped after {seconds:.0f} s (the section's time share): counts up to there{reached}")
        ctx.rec["errors"].append(["pytest timed out", tail(text)])
    else:
        ctx.note(f"pytest exit status {rc} in {seconds:.0f} s: {summary[-1] if summary else tail(text, 2)}")
    for line in re.findall(r"^(?:FAILED|ERROR) .*$", text, re.M)[:20]:
        ctx.note(f"`{line[:300]}`")
    for line in re.findall(r"^SKIPPED \[\d+\] .*$", text, re.M)[:12]:  # why GPU tests skip on a GPU
        ctx.note(f"`{line[:300]}`")
    if failed and not re.search(r"^(?:FAILED|ERROR) ", text, re.M):
        ctx.note("failed: " + ", ".join(f"`{f}`" for f in failed[:20]))


def sec_graph_conv(ctx: Ctx) -> None:
    _import_benches()
    import bench_graph_conv as bgc

    from msclr import skeletons

    n, shapes = (4, [(8, 16, 4)]) if ctx.dry else (128, bgc.SHAPES)
    table = skeletons.LayoutTable([skeletons.get(nm) for nm in ("ntu25", "smplx42", "berkeley_mhad43")])
    v, layouts, k = table.v_max, len(table), bgc.K
    providers = providers_here(ctx, bgc.PROVIDERS)
    ctx.note(
        f"N={n}, V={v} mixing ntu25 / smplx42 / berkeley_mhad43, K={k}, fp32; fwd+bwd = the gradients of x, "
        "weight, bias and importance; aimclr_style: conv1x1 + einsum with one shared adjacency"
    )
    problems = []
    for with_backward in (True, False):
        for shape in shapes:
            c_in, c_out, t = shape

            def make(prov, wb=with_backward, shape=shape):
                return bgc.make_step(prov, wb, shape, n, ctx.device, compile_backend=ctx.compile_backend)[0]

            problem = f"{'fwd+bwd' if with_backward else 'fwd'} C={c_in}->{c_out} T={t}"
            problems.append((problem, graph_conv_cost(n, c_in, c_out, t, v, k, layouts, with_backward), make))
    bench_op(ctx, ctx.table("masked_graph_conv", "ops"), problems, providers)


def sec_infonce(ctx: Ctx) -> None:
    _import_benches()
    import bench_infonce as bi
    import torch

    d = bi.D
    if ctx.dry:
        cases = [(8, 256, 1, False), (8, 256, 2, True)]
    else:  # the training step's shape (batch 128, queue 32768), then the target N=4096 Q=65536
        cases = [(128, 32768, 1, False), (4096, 65536, 1, False), (4096, 65536, 3, False), (4096, 65536, 1, True)]
    providers = providers_here(ctx, bi.PROVIDERS)
    ctx.note(
        f"forward + dL/dq, D={d}, tau={bi.TAU}; +div+top1 = AimCLR's divergence (q2) and top-1 mining; "
        "bf16: q, k, queue in bfloat16 (tensor cores), % of the bf16 dense peak"
    )
    problems = []
    dtypes = ["float32"] + ([] if ctx.dry else ["bfloat16"])
    if ctx.dry:
        ctx.skip("bf16 problem", "the bf16 InfoNCE problem is a GPU one (tensor cores)")
    for dtype in dtypes:
        for n, q, p, aimclr in cases if dtype == "float32" else [(4096, 65536, 1, False)]:

            def make(prov, n=n, q=q, p=p, aimclr=aimclr, dtype=dtype):
                inputs = [
                    None if v is None else v.to(getattr(torch, dtype)) for v in bi.inputs(n, q, p, ctx.device, aimclr)
                ]
                return bi.make_step(prov, *inputs, 1 if aimclr else 0, compile_backend=ctx.compile_backend)

            problem = f"N={n} Q={q} P={p}" + (" +div+top1" if aimclr else "") + (" bf16" if dtype == "bfloat16" else "")
            problems.append(
                (problem, infonce_cost(n, q, p, d, aimclr, elem=4 if dtype == "float32" else 2), make, dtype)
            )
    bench_op(ctx, ctx.table("infonce_queue", "ops"), problems, providers)


def plain_enqueue(queue, ptr, keys) -> None:
    """The ring-buffer write as a user writes it: msclr.ops.reference.enqueue_ without its pointer check
    (whose int(ptr) would break a torch.compile graph)."""
    import torch

    rows = (ptr.reshape(()) + torch.arange(keys.shape[0], device=queue.device)) % queue.shape[0]
    queue.index_copy_(0, rows, keys.to(queue.dtype))
    ptr.copy_((ptr + keys.shape[0]) % queue.shape[0])


def sec_enqueue(ctx: Ctx) -> None:
    import torch

    from msclr.ops import enqueue

    q_size, d, batches = (256, 16, [8]) if ctx.dry else (65536, 128, [128, 4096])
    providers = providers_here(ctx, ["eager", "compile", "reference", "cpu", "cuda"])
    ctx.note(
        "eager: plain_enqueue (index_copy_ at the ring rows), compile: torch.compile of it; reference/cpu/cuda: the op"
    )
    problems = []
    for b in batches:

        def make(prov, b=b):
            queue = torch.randn(q_size, d, device=ctx.device)
            ptr = torch.zeros(1, dtype=torch.int64, device=ctx.device)
            keys = torch.randn(b, d, device=ctx.device)
            if prov == "eager":
                return lambda: plain_enqueue(queue, ptr, keys)
            if prov == "compile":
                torch._dynamo.reset()
                fn = torch.compile(plain_enqueue, dynamic=False, backend=ctx.compile_backend)
                return lambda: fn(queue, ptr, keys)
            return lambda: enqueue(queue, ptr, keys, backend=prov)

        problems.append((f"B={b} Q={q_size} D={d}", enqueue_cost(b, d), make))
    bench_op(ctx, ctx.table("enqueue", "ops"), problems, providers)


def sec_batch_norm(ctx: Ctx) -> None:
    _import_benches()
    import bench_batch_norm as bbn

    n, shapes = (8, [(4, 8)]) if ctx.dry else (bbn.N, bbn.SHAPES)
    providers = providers_here(ctx, ["aimclr_style", "compile", "reference", "cpu", "triton"])
    ctx.note(
        f"training mode, N*M={n}, V=43 mixed, fp32; statistics, running stats and apply timed together; "
        "aimclr_style = nn.BatchNorm2d (+ F.dropout, residual, ReLU), no joint mask"
    )
    problems = []
    for with_backward in (True, False):
        for variant, (has_res, _) in bbn.VARIANTS.items():
            for shape in shapes:
                c, t = shape

                def make(prov, wb=with_backward, variant=variant, shape=shape):
                    return bbn.make_step(prov, wb, variant, shape, ctx.device, n, compile_backend=ctx.compile_backend)

                problem = f"{variant} {'fwd+bwd' if with_backward else 'fwd'} C={c} T={t}"
                problems.append((problem, batch_norm_cost(n, c, t, 43, has_res, with_backward), make))
    bench_op(ctx, ctx.table("masked BatchNorm", "ops"), problems, providers)


def sec_train(ctx: Ctx) -> None:
    _import_benches()
    import bench_train as bt

    from msclr.data.synthetic import make_synthetic_store
    from msclr.ops import IMPLEMENTED, resolve
    from msclr.precision import cpu_has_native_bf16

    if ctx.dry:
        batch, frames, queue, samples = 8, 12, 32, 16
        extra = ["model.hidden_channels=4", "model.hidden_dim=16", "model.feature_dim=8"]
    else:
        batch, frames, queue, samples, extra = bt.BATCH, bt.T, bt.QUEUE, bt.BATCH, []
    store = make_synthetic_store(ctx.tmp / "store", num_samples=samples, T=max(frames, 16), seed=0)
    ctx.note(
        f"batch {batch}, T={frames}, M={bt.M}, queue {queue}; 3 conventions = {', '.join(bt.MIXED)} mixed per "
        "sample, torch augmentation inside the step; ntu25: msclr's fused step against the released code's model "
        "(aimclr_style, ready views: no augmentation in its step); sequences/s = batch / median step"
    )
    for dtype in ("float32", "bfloat16"):
        picks = ", ".join(f"{op} {resolve(op, 'auto', ctx.device, dtype)}" for op in IMPLEMENTED)
        ctx.note(f"fused = backend auto, {dtype}: {picks}")
    rows = ctx.table("pre-training step", "train")
    # (problem, backend, precision, compile), most wanted first: compiled steps last (their compilation is slow)
    cases = [("3 conventions", b, p, False) for p in ("fp32", "bf16") for b in ("fused", "reference")]
    # bf16 AMP with the queue stored in bf16 too (method.queue_dtype): InfoNCE on its tensor-core path
    cases += [("3 conventions", "fused", "bf16+queue", False)]
    cases += [("ntu25", b, "fp32", False) for b in ("fused", "aimclr_style")]
    cases += [("3 conventions", b, p, True) for b in ("fused", "reference") for p in ("fp32", "bf16")]
    for problem, backend, precision, compiled in cases:
        what = f"{problem} {backend} {precision}{' --compile' if compiled else ''}"
        if precision.startswith("bf16") and ctx.device == "cpu" and not cpu_has_native_bf16():
            ctx.skip(what, "no GPU, and this CPU has no native bf16 (--amp trains in float32 here)")
            continue
        if ctx.dry and compiled:
            ctx.skip(what, "dry run: left to the GPU run (compiling the training step takes ~20 s on a CPU)")
            continue
        if ctx.dry and precision.startswith("bf16") and (backend == "reference" or precision != "bf16"):
            ctx.skip(what, "dry run: one bf16 step (fused) checks the AMP path")
            continue
        if ctx.out_of_time(what, 60.0 if compiled and not ctx.dry else 0.0):
            continue
        flags = (["--amp"] if precision.startswith("bf16") else []) + (["--compile"] if compiled else [])
        flags += ["method.queue_dtype=bfloat16"] if precision == "bf16+queue" else []
        flags += [f"run.compile_backend={ctx.compile_backend}"] if compiled else []
        step = trainer = None
        row = dict(problem=problem, backend=backend, precision=precision, compile=compiled, batch=batch)
        try:
            t0 = time.perf_counter()
            if backend == "aimclr_style":
                step = bt.aimclr_style_step(ctx.device, batch, frames, queue)
                row["precision"] = "float32"
            else:
                conventions = bt.MIXED if problem == "3 conventions" else ["ntu25"]
                out = ctx.tmp / f"run-{len(rows)}"
                trainer = bt._msclr_trainer(
                    store,
                    out,
                    "auto" if backend == "fused" else "reference",
                    conventions,
                    batch=batch,
                    frames=frames,
                    queue=queue,
                    device=ctx.device,
                    extra=[*extra, *flags],
                )
                data = next(iter(trainer.loader))
                step = lambda t=trainer, d=data: t.train_step(d)  # noqa: E731
                row["precision"] = trainer.amp_name + (", queue bf16" if precision == "bf16+queue" else "")
            row["build_s"] = time.perf_counter() - t0
            r = time_step(step, ctx.device, ctx.rounds, 0.0 if ctx.dry else 0.2)
            ctx.add(rows, **row, **r)
        except Exception as e:
            ctx.add(rows, **row, error=ctx.error(what, e))
            if ctx.device == "cuda" and not cuda_healthy():
                raise RuntimeError("the CUDA context is broken after this error; the section stops") from e
        finally:
            step = trainer = None
            _free(ctx.device)


def sec_dali(ctx: Ctx) -> None:
    _import_benches()
    import itertools

    import bench_augment as ba
    import torch

    from msclr.augment import AugmentParams, dali_import_error, make_augment

    n, t = (8, 12) if ctx.dry else (ba.N, ba.T)
    table, x, layout = ba._batch(ctx.device, n, t)
    providers = ["torch"]
    if ctx.dry:
        ctx.skip("DALI GPU pipeline (dali, dali-prefetch)", "no GPU (dry run)")
    elif dali_import_error():
        ctx.skip("DALI GPU pipeline (dali, dali-prefetch)", dali_import_error())
    else:
        providers += ["dali", "dali-prefetch"]
    ctx.note(
        f"batch {n}, T={t}, V={table.v_max}, M={ba.M}, {len(table)} layouts mixed; dali-prefetch: "
        "DaliAugment.iterate with batches in flight (steady state)"
    )
    rows = ctx.table("augmentation", "dali")
    for preset in ("normal", "extreme"):
        for prov in providers:
            if ctx.out_of_time(f"{preset} {prov}"):
                continue
            try:
                backend = "dali" if prov.startswith("dali") else "torch"
                aug = make_augment(AugmentParams.preset(preset), table, backend=backend, device=ctx.device)
                gen = torch.Generator(device=ctx.device if backend == "torch" else "cpu").manual_seed(0)
                if prov == "dali-prefetch":
                    stream = aug.iterate(itertools.repeat((x, layout)))
                    step = lambda s=stream: next(s)  # noqa: E731
                else:
                    step = lambda a=aug, g=gen: a(x, layout, g)  # noqa: E731
                r = time_step(step, ctx.device, ctx.rounds, ctx.min_round_s)
                ctx.add(rows, problem=f"{preset} {ctx.device}", provider=prov, batch=n, note=repr(aug), **r)
            except Exception as e:
                ctx.add(rows, problem=f"{preset} {ctx.device}", provider=prov, error=ctx.error(f"{preset} {prov}", e))
            finally:
                step = aug = None
                _free(ctx.device)


SECTION_FUNCS: dict[str, Callable[[Ctx], None]] = {
    "tests": sec_tests,
    "graph_conv": sec_graph_conv,
    "infonce": sec_infonce,
    "enqueue": sec_enqueue,
    "batch_norm": sec_batch_norm,
    "train": sec_train,
    "dali": sec_dali,
}


# ---------------------------------------------------------------------------------- rendering
def _ms(s) -> str:
    return "-" if s is None else f"{s * 1e3:.3f}"


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def peak_flops(peak: Peak, dtype: str | None) -> float:
    """The compute peak a row is set against: bf16 dense tensor cores for bf16/fp16 rows, fp32 SIMT else."""
    return peak.bf16_tflops if dtype in ("bfloat16", "float16") else peak.fp32_tflops


def render_ops(rows: list, peak: Peak | None) -> list[str]:
    present = [b for b in BASELINES if any(r.get("provider") == b and "median_s" in r for r in rows)]
    head = ["problem", "provider", "median ms", "spread", *(f"x {b}" for b in present)]
    head += ["TFLOPS", "% peak", "TB/s", "% HBM peak", "iters", "notes"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 3) + "---|"]
    times: dict[str, dict[str, float]] = {}
    for r in rows:
        if "median_s" in r:
            times.setdefault(r["problem"], {})[r["provider"]] = r["median_s"]
    problems = list(dict.fromkeys(r["problem"] for r in rows))
    order = {p: i for i, p in enumerate(PROVIDER_ORDER)}
    for r in sorted(rows, key=lambda r: (problems.index(r["problem"]), order.get(r["provider"], len(order)))):
        if "median_s" not in r:
            blanks = ["-"] * (len(head) - 3)
            lines.append(f"| {r['problem']} | {r['provider']} | " + " | ".join(blanks) + f" | {_cell(r['error'])} |")
            continue
        t = r["median_s"]
        ratios = [f"{times[r['problem']][b] / t:.2f}" if b in times[r["problem"]] else "-" for b in present]
        tflops = r["flops"] / t / 1e12 if r.get("flops") else None
        tbs = r["bytes"] / t / 1e12 if r.get("bytes") else None
        cells = [
            r["problem"],
            r["provider"],
            _ms(t),
            _pct(r.get("spread")),
            *ratios,
            "-" if tflops is None else f"{tflops:.3g}",
            _pct(tflops / peak_flops(peak, r.get("dtype"))) if peak and tflops is not None else "-",
            "-" if tbs is None else f"{tbs:.3g}",
            _pct(tbs / peak.tb_per_s) if peak and tbs is not None else "-",
            str(r.get("iters", "-")),
            _cell(r.get("note", "")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_train(rows: list) -> list[str]:
    head = ["problem", "backend", "precision", "compile", "median ms/step", "spread", "sequences/s"]
    head += ["x reference", "x aimclr_style", "first step s", "build s", "notes"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|---|" + "---:|" * 7 + "---|"]
    timed = [r for r in rows if "median_s" in r]
    ref = {(r["problem"], r["precision"], r["compile"]): r["median_s"] for r in timed if r["backend"] == "reference"}
    aim = {r["problem"]: r["median_s"] for r in timed if r["backend"] == "aimclr_style"}
    for r in rows:
        key = (r["problem"], r["precision"], r["compile"])
        if "median_s" not in r:
            cells = [r["problem"], r["backend"], r["precision"], "yes" if r["compile"] else "no", *["-"] * 7]
            lines.append("| " + " | ".join([*cells, _cell(r["error"])]) + " |")
            continue
        t = r["median_s"]
        cells = [
            r["problem"],
            r["backend"],
            r["precision"],
            "yes" if r["compile"] else "no",
            _ms(t),
            _pct(r.get("spread")),
            f"{r['batch'] / t:.1f}",
            f"{ref[key] / t:.2f}" if ref.get(key) else "-",
            f"{aim[r['problem']] / t:.2f}" if r["problem"] in aim else "-",
            f"{r['first_s']:.1f}",
            f"{r['build_s']:.1f}" if "build_s" in r else "-",
            _cell(r.get("note", "")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_dali(rows: list) -> list[str]:
    head = ["problem", "provider", "median ms/batch", "spread", "sequences/s", "x torch", "iters", "notes"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * 5 + "---|"]
    torch_t = {r["problem"]: r["median_s"] for r in rows if r.get("provider") == "torch" and "median_s" in r}
    for r in rows:
        if "median_s" not in r:
            lines.append(f"| {r['problem']} | {r['provider']} | - | - | - | - | - | {_cell(r['error'])} |")
            continue
        t = r["median_s"]
        ratio = f"{torch_t[r['problem']] / t:.2f}" if r["problem"] in torch_t else "-"
        cells = [r["problem"], r["provider"], _ms(t), _pct(r.get("spread")), f"{r['batch'] / t:.0f}", ratio]
        lines.append("| " + " | ".join(cells + [str(r["iters"]), _cell(r.get("note", ""))]) + " |")
    return lines


def render_tests(rows: list) -> list[str]:
    lines = ["| outcome | count |", "|---|---:|"]
    lines += [f"| {r['outcome']} | {'-' if r['count'] is None else r['count']} |" for r in rows]
    return lines


RENDER = {
    "ops": render_ops,
    "train": lambda rows, peak: render_train(rows),
    "dali": lambda rows, peak: render_dali(rows),
    "tests": lambda rows, peak: render_tests(rows),
}


def render(meta: dict, results: dict, selected: list[str]) -> str:
    """The Markdown report of `results` ({section: record}) so far."""
    peak = Peak(**meta["peak"]) if meta.get("peak") else None
    out = [f"# msclr GPU report{' (dry run)' if meta['dry_run'] else ''}", ""]
    out += [f"- {k}: {v}" for k, v in meta["header"].items()]
    out += [
        f"- Load average (1/5/15 min): before {meta['load_before']}, after {meta.get('load_after', '(running)')}",
        f"- Budget: {meta['budget_s']:.0f} s; used {meta.get('used_s', time.time() - meta['t0']):.0f} s",
        f"- Timing: warm-up, then the median of {meta['rounds']} rounds of `iters` calls "
        "(CUDA events on a GPU); spread = (max - min) / median over the rounds; x B = B's median / this one's",
        "- Peaks: % peak = achieved TFLOPS / the fp32 SIMT peak (bf16 rows: the dense bf16 tensor-core peak; fp32 "
        "kernels on TF32 tensor cores can pass 100%); % HBM peak = the minimal traffic (inputs and outputs once) "
        "per second / the HBM bandwidth; formulas: bench/gpu_report.py *_cost",
        "",
    ]
    skipped, errors = [], []
    for i, name in enumerate(SECTIONS, 1):
        title = SECTIONS[name][0]
        out += [f"## {i}. {title}", ""]
        rec = results.get(name)
        if name not in selected:
            out += ["Not selected (--sections).", ""]
            continue
        if rec is None:
            out += ["Not run yet.", ""]
            continue
        status = rec["status"]
        line = f"Status: {status}"
        if "seconds" in rec:
            line += f" in {rec['seconds']:.1f} s (time share {rec.get('share_s', 0):.0f} s)"
        if rec.get("error"):
            line += f": {_cell(rec['error'])}"
        out += [line, ""]
        out += [f"- {n}" for n in rec.get("notes", [])]
        out += [""] if rec.get("notes") else []
        for tab in rec.get("tables", []):
            if tab["rows"]:
                out += [f"**{tab['title']}**", "", *RENDER[tab["kind"]](tab["rows"], peak), ""]
        skipped += [(title, what, why) for what, why in rec.get("skipped", [])]
        errors += [(title, what, tb) for what, tb in rec.get("errors", [])]
    out += ["## Skipped", ""]
    out += [f"- {title}: {what}: {why}" for title, what, why in skipped] or ["Nothing."]
    out += ["", "## Errors", ""]
    for title, what, tb in errors:
        out += [f"- {title}: {what}", "", "```", tb, "```", ""]
    if not errors:
        out += ["None.", ""]
    return "\n".join(out).rstrip() + "\n"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ------------------------------------------------------------------------- the header (parent)
def _fmt_load() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores"


def collect_meta(args, argv: list[str]) -> dict:
    header: dict[str, str] = {
        "Date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "Command": "`" + shlex.join(["python", "bench/gpu_report.py", *argv]) + "`",
    }
    peak = None
    try:
        import torch

        from msclr import info

        i = info.collect()
        if i["gpu"]:
            name = i["gpu"][0]
            found = peak_for(name)
            peak = found[1].__dict__ if found else None
            where = f"peaks of the {found[0]}: {found[1].bf16_tflops:g} TFLOPS bf16 dense, " if found else ""
            where += f"{found[1].fp32_tflops:g} TFLOPS fp32, {found[1].tb_per_s:g} TB/s" if found else ""
            header["Device"] = f"{name} ({where or 'not in the peak table: no % of peak'})"
        else:
            header["Device"] = f"CPU only: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"
        ext = i["extension"]
        header["Versions"] = (
            f"msclr {i['msclr']}, python {i['python']}, torch {i['torch']} (CUDA {i['torch_cuda']}), "
            f"triton {i['triton']['version']} ({'runs on ' + i['triton']['where'] if i['triton']['runnable'] else i['triton']['where']}), "  # noqa: E501
            f"DALI {i['dali'].get('version') or 'not importable'}, "
            f"msclr._C {'with' if ext['built_cuda'] else 'without'} CUDA kernels"
            + ("" if ext["loaded"] else f" NOT LOADED: {ext['error']}")
        )
        header["Threads"] = f"torch {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}"
    except Exception as e:  # the report still gets written
        header["Environment"] = f"could not be collected: {error_line(e)}"
    if args.dry_run:
        header["Dry run"] = (
            f"tiny shapes on the CPU, torch.compile backend {args.compile_backend}: the timings test the "
            "machinery, they are not measurements"
        )
    return {
        "header": header,
        "peak": peak,
        "dry_run": args.dry_run,
        "budget_s": args.budget_s,
        "rounds": args.rounds,
        "load_before": _fmt_load(),
        "t0": time.time(),
    }


# ---------------------------------------------------------------------- processes and the budget
def _die_with_parent() -> None:
    """preexec_fn: SIGKILL this child when its parent dies (Linux), so no worker outlives the run."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def share_of(name: str, remaining: list[str], deadline: float, least: float) -> float:
    """Seconds for `name`: the budget left (less RESERVE_S) split among `remaining` by weight, at least
    `least` (as far as the budget goes)."""
    left = max(0.0, deadline - time.time() - RESERVE_S)
    total = sum(SECTIONS[s][1] for s in remaining)
    return min(left, max(least, left * SECTIONS[name][1] / total))


def hard_limit(share_s: float) -> float:
    return 1.5 * share_s + 30.0


def run_sections(
    names: list[str], opts: dict, deadline: float, save: Callable[[dict], None], tmp: Path, funcs: dict | None = None
) -> None:
    """Run `names` in this process, in order, each with its share of the time left; records go to save()."""
    funcs = funcs or SECTION_FUNCS
    for i, name in enumerate(names):
        least = MIN_SHARE_S[bool(opts["dry_run"])]
        share = share_of(name, names[i:], deadline, least)
        if share < least:
            left = deadline - time.time()
            reason = f"time budget spent ({max(0.0, left):.0f} s left of {opts['budget_s']:.0f} s)"
            save({"name": name, "status": "skipped", "error": reason, "skipped": [["section", reason]]})
            continue
        sub = tmp / name
        sub.mkdir(parents=True, exist_ok=True)
        rec = run_section(name, funcs[name], opts, share, save, sub)
        if rec["status"] == "error" and opts.get("worker") and not cuda_healthy():
            sys.exit(3)  # the parent starts a fresh worker for the sections left


def _watch(proc, remaining, state_dir: Path, seen: dict, results: dict, on_change, deadline: float, opts: dict):
    """Follow a worker until it exits or overruns: (exit status, why it was killed or '')."""
    while True:
        rc = proc.poll()
        changed = False
        for name in remaining:
            f = state_dir / f"{name}.json"
            if f.exists() and f.stat().st_mtime_ns != seen.get(name):
                seen[name] = f.stat().st_mtime_ns
                try:
                    results[name] = json.loads(f.read_text())
                    changed = True
                except ValueError:
                    pass  # caught mid-write: next poll
        if changed:
            on_change(results)
        if rc is not None:
            return rc, ""
        running = [results[n] for n in remaining if results.get(n, {}).get("status") == "running"]
        now = time.time()
        killed = ""
        if running and now > running[0]["started"] + hard_limit(running[0]["share_s"]):
            killed = f"killed after {now - running[0]['started']:.0f} s: past its time share x 1.5 + 30 s"
        elif now > deadline - 2:
            killed = f"killed: at the end of the budget of {opts['budget_s']:.0f} s"
        if killed:
            _kill_group(proc)
            return proc.returncode, killed
        time.sleep(0.5)


def orchestrate(names: list[str], opts: dict, deadline: float, tmp: Path, on_change: Callable[[dict], None]) -> dict:
    """Run `names` in worker processes; returns {section: record}. on_change(results) after every update."""
    results: dict = {}
    remaining = list(names)
    state_dir = tmp / "state"
    state_dir.mkdir(parents=True, exist_ok=True)
    while remaining:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            str(state_dir),
            "--deadline",
            str(deadline),
            "--opts",
            json.dumps(opts),
            "--sections",
            *remaining,
        ]
        err_path = tmp / f"worker-{len(results)}.err"
        with open(err_path, "w") as err:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, stdout=err, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent
            )
            try:
                rc, killed = _watch(proc, remaining, state_dir, {}, results, on_change, deadline, opts)
            finally:
                if proc.poll() is None:  # interrupted: no worker outlives the run
                    _kill_group(proc)
        log = err_path.read_text(errors="replace")
        done = [n for n in remaining if results.get(n, {}).get("status") in ("done", "error", "skipped")]
        remaining = [n for n in remaining if n not in done]
        if not remaining:
            break
        current = next((n for n in remaining if n in results), remaining[0])
        rec = results.get(current) or {"name": current, "tables": [], "notes": [], "skipped": [], "errors": []}
        rec["status"] = "killed" if killed else "crashed"
        rec["seconds"] = time.time() - rec.get("started", time.time())
        rec["error"] = killed or f"the worker exited with status {rc}"
        rec.setdefault("errors", []).append(["worker", tail(log) or "(no output)"])
        results[current] = rec
        remaining.remove(current)
        on_change(results)
    return results


# ---------------------------------------------------------------------------------------- main
def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="python bench/gpu_report.py",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    ap.add_argument("--out", default="gpu_report.md", help="the Markdown report (default gpu_report.md)")
    ap.add_argument("--dry-run", action="store_true", help="CPU only, tiny shapes; GPU parts skipped with reasons")
    ap.add_argument("--budget-s", type=float, default=480.0, help="time for the whole run (default 480 s)")
    ap.add_argument(
        "--sections",
        nargs="+",
        default=list(SECTIONS),
        metavar="NAME",
        help=f"a subset of {', '.join(SECTIONS)} (also comma-separated)",
    )
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds per case, median reported (default 5)")
    ap.add_argument(
        "--compile-backend",
        default=None,
        help="torch.compile backend (default inductor; aot_eager with --dry-run: no code generation)",
    )
    ap.add_argument("--no-isolate", action="store_true", help="run the sections in this process (no worker)")
    ap.add_argument("--worker", metavar="STATE_DIR", help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--opts", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    chosen = [s for item in args.sections for s in item.split(",") if s]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    args.sections = [s for s in SECTIONS if s in chosen]  # always in the report's order
    if args.rounds < 5:
        ap.error("--rounds must be at least 5")
    if args.budget_s <= RESERVE_S:
        ap.error(f"--budget-s must exceed {RESERVE_S:.0f} s")
    if args.compile_backend is None:
        args.compile_backend = "aot_eager" if args.dry_run else "inductor"
    return args


def worker_main(args) -> int:
    state_dir = Path(args.worker)
    opts = json.loads(args.opts)
    opts["worker"] = True

    def save(rec):
        write_atomic(state_dir / f"{rec['name']}.json", json.dumps(rec))

    with tempfile.TemporaryDirectory(prefix="msclr-gpu-report-") as tmp:
        run_sections(args.sections, opts, args.deadline, save, Path(tmp))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_report: error: no CUDA GPU on this machine; --dry-run runs the CPU version", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    deadline = t0 + args.budget_s
    meta = collect_meta(args, argv)
    meta["t0"] = t0
    opts = {
        "dry_run": args.dry_run,
        "rounds": args.rounds,
        "compile_backend": args.compile_backend,
        "budget_s": args.budget_s,
    }
    results: dict = {}

    def write(res: dict) -> None:
        results.update(res)
        write_atomic(out, render(meta, results, args.sections))

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    write({})
    print(f"gpu_report: {', '.join(args.sections)} within {args.budget_s:.0f} s -> {out}", flush=True)
    interrupted = False
    try:
        with tempfile.TemporaryDirectory(prefix="msclr-gpu-report-") as tmp:
            if args.no_isolate:
                run_sections(args.sections, opts, deadline, lambda rec: write({rec["name"]: rec}), Path(tmp))
            else:
                orchestrate(args.sections, opts, deadline, Path(tmp), write)
    except KeyboardInterrupt:
        interrupted = True
    meta["load_after"] = _fmt_load()
    meta["used_s"] = time.time() - t0
    for rec in results.values():
        if rec.get("status") == "running":  # stopped with the run
            rec.update(status="interrupted", seconds=time.time() - rec.get("started", t0))
    if interrupted:
        meta["header"]["Interrupted"] = "the run was stopped (SIGINT/SIGTERM); the sections below are what it had"
    write({})
    failed = [n for n, r in results.items() if r.get("status") in ("error", "killed", "crashed") or r.get("errors")]
    for name in args.sections:
        rec = results.get(name, {})
        print(f"  {name:<11} {rec.get('status', 'not run')}" + (f": {rec['error']}" if rec.get("error") else ""))
    print(f"gpu_report: written to {out} in {meta['used_s']:.0f} s", flush=True)
    if interrupted:
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
