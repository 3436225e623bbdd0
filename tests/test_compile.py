"""torch.compile(fullgraph=True) over a module that calls every op: no graph break, same values."""

from __future__ import annotations

import torch
import torch.nn.functional as F

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
    torch._dynamo.reset()
    table = skeletons.LayoutTable([skeletons.get(n) for n in ("ntu25", "kinect_v1_20")])
    torch.manual_seed(0)
    eager = TinyContrast(table)
    compiled_mod = TinyContrast(table)
    compiled_mod.load_state_dict(eager.state_dict())
    compiled = torch.compile(compiled_mod, fullgraph=True)
    layout = torch.tensor([0, 1, 1, 0, 1, 0])
    for step in range(3):
        x1 = torch.randn(6, 3, 4, table.v_max) * table.joint_mask[layout][:, None, None, :]
        x2 = x1 + 0.1 * torch.randn_like(x1) * table.joint_mask[layout][:, None, None, :]
        le, te = eager(x1, x2, layout)
        lc, tc = compiled(x1, x2, layout)
        torch.testing.assert_close(lc, le, rtol=1e-5, atol=1e-5)
        ge = torch.autograd.grad(le, list(eager.parameters()))
        gc = torch.autograd.grad(lc, list(compiled_mod.parameters()))
        for a, b in zip(gc, ge):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        # the mutation of the queue survived compilation
        torch.testing.assert_close(compiled_mod.queue, eager.queue)
        assert compiled_mod.ptr.item() == eager.ptr.item() == (6 * (step + 1)) % 32
        if step > 0:
            assert torch.equal(tc, te)


def test_compile_reports_no_graph_break():
    torch._dynamo.reset()
    table = skeletons.LayoutTable([skeletons.get("coco17")])
    mod = TinyContrast(table)
    layout = torch.zeros(4, dtype=torch.long)
    x = torch.randn(4, 3, 5, table.v_max)
    explanation = torch._dynamo.explain(mod)(x, x, layout)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1
