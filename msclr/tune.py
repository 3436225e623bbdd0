"""python -m msclr.tune: measure every backend of every op on this machine; `auto` then follows.

For each op, dtype and backend that can run on the device, one representative problem of the
encoder (graph conv 64 -> 64 channels on mixed layouts, InfoNCE against a 16k queue, ...) is
timed forward and backward: warm-up, then the median of --rounds rounds. The fastest-first order
per (op, dtype) is written to the tuned table (msclr.ops.backends.tuned_table_path(): an
$MSCLR_TUNED_TABLE file, else ~/.cache/msclr/tuned_backends.json) under this machine's key (GPU
model, or CPU model and thread count); other machines' entries in the file are kept. From then
on `backend="auto"` follows the measured order here, and `python -m msclr.info` says so.

    python -m msclr.tune                          # the GPU if there is one, else the CPU
    python -m msclr.tune --device cpu --dtypes float32 bfloat16 --rounds 7
    python -m msclr.tune --ops masked_graph_conv --out /tmp/table.json

Exit status: 0 written; 2 a bad argument (one line).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from . import __version__, skeletons
from .ops import backends, enqueue, infonce_queue, masked_bn_apply, masked_bn_stats, masked_graph_conv
from .ops.batch_norm import accumulation_dtype

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}
LAYOUTS = ("ntu25", "smpl24", "coco17")  # the default multi-skeleton run's conventions


def _graph_conv(device, dtype, backend) -> Callable[[], None]:
    """The encoder's 64 -> 64 unit: N 32, T 50, three layouts, bias and importance; forward + backward."""
    table = skeletons.LayoutTable([skeletons.get(n) for n in LAYOUTS])
    g = torch.Generator().manual_seed(0)
    n, c, t = 32, 64, 50
    layout = (torch.arange(n) % len(LAYOUTS)).to(device)
    mask = table.joint_mask[layout.cpu()][:, None, None, :].to(device, dtype)
    x = (torch.randn(n, c, t, table.v_max, generator=g).to(device, dtype) * mask).requires_grad_()
    A = table.A.to(device)
    w = (torch.randn(A.shape[1], c, c, generator=g) / c**0.5).to(device, dtype).requires_grad_()
    b = torch.zeros(A.shape[1], c, device=device, dtype=dtype, requires_grad=True)
    imp = torch.ones(A.shape, device=device, dtype=dtype, requires_grad=True)
    gy = torch.randn(n, c, t, table.v_max, generator=g).to(device, dtype)

    def step():
        y = masked_graph_conv(x, layout, A, w, b, imp, backend=backend)
        torch.autograd.grad(y, (x, w, b, imp), gy)

    return step


def _infonce(device, dtype, backend) -> Callable[[], None]:
    """SkeletonCLR's loss: N 256 queries, one positive, a 16384-key queue, D 128; forward + backward."""
    g = torch.Generator().manual_seed(0)
    unit = lambda *shape: torch.nn.functional.normalize(torch.randn(*shape, generator=g), dim=-1)  # noqa: E731
    q = unit(256, 128).to(device, dtype).requires_grad_()
    k, queue = unit(256, 1, 128).to(device, dtype), unit(16384, 128).to(device, dtype)

    def step():
        out = infonce_queue(q, k, queue, 0.07, backend=backend)
        torch.autograd.grad(out.loss, q)

    return step


def _enqueue(device, dtype, backend) -> Callable[[], None]:
    """256 keys of 128 into a 16384-row queue."""
    queue = torch.zeros(16384, 128, device=device, dtype=dtype)
    ptr = torch.zeros(1, dtype=torch.int64, device=device)
    keys = torch.randn(256, 128).to(device, dtype)
    return lambda: enqueue(queue, ptr, keys, backend=backend)


def _bn_problem(device, dtype):
    """x, mask, scale, shift of the 64-channel unit's masked BatchNorm."""
    table = skeletons.LayoutTable([skeletons.get(n) for n in LAYOUTS])
    n, c, t = 32, 64, 50
    mask = table.joint_mask[torch.arange(n) % len(LAYOUTS)].to(device, dtype)
    x = (torch.randn(n, c, t, table.v_max).to(device, dtype) * mask[:, None, None, :]).requires_grad_()
    acc = accumulation_dtype(x)
    scale = torch.ones(c, device=device, dtype=acc, requires_grad=True)
    shift = torch.zeros(c, device=device, dtype=acc, requires_grad=True)
    return x, mask, scale, shift


def _masked_bn_stats(device, dtype, backend) -> Callable[[], None]:
    """The statistics of the 64-channel unit's masked BatchNorm; forward + backward."""
    x, mask, _, _ = _bn_problem(device, dtype)

    def step():
        stats = masked_bn_stats(x, mask, backend=backend)
        torch.autograd.grad(stats.sum(), x)

    return step


