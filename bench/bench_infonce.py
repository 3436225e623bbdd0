"""infonce_queue forward+backward: eager, reference, torch.compile(reference), cpu, cuda, triton.

    pytest bench/bench_infonce.py --benchmark-only

Shapes (issue 4): D=128, Q in {16384, 65536}, P in {1, 3}; N in {128, 512} on CPU, 4096 on a GPU;
plus one AimCLR configuration (q2 divergence + top-1 mining). Each benchmark runs the loss and its
gradient w.r.t. q: the fused backends and the reference op compute dq in their forward and the
autograd backward only scales it; "compile" is torch.compile of the reference function (which also
computes dq in its forward). "eager" is the loss as SkeletonCLR/MoCo code writes it, left to
autograd: logits = [q.k, q @ queue^T] / tau, cross-entropy with target 0, one such term per
positive averaged over the P positives (the op's definition), and for the AimCLR case the
divergence written the same way (softmax targets of q, log-softmax of q2) plus the top-1
mining as `topk`. `ROUNDS` rounds (bench/conftest.py).

The peak memory above the inputs of one forward+backward at the target shape is measured in a
child process per provider (process high-water mark VmHWM, reset after a warm-up call, with glibc
returning freed memory to the OS so that reused blocks count, on CPU; torch.cuda.max_memory_allocated
on a GPU) and shown in the table's notes. Run it alone with
    python bench/bench_infonce.py --peak-memory PROVIDER N Q P DEVICE
"""

from __future__ import annotations

import functools
import gc
import json
import os
import resource
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # `conftest.sync` when run as a script

from conftest import ROUNDS, sync  # noqa: E402

from msclr.ops import infonce_queue, reference, why_unavailable  # noqa: E402

TAU = 0.07
D = 128
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
NS = [4096] if DEVICE == "cuda" else [128, 512]
QS = [16384, 65536]
PS = [1, 3]
PROVIDERS = ["eager", "reference", "compile", "cpu", "cuda", "triton"]
TARGET = (NS[-1], 65536, 1)  # (N, Q, P) of the speed and memory targets


def inputs(n, q_size, p, device, aimclr=False, seed=0):
    g = torch.Generator().manual_seed(seed)

    def unit(*shape):
        return F.normalize(torch.randn(*shape, generator=g), dim=-1).to(device)

    q, k, queue = unit(n, D), unit(n, p, D), unit(q_size, D)
    q2 = unit(n, D) if aimclr else None
    return q, k, queue, q2


@functools.cache
def _compiled_reference(backend="inductor"):
    return torch.compile(reference.infonce_queue_forward, dynamic=False, backend=backend)


def eager_loss(q, k, queue, q2, topk):
    """The loss (+ divergence) as a user writes it in plain torch, autograd doing the rest."""
    neg = q @ queue.T / TAU  # (N, Q)
    pos = torch.einsum("nd,npd->np", q, k) / TAU  # (N, P)
    target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    loss = torch.stack([F.cross_entropy(torch.cat([pos[:, i : i + 1], neg], 1), target) for i in range(pos.shape[1])])
    total = loss.mean()
    if topk > 0:
        neg.detach().topk(topk, dim=1)  # AimCLR's nearest-neighbour mining: indices only
    if q2 is not None:  # AimCLR's divergence: softmax of q's logits (no gradient) against q2's
        logits = torch.cat([pos[:, :1], neg], 1)
        logits2 = torch.cat([torch.einsum("nd,nd->n", q2, k[:, 0])[:, None], q2 @ queue.T], 1) / TAU
        total = total - (F.softmax(logits.detach(), 1) * F.log_softmax(logits2, 1)).sum(1).mean()
    return total


def make_step(provider, q, k, queue, q2, topk, compile_backend="inductor"):
    """A closure running loss (+ divergence) and the gradient(s) with `provider` (no device sync)."""
    valid = torch.tensor(queue.shape[0], device=queue.device)
    if provider == "eager":
        qe = q.clone().requires_grad_()
        q2e = q2.clone().requires_grad_() if q2 is not None else None

        def step():
            total = eager_loss(qe, k, queue, q2e, topk)
            return total, *torch.autograd.grad(total, (qe,) if q2e is None else (qe, q2e))

        return step
    if provider == "compile":
        fn = _compiled_reference(compile_backend)

        def step():
            losses, _, _, div, dq, dq2 = fn(q, k, queue, valid, TAU, topk, q2, True)
            n = q.shape[0]
            return losses.mean() + (div.mean() if q2 is not None else 0), dq / n, (dq2 / n if q2 is not None else None)

        return step
    qa = q.clone().requires_grad_()
    q2a = q2.clone().requires_grad_() if q2 is not None else None

    def step():
        out = infonce_queue(qa, k, queue, TAU, valid=valid, topk=topk, q2=q2a, backend=provider)
        total = out.loss + (out.divergence if q2a is not None else 0)
        grads = torch.autograd.grad(total, (qa,) if q2a is None else (qa, q2a))
        return total, *grads

    return step


