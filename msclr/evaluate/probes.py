"""The classifiers fitted on frozen features, and the choice of their one hyper-parameter.

Logistic regression (`fit_logreg`, the default linear probe; C by `choose_C`), SkeletonCLR/AimCLR's
SGD linear probe (`fit_linear(probe="sgd")`) and the similarity-weighted k-NN (`knn_scores`; k
by `choose_k`). The hyper-parameters are chosen on the training features only, with whole
subjects held out when the store records them (`cv_folds`), as the cross-subject test does.
The protocols that use them are in protocols.py.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

log = logging.getLogger("msclr.evaluate")


class EvalError(ValueError):
    """A request evaluation cannot serve (the message says what is missing and where)."""


def milestones_for(epochs: int, milestones) -> list[int]:
    """lr x0.1 epochs: as given, else at 80 % of the run (80 of AimCLR's 100)."""
    return [int(m) for m in milestones] if milestones else [max(1, int(round(epochs * 0.8)))]


def sgd_schedule(params, lr, momentum, wd, epochs, milestones):
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd)
    return opt, torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones_for(epochs, milestones), gamma=0.1)


PROBES = ("logreg", "sgd")


# Grids of the probes' one hyper-parameter, chosen on the training features only (never the test
# part): C by stratified 5-fold cross-validation, k by leave-one-out. Measured on UTD-MHAD
# checkpoints (2026-12-03): C=1 under-fits pre-trained features by 2-3 points, and k=20 exceeds
# the 16 training sequences per class, so each vote mixes classes.
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
K_GRID = (1, 3, 5, 10, 20, 50)
CV_FOLDS = 5
CV_MAX_ITER = 300  # L-BFGS iterations per cross-validation fit: enough to rank the C values


def _standardise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x.mean(0), x.std(0, unbiased=False).clamp_min(1e-8)


def _solve_logreg(z, y, num_classes, C, init=None, max_iter=1000):
    """(W, b) of the L2 multinomial logistic regression on standardised z (float64), from init."""
    n, d = z.shape
    if init is None:
        init = torch.zeros(num_classes, d, dtype=z.dtype), torch.zeros(num_classes, dtype=z.dtype)
    W0, b0 = init
    W, b = W0.clone().requires_grad_(), b0.clone().requires_grad_()
    opt = torch.optim.LBFGS(
        [W, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-7, tolerance_change=1e-10, history_size=20,
        line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z @ W.T + b, y, reduction="sum") * (1.0 / n) + (0.5 / (C * n)) * (W * W).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return W.detach(), b.detach()


def cv_folds(labels: torch.Tensor, groups: torch.Tensor | None = None, folds: int = CV_FOLDS, seed: int = 0):
    """Fold index (0..folds-1) of every training sample. With groups (the subjects of a cross-subject
    split) whole groups go to one fold, dealt round-robin in sorted order, so a held-out fold holds
    unseen subjects as the test part does (repetitions by one subject are near-duplicates that
    would reward memorising). Without: each class dealt round-robin in a seeded random order."""
    if groups is not None and groups.unique().numel() >= 2:
        ids = groups.unique(sorted=True)
        return (torch.searchsorted(ids, groups) % min(folds, ids.numel())).long()
    g = torch.Generator().manual_seed(seed)
    fold = torch.empty_like(labels, dtype=torch.long)
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(idx.numel(), generator=g)]
        fold[idx] = torch.arange(idx.numel()) % folds
    return fold


def choose_C(feats, labels, num_classes, groups=None, grid=C_GRID, folds=CV_FOLDS) -> tuple[float, dict[float, float]]:
    """C of `fit_logreg` by k-fold cross-validation on the training features (`cv_folds`): the C of
    the best held-out accuracy (ties: the smaller C, the stronger regularisation). Along the grid
    each fit starts from the previous C's solution. Returns (C, {C: accuracy})."""
    x, y = feats.to(torch.float64), labels.long()
    fold = cv_folds(y, groups, folds)
    correct = dict.fromkeys(grid, 0)
    for f in fold.unique().tolist():
        tr, va = fold != f, fold == f
        if not tr.any():
            continue
        mean, std = _standardise(x[tr])
        z_tr, z_va = (x[tr] - mean) / std, (x[va] - mean) / std
        init = None
        for C in sorted(grid):
            init = _solve_logreg(z_tr, y[tr], num_classes, C, init, max_iter=CV_MAX_ITER)
            correct[C] += int(((z_va @ init[0].T + init[1]).argmax(1) == y[va]).sum())
    acc = {C: correct[C] / max(1, y.numel()) for C in grid}
    best = max(acc.values())
    return min(C for C in grid if acc[C] == best), acc


def fit_logreg(
    feats: torch.Tensor, labels: torch.Tensor, num_classes: int, C: float = 1.0, max_iter: int = 1000
) -> nn.Linear:
    """Multinomial logistic regression on standardised features, L2-regularised as
    scikit-learn's LogisticRegression(C) (0.5 ||W||^2 + C * sum of cross-entropies, bias not
    penalised), solved to convergence by full-batch L-BFGS in float64: deterministic, and free
    of the learning-rate failure modes of SGD on unnormalised features. The standardisation
    is folded into the returned layer, which takes raw features."""
    x = feats.to(torch.float64)
    mean, std = _standardise(x)
    W, b = _solve_logreg((x - mean) / std, labels.long(), num_classes, C, max_iter=max_iter)
    fc = nn.Linear(x.shape[1], num_classes)
    with torch.no_grad():  # W (x - mean) / std + b = (W / std) x + (b - (W / std) mean)
        w = W / std
        fc.weight.copy_(w)
        fc.bias.copy_(b - w @ mean)
    return fc.eval()


