"""Metrics, plots (confusion matrix, t-SNE), score files and the JSON report of an evaluation."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("msclr.evaluate")


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    k = min(k, scores.shape[1])
    hit = (scores.topk(k, dim=1).indices == labels[:, None]).any(1)
    return float(hit.float().mean()) if labels.numel() else float("nan")


def confusion(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts: row = true class, column = prediction."""
    idx = labels.long() * num_classes + pred.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes).numpy()


def metrics(scores: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> dict:
    """top-1, top-5, per-class accuracy and the confusion matrix of class scores (N, C)."""
    scores, labels = scores.float(), labels.long()
    cm = confusion(scores.argmax(1), labels, len(class_names))
    support = cm.sum(1)
    per_class = {name: (float(cm[i, i] / support[i]) if support[i] else None) for i, name in enumerate(class_names)}
    return {
        "top1": topk_accuracy(scores, labels, 1),
        "top5": topk_accuracy(scores, labels, 5),
        "num_samples": int(labels.numel()),
        "per_class": per_class,
        "confusion": cm.tolist(),
    }


def save_scores(path: Path, sample_ids, scores: torch.Tensor, labels: torch.Tensor, class_names, **meta) -> Path:
    """Class scores per sample (.npz): what `evaluate fuse` combines across streams."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(
        tmp,
        sample_ids=np.asarray(list(sample_ids)),
        scores=scores.float().numpy(),
        labels=labels.numpy(),
        class_names=np.asarray(list(class_names)),
        meta=json.dumps(meta, default=str),
    )
    os.replace(tmp, path)
    return path


def load_scores(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"score file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in ("sample_ids", "scores", "labels", "class_names")}
    except KeyError as e:
        raise ValueError(f"{path}: not an msclr score file (missing field {e})") from e
    except Exception as e:
        raise ValueError(f"{path}: cannot read it as a score file ({e})") from e
    if d["scores"].ndim != 2 or d["scores"].shape[0] != d["sample_ids"].shape[0]:
        raise ValueError(f"{path}: field 'scores' has shape {d['scores'].shape}, expected (samples, classes)")
    return d


def write_json(path: Path, obj: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_jsonable))
    os.replace(tmp, path)
    return path


def _jsonable(x):
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    if isinstance(x, (np.ndarray, torch.Tensor)):
        return x.tolist()
    return str(x)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(cm: np.ndarray, class_names: list[str], path: Path, title: str) -> Path:
    """Row-normalised confusion matrix as a PNG."""
    plt = _pyplot()
    n = len(class_names)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    size = min(4 + 0.28 * n, 30)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


_MARKERS = "o^sDvP*Xh<>"


def plot_tsne(
    features: torch.Tensor,
    labels: torch.Tensor,
    conventions: list[str],
    class_names: list[str],
    path: Path,
    title: str,
    max_points: int = 3000,
    seed: int = 0,
) -> Path | None:
    """t-SNE of features coloured by class and marked by convention (one marker per convention).

    features / labels / conventions are per point (a sample in one convention is one point).
    At most max_points points (a seeded random subset) keep it to seconds.
    """
    from sklearn.manifold import TSNE

    n = features.shape[0]
    if n < 5:
        log.warning("t-SNE: only %d points, no plot", n)
        return None
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(n, max_points), replace=False))
    x = torch.nn.functional.normalize(features[rows].float(), dim=1).numpy()
    emb = TSNE(n_components=2, perplexity=min(30.0, (len(rows) - 1) / 3), init="pca", random_state=seed).fit_transform(
        x
    )
    lab = labels[rows].numpy()
    conv = np.asarray(conventions)[rows]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 8))
    cmap = plt.get_cmap("tab20" if len(class_names) <= 20 else "gist_ncar")
    colors = cmap(lab / max(len(class_names) - 1, 1))
    for i, name in enumerate(dict.fromkeys(conv)):
        sel = conv == name
        ax.scatter(emb[sel, 0], emb[sel, 1], c=colors[sel], marker=_MARKERS[i % len(_MARKERS)], s=14, label=name)
    leg = ax.legend(title="convention", loc="best", fontsize=8)
    for h in leg.legend_handles:  # the marker says the convention; grey, so no class colour is implied
        h.set_color("0.35")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
