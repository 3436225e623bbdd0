"""msclr::enqueue_ on every fused backend against the reference: wrap-around, every dtype, odd
byte offsets (a view one element into a buffer is not 4-byte aligned), and the pointer rule."""

from __future__ import annotations

import pytest
import torch
from helpers import enqueue_problem

from msclr.ops import enqueue

OPS = ("enqueue",)


def _run(backend, device, queue, ptr, keys):
    q, p = queue.clone().to(device), ptr.clone().to(device)
    enqueue(q, p, keys.to(device), backend=backend)
    return q.cpu(), p.cpu()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize(("Q", "D", "B", "ptr"), [(6, 4, 3, 5), (64, 128, 64, 0), (33, 7, 20, 31), (5, 3, 5, 4)])
def test_enqueue_matches_the_reference(fused_backend, dtype, Q, D, B, ptr):
    backend, device = fused_backend
    queue, p, keys = enqueue_problem(Q, D, B, ptr, dtype)
    want_q, want_p = _run("reference", "cpu", queue, p, keys)
    got_q, got_p = _run(backend, device, queue, p, keys)
    assert torch.equal(got_q, want_q) and torch.equal(got_p, want_p)
    rows = [(ptr + b) % Q for b in range(B)]
    assert torch.equal(got_q[rows], keys.to(dtype)) and got_p.item() == (ptr + B) % Q


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.uint8])
def test_enqueue_into_a_view_at_an_odd_offset(fused_backend, dtype):
    """Rows of 2-byte elements starting one element into a buffer: no wide-word copy may assume alignment."""
    backend, device = fused_backend
    buf = torch.arange(1 + 9 * 6, dtype=torch.float32).to(dtype).to(device)
    queue = buf[1:].view(9, 6)  # contiguous, starts 1 element (1-2 bytes) past the allocation
    keys = (torch.arange(4 * 6, dtype=torch.float32) + 100).to(dtype).view(4, 6)
    keys = torch.cat([keys.new_zeros(1, 6), keys]).to(device)[1:]  # the keys at an odd offset too
    ptr = torch.tensor([7], device=device)
    want = queue.cpu().clone()
    want[[7, 8, 0, 1]] = keys.cpu()
    enqueue(queue, ptr, keys, backend=backend)
    assert torch.equal(queue.cpu(), want) and ptr.item() == 2
    assert torch.equal(buf[:1].cpu(), torch.zeros(1, dtype=dtype))  # the element before the view is untouched


@pytest.mark.parametrize("ptr", [-1, 16, 40])
def test_a_pointer_outside_the_queue_is_refused_on_the_host(ptr):
    from msclr.ops import IMPLEMENTED

    queue, _, keys = enqueue_problem(16, 8, 4)
    for backend in [b for b in ("reference", "cpu") if b in IMPLEMENTED["enqueue"]]:
        with pytest.raises(RuntimeError, match=f"ptr {ptr} is outside the queue of 16 rows"):
            enqueue(queue.clone(), torch.tensor([ptr]), keys, backend=backend)


@pytest.mark.gpu
@pytest.mark.parametrize("ptr", [-1, -17, 16, 40])
def test_cuda_takes_a_bad_pointer_modulo_the_queue_and_stays_inside_it(ptr):
    """The device cannot refuse without a host sync; it must still never write outside the queue."""
    from helpers import need_backend

    need_backend("cuda", "cuda", OPS)
    queue, _, keys = enqueue_problem(16, 8, 4)
    guard = torch.full((3, 8), 7.0, device="cuda")
    buf = torch.cat([guard, queue.cuda(), guard])
    q, p = buf[3:19], torch.tensor([ptr], device="cuda")
    enqueue(q, p, keys.cuda(), backend="cuda")
    rows = [(ptr + b) % 16 for b in range(4)]
    assert torch.equal(q.cpu()[rows], keys) and p.item() == (ptr + 4) % 16
    assert torch.equal(buf[:3].cpu(), guard.cpu()) and torch.equal(buf[19:].cpu(), guard.cpu())
