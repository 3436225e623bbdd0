"""torch.compile(fullgraph=True) over a module that calls every op: no graph break, same values."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from helpers import assert_compiled_matches_eager, assert_no_graph_break, layout_table

from msclr import skeletons
from msclr.ops import enqueue, infonce_queue, masked_graph_conv


class TinyContrast(torch.nn.Module):
    """One masked graph conv, masked mean pooling, InfoNCE against a queue, then enqueue."""

    def __init__(self, table: skeletons.LayoutTable, c_in=3, c_out=8, queue_size=32):
        super().__init__()
        K = table.num_partitions
        self.register_buffer("A", table.A.clone())
        self.register_buffer("mask", table.joint_mask.float())
        self.weight = torch.nn.Parameter(torch.randn(K, c_out, c_in) / c_in**0.5)
        self.bias = torch.nn.Parameter(torch.zeros(K, c_out))
        self.importance = torch.nn.Parameter(torch.ones_like(table.A))
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, c_out), dim=1))
        self.register_buffer("ptr", torch.zeros(1, dtype=torch.int64))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def embed(self, x, layout):
        y = masked_graph_conv(x, layout, self.A, self.weight, self.bias, self.importance)
        m = self.mask[layout][:, None, None, :]
        return F.normalize((y * m).sum((2, 3)) / (m.sum((2, 3)) * y.shape[2]), dim=1)

    def forward(self, x1, x2, layout):
        q, k = self.embed(x1, layout), self.embed(x2, layout).detach()
        out = infonce_queue(q, k, self.queue, 0.1, valid=self.count, topk=2, q2=self.embed(x2, layout))
        enqueue(self.queue, self.ptr, k)
        self.count.add_(k.shape[0]).clamp_(max=self.queue.shape[0])
        return out.loss + out.divergence, out.topk


def test_compile_fullgraph_forward_backward_matches_eager():
    """Loss, gradients, the queue and its pointer, the top-k indices: as in eager over three steps."""
    table = layout_table(("ntu25", "kinect_v1_20"))
    layout = torch.tensor([0, 1, 1, 0, 1, 0])
    mask = table.joint_mask[layout][:, None, None, :]
    g = torch.Generator().manual_seed(0)
    steps = []
    for _ in range(3):
        x1 = torch.randn(6, 3, 4, table.v_max, generator=g) * mask
        steps.append((x1, x1 + 0.1 * torch.randn(x1.shape, generator=g) * mask, layout))

    def check_step(step, eager, compiled_mod, *_):  # the mutation of the queue survived compilation
        assert compiled_mod.ptr.item() == eager.ptr.item() == (6 * (step + 1)) % 32

    assert_compiled_matches_eager(
        lambda: TinyContrast(table), steps, rtol=1e-5, atol=1e-5, grad_rtol=1e-4, grad_atol=1e-5, check_step=check_step
    )


def test_compile_reports_no_graph_break():
    torch._dynamo.reset()
    table = layout_table(("coco17",))
    mod = TinyContrast(table)
    layout = torch.zeros(4, dtype=torch.long)
    x = torch.randn(4, 3, 5, table.v_max)
    explanation = assert_no_graph_break(mod, x, x, layout)
    assert explanation.graph_count == 1