def _masked_bn_apply(device, dtype, backend) -> Callable[[], None]:
    """The fused apply (+ ReLU) of the 64-channel unit's masked BatchNorm; forward + backward."""
    x, mask, scale, shift = _bn_problem(device, dtype)

    def step():
        y = masked_bn_apply(x, mask, scale, shift, relu=True, backend=backend)
        torch.autograd.grad(y.float().sum(), (x, scale, shift))

    return step


PROBLEMS: dict[str, Callable] = {
    "masked_graph_conv": _graph_conv,
    "infonce_queue": _infonce,
    "enqueue": _enqueue,
    "masked_bn_stats": _masked_bn_stats,
    "masked_bn_apply": _masked_bn_apply,
}


def _time(step: Callable[[], None], device: torch.device, rounds: int, warmup: int = 2) -> list[float]:
    """Milliseconds per call, one figure per round (a round: one call after `warmup` untimed ones)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        step()
        sync()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def measure(device: torch.device, ops, dtypes, rounds: int, log=print) -> dict:
    """{op: {dtype: {"ms": {backend: median}, "spread": {backend: (min, max)}, "order": [...]}}}."""
    result: dict = {}
    for op in ops:
        for dtype in dtypes:
            ms, spread = {}, {}
            for backend in backends.IMPLEMENTED[op]:
                if backends.why_unavailable(backend, device.type):
                    continue
                try:
                    step = PROBLEMS[op](device, DTYPES[dtype], backend)
                    times = _time(step, device, rounds)
                except (RuntimeError, TypeError, ValueError) as e:  # this backend does not take this dtype
                    log(f"  {op:<18} {dtype:<9} {backend:<10} not measured: {str(e).splitlines()[0]}")
                    continue
                ms[backend] = statistics.median(times)
                spread[backend] = (min(times), max(times))
                log(f"  {op:<18} {dtype:<9} {backend:<10} {ms[backend]:9.3f} ms  ({min(times):.3f}-{max(times):.3f})")
            if ms:
                order = sorted(ms, key=ms.get)
                result.setdefault(op, {})[dtype] = {"ms": ms, "spread": spread, "order": order}
    return result


def write_table(path: Path, key: str, measured: dict, rounds: int) -> None:
    """Merge this machine's entry into the table at `path` (other machines kept), atomically."""
    data = {"format": backends.TUNED_FORMAT, "machines": {}}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
            if old.get("format") == backends.TUNED_FORMAT:
                data["machines"] = dict(old.get("machines", {}))
        except (OSError, ValueError):
            pass  # a damaged table is replaced
    entry = data["machines"].get(key, {"ops": {}})
    for op, per_dtype in measured.items():
        entry.setdefault("ops", {}).setdefault(op, {}).update(per_dtype)
    entry.update(
        measured=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        msclr=__version__,
        torch=torch.__version__,
        rounds=rounds,
        load_average=list(os.getloadavg()),
    )
    data["machines"][key] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m msclr.tune", description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (the GPU if there is one)")
    ap.add_argument("--ops", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    ap.add_argument("--dtypes", nargs="+", default=None, choices=list(DTYPES),
                    help="default: float32 on CPU; float32, bfloat16, float16 on a GPU")  # fmt: skip
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds per backend (median reported)")
    ap.add_argument("--out", default=None, help="table file (default: msclr.ops.backends.tuned_table_path())")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    name = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") or (name == "cuda" and not torch.cuda.is_available()):
        print(f"msclr.tune: error: --device {args.device}: use cpu, or cuda on a machine with a GPU", file=sys.stderr)
        return 2
    if args.rounds < 1:
        print("msclr.tune: error: --rounds must be at least 1", file=sys.stderr)
        return 2
    device = torch.device(name)
    dtypes = args.dtypes or (["float32"] if name == "cpu" else ["float32", "bfloat16", "float16"])
    path = Path(args.out) if args.out else backends.tuned_table_path()
    key = backends.machine_key(name)
    load = os.getloadavg()[0]
    print(f"msclr.tune on {key} (load average {load:.2f}), median of {args.rounds} rounds:")
    if load > (os.cpu_count() or 1):
        print(f"  warning: the load average {load:.2f} exceeds the {os.cpu_count()} cores: other jobs distort this")
    measured = measure(device, args.ops, dtypes, args.rounds)
    for op, per_dtype in measured.items():
        for dtype, r in per_dtype.items():
            print(f"{op} {dtype}: auto -> {' > '.join(r['order'])}")
    write_table(path, key, measured, args.rounds)
    print(f"written to {path} (entry {key!r}); MSCLR_TUNED_TABLE=<file> selects another table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
