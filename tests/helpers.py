"""What the test files share (the shape of Liger-Kernel's test/utils.py); fixtures are in conftest.py.

problems, one generator per op   graph_conv_problem, infonce_problem (unit), bn_problem, enqueue_problem
skips                            backend_unavailable -> need_backend (inside a test), needs_backend (a mark);
                                 needs_ntu_parser (a mark);
                                 FUSED_CASES, the (backend, device) cases of the `fused_backend` fixture
the Triton interpreter           run_triton_interpreter_child
torch.compile against eager      assert_no_graph_break, assert_compiled_matches_eager
Triton for the GPU, without one  compile_triton_for_sm90, sm90_code_facts
CUDA kernels, without a GPU      cuda_kernel_facts (what nvcc built into msclr._C, per kernel)

Triton on CPU runs under TRITON_INTERPRET=1, which Triton reads when the kernels are defined:
setting it in this process would leak into the rest of the suite. So a kernel test file runs its
`triton-interpreter` cases again in a child pytest with the variable set (run_triton_interpreter_child);
in the parent they skip, in the child (INTERPRETING) they run.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence

import pytest
import torch
import torch.nn.functional as F

from msclr import skeletons
from msclr.ops import IMPLEMENTED, why_unavailable

GPU = torch.cuda.is_available()
INTERPRETING = os.environ.get("TRITON_INTERPRET") == "1"  # as when triton was imported: this process interprets

MIXED_LAYOUTS = ("kinect_v1_20", "ntu25", "berkeley_mhad43")  # 20, 25 and 43 joints in one batch


# ---------------------------------------------------------------------------------------- skips
def _ntu_parser_built() -> bool:
    from msclr.data import ntu

    return ntu.cpp_parser_available()


NTU_PARSER = _ntu_parser_built()
needs_ntu_parser = pytest.mark.skipif(not NTU_PARSER, reason="msclr._C is not built with the NTU parser")


def backend_unavailable(backend: str, device: str = "cpu", ops: str | Iterable[str] = ()) -> str:
    """'' when `backend` can run (every op of) `ops` on `device` here, else the reason.

    msclr.ops.why_unavailable decides, with two additions: a CUDA device needs a GPU, and Triton
    on CPU runs only where this process interprets (the child of run_triton_interpreter_child).
    """
    if device == "cuda" and not GPU:
        return "no CUDA GPU on this machine"
    if backend == "triton" and device == "cpu" and not INTERPRETING:
        return "Triton on CPU runs in a child process under TRITON_INTERPRET=1 (run_triton_interpreter_child)"
    reason = why_unavailable(backend, device)
    for op in (ops,) if isinstance(ops, str) else ops:
        if not reason and backend not in IMPLEMENTED.get(op, ()):
            reason = f"{op} has no {backend} implementation in this build"
    return reason


def need_backend(backend: str, device: str = "cpu", ops: str | Iterable[str] = ()) -> None:
    """Skip the running test, with the reason, unless `backend` can run `ops` on `device` here."""
    reason = backend_unavailable(backend, device, ops)
    if reason:
        pytest.skip(reason)


def needs_backend(backend: str, device: str = "cpu", ops: str | Iterable[str] = ()) -> pytest.MarkDecorator:
    """The same condition as a mark, for a test function or a module's pytestmark."""
    reason = backend_unavailable(backend, device, ops)
    return pytest.mark.skipif(bool(reason), reason=reason or f"{backend} runs on {device} here")


# Every fused backend that can exist, with the device its tensors live on (the fused_backend fixture).
FUSED_CASES = [
    pytest.param(("cpu", "cpu"), id="cpu"),
    pytest.param(("triton", "cpu"), id="triton-interpreter"),
    pytest.param(("cuda", "cuda"), id="cuda", marks=pytest.mark.gpu),
    pytest.param(("triton", "cuda"), id="triton-gpu", marks=pytest.mark.gpu),
]


# ------------------------------------------------------------------------------------- problems
def layout_table(names: Sequence[str]) -> skeletons.LayoutTable:
    return skeletons.LayoutTable([skeletons.get(nm) for nm in names])


def to(device, *tensors):
    """The tensors on `device` (None stays None)."""
    return [None if v is None else v.to(device) for v in tensors]