def _unavailable(provider, device):
    if provider in ("compile", "eager"):
        return ""
    return why_unavailable(provider, device)


# ---------------------------------------------------------------- peak memory (child processes)


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _hwm_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def peak_memory_child(provider, n, q_size, p, device, aimclr=False) -> dict:
    """Peak bytes above the inputs of one forward+backward (after one warm-up call)."""
    q, k, queue, q2 = inputs(n, q_size, p, device, aimclr)
    step = make_step(provider, q, k, queue, q2, 1 if aimclr else 0)
    step()  # warm-up: compilation, thread pools, BLAS buffers are not the op's memory
    sync(device)
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        sync(device)
        return {"peak_above_inputs": torch.cuda.max_memory_allocated() - base, "how": "max_memory_allocated"}
    base = _rss_kib()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the high-water mark to the current RSS
        reset = True
    except OSError:
        reset = False
    step()
    peak = _hwm_kib() if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    how = "VmHWM after reset" if reset else "ru_maxrss (no reset possible: includes the warm-up)"
    return {"peak_above_inputs": max(0, peak - base) * 1024, "how": how}


@functools.cache
def peak_memory(provider, n, q_size, p, device, aimclr=False) -> dict | None:
    cmd = [sys.executable, os.path.abspath(__file__), "--peak-memory", provider, str(n), str(q_size), str(p), device]
    cmd += ["--aimclr"] if aimclr else []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), os.environ.get("PYTHONPATH", "")]))
    # glibc would keep the warm-up call's freed blocks resident and hide their reuse from the
    # high-water mark: a fixed 64 KiB mmap threshold and no trim padding return them to the OS.
    env.update(MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0", MALLOC_TOP_PAD_="0")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        return {"error": proc.stderr[-500:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def memory_note(provider, n, q_size, p, device, aimclr=False) -> str:
    mine = peak_memory(provider, n, q_size, p, device, aimclr)
    ref = peak_memory("reference", n, q_size, p, device, aimclr)
    if mine is None or "error" in mine:
        return f"peak memory: failed ({(mine or {}).get('error', '')[-80:]})"
    mib = mine["peak_above_inputs"] / 2**20
    note = f"peak above inputs {mib:.1f} MiB"
    if ref and "error" not in ref and ref["peak_above_inputs"] > 0:
        note += f" = {100 * mine['peak_above_inputs'] / ref['peak_above_inputs']:.1f}% of reference"
    return note


# ---------------------------------------------------------------- benchmarks


def _bench(benchmark, provider, n, q_size, p, aimclr):
    reason = _unavailable(provider, DEVICE)
    if reason:
        pytest.skip(reason)
    q, k, queue, q2 = inputs(n, q_size, p, DEVICE, aimclr)
    topk = 1 if aimclr else 0
    step = make_step(provider, q, k, queue, q2, topk)
    extra = " +div+top1" if aimclr else ""
    benchmark.group = f"infonce_queue fwd+bwd N={n} Q={q_size} P={p} D={D}{extra} {DEVICE}"
    benchmark.extra_info["provider"] = provider
    if (n, q_size, p) == TARGET:
        benchmark.extra_info["note"] = memory_note(provider, n, q_size, p, DEVICE, aimclr)

    def run():
        step()
        sync(DEVICE)

    rounds = ROUNDS
    benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("q_size", QS)
@pytest.mark.parametrize("n", NS)
def test_infonce_queue(benchmark, provider, n, q_size, p):
    _bench(benchmark, provider, n, q_size, p, aimclr=False)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_infonce_queue_aimclr(benchmark, provider):
    n, q_size, p = TARGET
    _bench(benchmark, provider, n, q_size, p, aimclr=True)


if __name__ == "__main__":
    if len(sys.argv) >= 7 and sys.argv[1] == "--peak-memory":
        provider, n, q_size, p, device = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
        print(json.dumps(peak_memory_child(provider, n, q_size, p, device, aimclr="--aimclr" in sys.argv)))
    else:
        print(__doc__)
