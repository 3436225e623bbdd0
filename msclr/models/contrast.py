"""Contrastive wrappers: SkeletonCLR (MoCo v2) and AimCLR over multi-skeleton views.

One queue of past keys is shared by all conventions. The loss is the fused
`infonce_queue` op; keys enter the queue through the in-place `enqueue` op.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import DROP_MODES
from ..ops import enqueue, infonce_queue
from .encoder import STGCNEncoder, init_weights_, simam_attention


def aimclr_released_mask(att: Tensor, keep_prob: float) -> Tensor:
    """The keep mask of AimCLR's released DropBlock_Ske / DropBlockT_1d for attention `att`:
    two in-place updates in sequence (written out, not simplified). It is all ones."""
    m = att.clone()
    m[m >= keep_prob] = 0.0
    m[m < keep_prob] = 1.0
    return m


def threshold_drop(fmap: Tensor, mask: Tensor, keep_prob: float) -> Tensor:
    """AimCLR's drop as the paper describes it (see MoCo.attention_drop), padding-aware."""
    att = simam_attention(fmap.float(), mask)  # (N, C, T, V), 0 on padding
    valid = mask.to(att.dtype)  # (N, V)
    # joints: mean attention over (C, T) of each joint; drop the salient ones
    att_joint = att.mean((1, 2))
    keep_j = (att_joint < keep_prob).to(att.dtype) * valid
    x = fmap * (keep_j * valid.sum() / keep_j.sum().clamp_min(1.0))[:, None, None, :].to(fmap.dtype)
    # positions: every (channel, frame, joint) with salient attention
    keep_p = (att < keep_prob).to(att.dtype) * valid[:, None, None, :]
    total = valid.sum() * att.shape[1] * att.shape[2]
    return x * (keep_p * total / keep_p.sum().clamp_min(1.0)).to(fmap.dtype)


def projection_head(dim_in: int, dim_out: int) -> nn.Sequential:
    """MoCo v2 / SkeletonCLR MLP head: dim_in -> dim_in -> dim_out."""
    return nn.Sequential(nn.Linear(dim_in, dim_in), nn.ReLU(inplace=True), nn.Linear(dim_in, dim_out))


@dataclass
class StepOutput:
    loss: Tensor
    info_nce: Tensor
    extra: dict[str, Tensor]