def graph_conv_problem(n, c_in, c_out, t, names=MIXED_LAYOUTS, bias=True, importance=True, seed=0):
    """masked_graph_conv's inputs: (table, x, layout, W, b, imp).

    A padded batch mixing the conventions `names` sample by sample (sample i has layout i mod L),
    x zero on padded joints as in real batches; W (K, C_out, C_in), b (K, C_out) or None,
    importance (L, K, V, V) near 1 or None.
    """
    g = torch.Generator().manual_seed(seed)
    table = layout_table(names)
    layout = torch.arange(n) % len(names)
    mask = table.joint_mask[layout][:, None, None, :]
    x = torch.randn(n, c_in, t, table.v_max, generator=g) * mask
    K = table.num_partitions
    W = torch.randn(K, c_out, c_in, generator=g) / c_in**0.5
    b = torch.randn(K, c_out, generator=g) if bias else None
    imp = 1 + 0.1 * torch.randn(table.A.shape, generator=g) if importance else None
    return table, x, layout, W, b, imp


def unit(*shape, seed=0, dtype=torch.float32, device="cpu"):
    """Rows of unit length along the last axis (drawn in float64, then cast)."""
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1).to(device=device, dtype=dtype)


def infonce_problem(n, p, q_size, d, device="cpu", dtype=torch.float32, seed=0):
    """infonce_queue's inputs: q (N, D), k (N, P, D), queue (Q, D), q2 (N, D), unit rows."""
    return (
        unit(n, d, seed=seed + 1, dtype=dtype, device=device),
        unit(n, p, d, seed=seed + 2, dtype=dtype, device=device),
        unit(q_size, d, seed=seed + 3, dtype=dtype, device=device),
        unit(n, d, seed=seed + 4, dtype=dtype, device=device),
    )


def bn_problem(n, c, t, names=MIXED_LAYOUTS, dtype=torch.float32, seed=0):
    """masked_bn_stats / masked_bn_apply inputs: (x, mask, scale, shift, res).

    x (N, C, T, V) zero on padded joints, its bool joint mask (N, V), scale/shift (C,) in float32
    (float64 for float64 x), a residual like x.
    """
    g = torch.Generator().manual_seed(seed)
    table = layout_table(names)
    layout = torch.arange(n) % len(names)
    mask = table.joint_mask[layout]
    m = mask[:, None, None, :]
    x = (torch.randn(n, c, t, table.v_max, generator=g) * 2 + 0.5) * m
    scale = 1 + 0.5 * torch.randn(c, generator=g)
    shift = torch.randn(c, generator=g)
    res = torch.randn(n, c, t, table.v_max, generator=g) * m
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    return x.to(dtype), mask, scale.to(acc), shift.to(acc), res.to(dtype)


def enqueue_problem(queue_size=6, d=4, batch=3, ptr=5, dtype=torch.float32, seed=0):
    """enqueue's inputs: queue (Q, D), ptr (one int64), keys (B, D); the default wraps around the end."""
    g = torch.Generator().manual_seed(seed)
    queue = torch.randn(queue_size, d, generator=g).to(dtype)
    keys = torch.randn(batch, d, generator=g)
    return queue, torch.tensor([ptr], dtype=torch.int64), keys


# ----------------------------------------------------------------- Triton compiled for sm_90
def compile_triton_for_sm90(
    fn,
    dtype: str,
    pointers: dict,
    constexprs: dict,
    scalars: dict | None = None,
    options: dict | None = None,
    divisible: Sequence[str] = (),
):
    """`fn` (a @triton.jit kernel) through the real compiler for sm_90, with no GPU: the checks the
    interpreter skips (dot shapes, dtypes, loop bounds). `pointers` maps pointer arguments to a
    Triton type, "x" meaning `dtype` ("fp32", "bf16"); `scalars` types other arguments (default i32);
    `options` are the launch options (num_warps, num_stages).

    Specialised as a real launch is: every pointer 16-byte aligned (torch allocations are) and
    the integer arguments in `divisible` multiples of 16 (e.g. D = 128). Without that, triton
    cannot prove a masked 16-bit load vector-aligned and compiles scalar loads, which are
    never turned into the pipelined async copies a real launch gets.
    Skips under TRITON_INTERPRET=1 and where no ptxas for sm_90 is installed."""
    triton = pytest.importorskip("triton")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    if INTERPRETING:
        pytest.skip("TRITON_INTERPRET=1 in this process")
    signature, attrs = {}, {}
    for i, arg in enumerate(fn.arg_names):
        if arg in pointers or arg in divisible:
            attrs[(i,)] = [["tt.divisibility", 16]]
        if arg in constexprs:
            signature[arg] = "constexpr"
        elif arg in pointers:
            signature[arg] = f"*{dtype}" if pointers[arg] == "x" else pointers[arg]
        else:
            signature[arg] = (scalars or {}).get(arg, "i32")
    try:
        compiled = triton.compile(
            ASTSource(fn, signature, constexprs, attrs), target=GPUTarget("cuda", 90, 32), options=options or {}
        )
    except RuntimeError as e:
        if "ptxas" in str(e).lower() and "not found" in str(e).lower():
            pytest.skip(f"no ptxas for sm_90: {e}")
        raise
    assert compiled.asm.get("cubin"), fn.__name__
    return compiled