def resolve_C(feats, labels, num_classes, C, what: str = "linear", groups=None) -> tuple[float, dict | None]:
    """C as given, or ("auto") chosen by `choose_C`, logged with its cross-validation table."""
    if C != "auto":
        return float(C), None
    best, acc = choose_C(feats, labels, num_classes, groups)
    table = ", ".join(f"{c:g}: {100 * a:.1f}" for c, a in acc.items())
    how = "subject-grouped" if groups is not None else "stratified"
    log.info("%s: C=%g by %s cross-validation on the train features (accuracy %%: %s)", what, best, how, table)
    return best, acc


def fit_linear(
    feats: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    epochs: int = 100,
    lr: float = 3.0,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    milestones=(80,),
    batch_size: int = 128,
    seed: int = 0,
    desc: str = "linear",
    probe: str = "logreg",
    C: float | str = 1.0,
) -> nn.Linear:
    """A linear classifier on fixed features.

    probe="logreg" (default): `fit_logreg`. probe="sgd": SkeletonCLR/AimCLR's linear evaluation
    as published (raw features, SGD lr 3.0, momentum 0.9, 100 epochs, x0.1 at 80): for
    comparing with their tables; it can fail silently when features are large or
    ill-conditioned (lr 3.0), which the train accuracy then shows.
    """
    if feats.shape[0] == 0:
        raise EvalError("no training features (is the train part of the split empty?)")
    if probe not in PROBES:
        raise EvalError(f"probe must be one of {PROBES}, got {probe!r}")
    if probe == "logreg":
        return fit_logreg(feats, labels, num_classes, C=resolve_C(feats, labels, num_classes, C, desc)[0])
    g = torch.Generator().manual_seed(seed)
    fc = nn.Linear(feats.shape[1], num_classes)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        fc.reset_parameters()
    opt, sched = sgd_schedule(fc.parameters(), lr, momentum, weight_decay, epochs, milestones)
    n = feats.shape[0]
    bar = tqdm(range(epochs), desc=desc, unit="epoch", leave=False, disable=None)
    for _ in bar:
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(fc(feats[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
    return fc.eval()


def train_accuracy(fc: nn.Linear, feats: torch.Tensor, labels: torch.Tensor, num_classes: int, what: str) -> float:
    """Top-1 of a fitted head on its own training features; warns when it is near chance (the
    features hold no class information, or the probe failed)."""
    with torch.no_grad():
        acc = float((fc(feats).argmax(1) == labels).float().mean()) if labels.numel() else 0.0
    chance = 1.0 / max(num_classes, 1)
    if acc < 2.0 * chance:
        log.warning(
            "%s: train accuracy %.1f%% is near chance (%.1f%%): the features carry little class information "
            "or the classifier failed to fit (with --probe sgd try the default logreg)",
            what,
            100 * acc,
            100 * chance,
        )
    return acc


def _neighbours(train: torch.Tensor, query: torch.Tensor, k: int, leave_out=None):
    """Chunks of (similarity, index) of the k most cosine-similar train features per query, best
    first. leave_out (query is train): a group per sample; a sample's own group is never its
    neighbour (leave-one-group-out; arange(n) leaves out the sample itself)."""
    a, b = F.normalize(train.float(), dim=1), F.normalize(query.float(), dim=1)
    k = min(k, a.shape[0])
    for i in range(0, b.shape[0], 1024):  # chunks keep the similarity matrix small
        sim = b[i : i + 1024] @ a.T
        if leave_out is not None:  # exp(-inf) = 0: a left-out sample never votes
            sim.masked_fill_(leave_out[i : i + 1024, None] == leave_out[None, :], -float("inf"))
        yield i, *sim.topk(k, dim=1)


def knn_scores(train: torch.Tensor, ytr: torch.Tensor, test: torch.Tensor, num_classes: int, k=20, tau=0.07):
    """Cosine k-NN class scores (N_test, C): votes of the k most similar train features,
    weighted by exp(similarity / tau) (Wu et al., 2018)."""
    out = torch.zeros(test.shape[0], num_classes)
    for i, sim, idx in _neighbours(train, test, k):
        out[i : i + sim.shape[0]].scatter_add_(1, ytr[idx], (sim / tau).exp())
    return out


def choose_k(train, ytr, num_classes, tau=0.07, groups=None, grid=K_GRID) -> tuple[int, dict[int, float]]:
    """k of the k-NN probe on the training features: the k whose votes classify each training
    sample best from the other subjects (groups; leave-one-subject-out, as the test part is other
    subjects) or, without groups, from every other sample (ties: the larger k, the smoother
    vote). Returns (k, {k: accuracy})."""
    grid = [k for k in grid if k < ytr.numel()] or [1]
    leave_out = groups if groups is not None and groups.unique().numel() >= 2 else torch.arange(ytr.numel())
    correct = dict.fromkeys(grid, 0)
    for i, sim, idx in _neighbours(train, train, max(grid), leave_out):
        weight, votes = (sim / tau).exp(), ytr[idx]
        for k in grid:
            scores = torch.zeros(sim.shape[0], num_classes).scatter_add_(1, votes[:, :k], weight[:, :k])
            correct[k] += int((scores.argmax(1) == ytr[i : i + sim.shape[0]]).sum())
    acc = {k: correct[k] / ytr.numel() for k in grid}
    best = max(acc.values())
    return max(k for k in grid if acc[k] == best), acc