class MoCo(nn.Module):
    """Query encoder + momentum key encoder + queue (SkeletonCLR), with optional AimCLR terms.

    forward(xq, layout_q, xk, layout_k, ...) takes the query view (N, C, T, V, M) and the
    key views (N, P, C, T, V, M) with their layout ids (N,) and (N, P): P > 1 gives the
    multi-positive loss (every other convention of the sample is a positive).
    """

    def __init__(
        self,
        encoder: STGCNEncoder,
        feature_dim: int = 128,
        queue_size: int = 32768,
        momentum: float = 0.999,
        tau: float = 0.07,
        backend: str = "auto",
        aimclr: bool = False,
        drop_keep_prob: float = 0.7,
        nn_topk: int = 1,
        drop_mode: str = "aimclr",
        init: str = "aimclr",
        queue_dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        if drop_mode not in DROP_MODES:
            raise ValueError(f"drop_mode must be one of {DROP_MODES}, got {drop_mode!r}")
        self.tau, self.m, self.backend = tau, momentum, backend
        self.aimclr, self.keep_prob, self.nn_topk, self.drop_mode = aimclr, drop_keep_prob, nn_topk, drop_mode
        self.encoder_q = encoder
        self.head_q = projection_head(encoder.hidden_dim, feature_dim)
        self.encoder_k = copy.deepcopy(encoder)
        self.head_k = copy.deepcopy(self.head_q)
        # aimclr: the released code re-initialises the whole model after building it, so the key
        # encoder starts from its own draw (not a copy) and the momentum update pulls it along
        init_weights_(self, init)
        for p in list(self.encoder_k.parameters()) + list(self.head_k.parameters()):
            p.requires_grad_(False)
        if queue_dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise ValueError(f"queue_dtype must be float32, bfloat16 or float16, got {queue_dtype}")
        queue = F.normalize(torch.randn(queue_size, feature_dim), dim=1).to(queue_dtype)
        self.register_buffer("queue", queue)
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.int64))
        # The random initial queue counts as filled, as in MoCo/SkeletonCLR.
        self.register_buffer("queue_count", torch.tensor(queue_size, dtype=torch.int64))

    # ------------------------------------------------------------------ encoders
    def _project(self, feat: Tensor) -> Tensor:
        return F.normalize(self.head_q(feat).float(), dim=1)

    def embed_q(self, x: Tensor, layout: Tensor, with_drop: bool = False) -> tuple[Tensor, Tensor | None]:
        """Query embedding; with_drop also returns the embedding of the attention-dropped feature
        map (AimCLR computes both from one encoder pass)."""
        fmap, _, mask = self.encoder_q.feature_map(x, layout)
        persons = x.shape[-1]
        q = self._project(self.encoder_q.pool(fmap, mask, persons))
        if not with_drop:
            return q, None
        if self.drop_mode == "aimclr":  # the released drop keeps every position: same embedding
            return q, q
        return q, self._project(self.encoder_q.pool(self.attention_drop(fmap, mask), mask, persons))

    @torch.no_grad()
    def embed_k(self, x: Tensor, layout: Tensor) -> Tensor:
        return F.normalize(self.head_k(self.encoder_k(x, layout)).float(), dim=1)

    def attention_drop(self, fmap: Tensor, mask: Tensor) -> Tensor:
        """The attention-guided drop of AimCLR's extreme view, by `drop_mode`:

        aimclr: what AimCLR's released `Simam_Drop` computes. Its two in-place mask updates
          (`mask[mask >= keep] = 0; mask[mask < keep] = 1`) turn the zeros of the first into
          ones in the second, so every position is kept: the feature map passes unchanged
          (`aimclr_released_mask` is that rule; tests hold it).
        threshold: the rule as the paper describes it: joints whose mean SimAM attention is
          >= keep_prob are dropped, then every (channel, frame, joint) whose attention is
          >= keep_prob; each rescaled by (positions / kept positions) of the batch.
        random: positions dropped at random with probability proportional to their attention,
          keep_prob kept on average, rescaled like dropout (msclr's earlier variant).
        """
        if self.drop_mode == "aimclr":
            return fmap
        if self.drop_mode == "threshold":
            return threshold_drop(fmap, mask, self.keep_prob)
        att = simam_attention(fmap.float()).mean(1, keepdim=True)  # (N, 1, T, V)
        valid = mask[:, None, None, :].to(att.dtype)
        att = att * valid
        rel = att / (att.sum((2, 3), keepdim=True) / (valid.sum((2, 3), keepdim=True) * att.shape[2])).clamp_min(1e-6)
        drop_p = ((1 - self.keep_prob) * rel).clamp(0, 1)  # mean over valid positions: 1 - keep_prob
        keep = (torch.rand_like(drop_p) >= drop_p).to(fmap.dtype)
        return fmap * keep / self.keep_prob

    @torch.no_grad()
    def momentum_update(self) -> None:
        q_params = list(self.encoder_q.parameters()) + list(self.head_q.parameters())
        k_params = list(self.encoder_k.parameters()) + list(self.head_k.parameters())
        torch._foreach_lerp_(k_params, q_params, 1.0 - self.m)
        for bq, bk in zip(self.encoder_q.buffers(), self.encoder_k.buffers()):
            bk.copy_(bq)

    # ------------------------------------------------------------------ step
    def forward(
        self,
        xq: Tensor,
        layout_q: Tensor,
        xk: Tensor,
        layout_k: Tensor,
        x_extreme: Tensor | None = None,
        nn_mining: bool = False,
        gather=None,
    ) -> StepOutput:
        """One contrastive step; returns the loss and enqueues this step's keys.

        gather: optional callable (N*P, D) -> (world*N*P, D) collecting the keys of every
        rank before the enqueue (DistributedDataParallel).
        """
        n, p = layout_k.shape
        q, _ = self.embed_q(xq, layout_q)
        with torch.no_grad():
            self.momentum_update()
            k = self.embed_k(xk.flatten(0, 1), layout_k.flatten()).view(n, p, -1)
        extra: dict[str, Tensor] = {}
        nce = dict(valid=self.queue_count, backend=self.backend)
        q, k = self._as_queue_dtype(q), self._as_queue_dtype(k)
        if not self.aimclr:
            out = infonce_queue(q, k, self.queue, self.tau, **nce)
            loss = out.loss
        else:
            if x_extreme is None:
                raise ValueError("AimCLR needs the extreme view (x_extreme)")
            qe, qed = (self._as_queue_dtype(t) for t in self.embed_q(x_extreme, layout_q, with_drop=True))
            # InfoNCE of the normal view and divergence of the extreme view from its distribution
            out = infonce_queue(q, k, self.queue, self.tau, q2=qe, topk=self.nn_topk if nn_mining else 0, **nce)
            div_ed = infonce_queue(q.detach(), k, self.queue, self.tau, q2=qed, **nce).divergence
            extra["ddm"] = 0.5 * (out.divergence + div_ed).detach()
            info_nce = out.loss
            if nn_mining:
                # nearest-neighbour mining: the top-k queue entries join the key as positives
                nbrs = self.queue[out.topk.clamp_min(0)]  # read before this step's enqueue
                info_nce = infonce_queue(q, torch.cat([k, nbrs], 1), self.queue, self.tau, **nce).loss
            loss = info_nce + 0.5 * (out.divergence + div_ed)
        keys = k.reshape(-1, k.shape[-1])
        self._enqueue(gather(keys) if gather is not None else keys)
        return StepOutput(loss=loss, info_nce=out.loss.detach(), extra=extra)

    def _as_queue_dtype(self, x: Tensor) -> Tensor:
        """A 16-bit queue gets 16-bit queries and keys (the kernels' tensor-core path needs every
        operand in one dtype); the cast is differentiable, so q's gradient arrives in fp32, and a
        no-op (x itself) for the default fp32 queue."""
        return x.to(self.queue.dtype)

    @torch.no_grad()
    def _enqueue(self, keys: Tensor) -> None:
        q_size = self.queue.shape[0]
        if keys.shape[0] > q_size:
            keys = keys[-q_size:]
        enqueue(self.queue, self.queue_ptr, keys, backend="auto")
        self.queue_count.add_(keys.shape[0]).clamp_(max=q_size)