def _cuda_binary_tools() -> str:
    """The folder of cuobjdump / nvdisasm shipped in triton's wheel (skips the test without them)."""
    import triton

    tools = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
    if not all(os.path.exists(os.path.join(tools, t)) for t in ("cuobjdump", "nvdisasm")):
        pytest.skip("cuobjdump / nvdisasm are not in this triton wheel")
    return tools


def sm90_code_facts(compiled) -> dict:
    """What the GPU will run, read from a `compile_triton_for_sm90` result with the tools that ship
    in triton's wheel: tensor-core instruction counts in the SASS (HGMMA = Hopper wgmma, HMMA =
    mma.sync), asynchronous global-to-shared copies (LDGSTS = cp.async: the software-pipelined
    loads of the next tiles), registers, and the stack bytes (register spills) from
    `cuobjdump -res-usage`."""
    import tempfile

    tools = _cuda_binary_tools()
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(compiled.asm["cubin"])
        f.flush()
        usage = subprocess.run([f"{tools}/cuobjdump", "-res-usage", f.name], capture_output=True, text=True).stdout
        sass = subprocess.run([f"{tools}/nvdisasm", f.name], capture_output=True, text=True).stdout
    found = re.search(r"REG:(\d+) STACK:(\d+)", usage)
    assert found, usage
    return dict(
        hgmma=len(re.findall(r"\bHGMMA\b", sass)),
        hmma=len(re.findall(r"\bHMMA\b", sass)),
        ldgsts=len(re.findall(r"\bLDGSTS\b", sass)),
        registers=int(found.group(1)),
        stack=int(found.group(2)),
    )


@functools.cache
def cuda_kernel_facts(arch: str = "sm_90") -> dict[str, dict]:
    """What nvcc compiled into msclr._C for `arch`, per CUDA kernel (demangled name, with its
    template arguments): registers and stack bytes (`cuobjdump -res-usage`) and tensor-core
    instruction counts in the SASS (HMMA = mma.sync / WMMA, HGMMA = wgmma). Skips when the
    extension has no CUDA kernels or no code for `arch` (TORCH_CUDA_ARCH_LIST). Cached per arch:
    one disassembly of the library takes about 15 s (read it, do not change it)."""
    from msclr import _build_info, _ext

    if not _build_info.WITH_CUDA:
        pytest.skip("msclr._C was built without CUDA")
    tools = _cuda_binary_tools()
    lib = _ext.extension().__file__

    def dump(*flags):
        done = subprocess.run([f"{tools}/cuobjdump", *flags, "-arch", arch, lib], capture_output=True, text=True)
        return done.stdout

    usage = dump("-res-usage")
    if "Function" not in usage:
        pytest.skip(f"msclr._C has no {arch} code (TORCH_CUDA_ARCH_LIST)")
    facts: dict[str, dict] = {}
    for mangled, regs, stack in re.findall(r"Function (\S+?):?\s+REG:(\d+) STACK:(\d+)", usage):
        facts[mangled] = dict(registers=int(regs), stack=int(stack), hmma=0, hgmma=0)
    sass = dump("-sass")
    for mangled, body in re.findall(r"Function : (\S+)\n(.*?)(?=\n\s+Function : |\Z)", sass, re.S):
        if mangled in facts:
            facts[mangled].update(hmma=len(re.findall(r"\bHMMA\b", body)), hgmma=len(re.findall(r"\bHGMMA\b", body)))
    names = subprocess.run(["c++filt"], input="\n".join(facts), capture_output=True, text=True).stdout.split("\n")
    return {name: facts[m] for m, name in zip(facts, names) if name}


