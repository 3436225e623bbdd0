"""Two gloo processes match one process on the concatenated batch: loss, gradients, queue."""

from __future__ import annotations

import os

import pytest
import torch
import torch.multiprocessing as mp

from msclr import skeletons
from msclr.distributed import gather_keys
from msclr.models import STGCNEncoder
from msclr.models.contrast import MoCo

N, T = 6, 8


def build():
    torch.manual_seed(0)
    table = skeletons.LayoutTable([skeletons.get(n) for n in ("ntu25", "coco17")])
    enc = STGCNEncoder(table, persons=1, hidden_channels=4, hidden_dim=16, dropout=0.0)
    model = MoCo(
        enc, feature_dim=8, queue_size=32, momentum=0.9, init="torch"
    )  # AimCLR's tiny init: pre-BN biases get rounding-noise gradients
    g = torch.Generator().manual_seed(1)
    layout_q = torch.tensor([0, 1, 0, 1, 1, 0])
    layout_k = 1 - layout_q[:, None]
    xq = torch.randn(N, 3, T, 25, 1, generator=g) * table.joint_mask[layout_q][:, None, None, :, None]
    xk = torch.randn(N, 1, 3, T, 25, 1, generator=g) * table.joint_mask[layout_k][:, :, None, None, :, None]
    return model, (xq, layout_q, xk, layout_k)


def worker(rank, world, init_file, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    model, (xq, lq, xk, lk) = build()
    ddp = torch.nn.parallel.DistributedDataParallel(model, broadcast_buffers=False)
    part = slice(rank * N // world, (rank + 1) * N // world)
    out = ddp(xq[part], lq[part], xk[part], lk[part], gather=gather_keys)
    out.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    torch.save(
        {"loss": out.loss.detach(), "grads": grads, "queue": model.queue.clone(), "ptr": model.queue_ptr.clone()},
        os.path.join(out_dir, f"rank{rank}.pt"),
    )
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path):
    mp.start_processes(
        worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True, start_method="spawn"
    )
    model, (xq, lq, xk, lk) = build()
    out = model(xq, lq, xk, lk)
    out.loss.backward()
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    # each rank's loss is the mean over its half; DDP averages the gradients
    torch.testing.assert_close((r0["loss"] + r1["loss"]) / 2, out.loss.detach(), rtol=1e-5, atol=1e-6)
    for name, p in model.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(r0["grads"][name], p.grad, rtol=1e-4, atol=1e-6, msg=name)
    torch.testing.assert_close(r0["queue"], model.queue)
    torch.testing.assert_close(r1["queue"], model.queue)
    assert r0["ptr"].item() == r1["ptr"].item() == model.queue_ptr.item() == N