# --------------------------------------------------------------------------- Triton interpreter
def run_triton_interpreter_child(test_file: str, min_passed: int) -> None:
    """Run the `triton-interpreter` cases of `test_file` in a fresh pytest with TRITON_INTERPRET=1.

    Fails with the child's output unless it exits 0 with at least `min_passed` tests passed.
    """
    if INTERPRETING:
        pytest.skip("TRITON_INTERPRET=1 here: the triton-interpreter cases run in this process")
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1")
    cmd = [sys.executable, "-m", "pytest", str(test_file), "-q", "-x", "-p", "no:cacheprovider"]
    cmd += ["-k", "triton-interpreter"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    tail = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    passed = re.search(r"(\d+) passed", proc.stdout)
    assert passed and int(passed.group(1)) >= min_passed, tail
    assert " failed" not in proc.stdout, tail


# ---------------------------------------------------------------------- torch.compile vs eager
def assert_no_graph_break(fn: Callable, *args):
    """torch._dynamo.explain of fn(*args): no graph break (the explanation is returned)."""
    explanation = torch._dynamo.explain(fn)(*args)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    return explanation


def _fresh(args: Sequence) -> list:
    """The arguments of one call, tensors cloned (a leaf that requires grad stays one)."""
    return [a.detach().clone().requires_grad_(a.requires_grad) if isinstance(a, torch.Tensor) else a for a in args]


def _close(actual, expected, rtol, atol, where: str) -> None:
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, msg=lambda m: f"{where}: {m}")


def assert_compiled_matches_eager(
    make: Callable[[], torch.nn.Module],
    steps: Sequence[Sequence],
    *,
    rtol: float | None = None,
    atol: float | None = None,
    grad_rtol: float | None = None,
    grad_atol: float | None = None,
    check_step: Callable | None = None,
):
    """torch.compile(fullgraph=True) of a module against the module itself, over several calls.

    make() builds the module (under torch.manual_seed(0)); the compiled copy starts from the eager
    one's state, and a third copy is traced first to show no graph break. `steps` holds the
    arguments of each call. Per call: the same output (the first of a tuple is differentiated:
    a scalar, or against a fixed random cotangent; the rest must be equal); the same gradients
    w.r.t. every parameter and every argument that requires grad; the same buffers afterwards
    (queues, pointers, running statistics mutated in place). Tolerances None: assert_close's
    defaults for the dtype. check_step(step, eager, compiled_module, out_eager, out_compiled) adds
    checks. Returns (eager, compiled_module).
    """
    torch._dynamo.reset()
    torch.manual_seed(0)
    eager = make()
    compiled_mod = make()
    compiled_mod.load_state_dict(eager.state_dict())
    assert_no_graph_break(make(), *_fresh(steps[0]))  # a copy of its own: tracing runs the mutations
    compiled = torch.compile(compiled_mod, fullgraph=True)
    for step, args in enumerate(steps):
        args_e, args_c = _fresh(args), _fresh(args)
        out_e, out_c = eager(*args_e), compiled(*args_c)
        (y_e, *rest_e), (y_c, *rest_c) = (out if isinstance(out, tuple) else (out,) for out in (out_e, out_c))
        _close(y_c, y_e, rtol, atol, f"step {step}, output")
        for i, (a, b) in enumerate(zip(rest_c, rest_e, strict=True)):
            assert torch.equal(a, b), f"step {step}: output {i + 1} differs"
        cot = None if y_e.dim() == 0 else torch.randn(y_e.shape, generator=torch.Generator().manual_seed(step))
        wrt = [
            [a for a in call_args if isinstance(a, torch.Tensor) and a.requires_grad] + list(mod.parameters())
            for call_args, mod in ((args_e, eager), (args_c, compiled_mod))
        ]
        g_e = torch.autograd.grad(y_e, wrt[0], cot)
        g_c = torch.autograd.grad(y_c, wrt[1], cot)
        for i, (a, b) in enumerate(zip(g_c, g_e, strict=True)):
            _close(a, b, grad_rtol, grad_atol, f"step {step}, gradient {i}")
        for (name, b_e), b_c in zip(eager.named_buffers(), compiled_mod.buffers(), strict=True):
            _close(b_c, b_e, None, None, f"step {step}, buffer {name}")
        if check_step is not None:
            check_step(step, eager, compiled_mod, out_e, out_c)
    return eager, compiled_mod
