"""`make_synthetic_store`: generate a dataset and write it as a msclr store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..store import Store, StoreBuilder
from .actions import MAX_CLASSES
from .render import generate


def make_synthetic_store(
    out_dir: str | Path,
    num_samples: int = 1000,
    conventions: Sequence[str] | None = None,
    T: int = 64,
    seed: int = 0,
    num_classes: int = MAX_CLASSES,
    num_subjects: int = 10,
    train_subjects: Sequence[int] | None = None,
    overwrite: bool = True,
    durable: bool = False,
    normalize: bool = False,
    style: float = 0.0,
) -> Store:
    """Write a synthetic multi-skeleton store to `out_dir` and open it.

    conventions: None = every built-in convention. T: frames per sample (T_max; the valid
    length of each sample varies with its speed). Subjects are numbered 1..num_subjects;
    `train_subjects` (default: the first 70 %) train in the ``xsub`` split.
    durable=False skips fsync (the data can be regenerated from the seed); files are still
    replaced atomically. normalize: ST-GCN pre-normalised coordinates (as NTU after `prepare
    ntu`) instead of camera space. style: per-sample variation of the motion in [0, 1] (see
    `render._render_class`); 0 renders each class's template with the subject's amplitude and tempo.
    """
    g = generate(num_samples, conventions, T, seed, num_classes, num_subjects, normalize, style)
    if train_subjects is None:
        train_subjects = list(range(1, max(1, round(0.7 * num_subjects)) + 1))
    train_subjects = set(int(s) for s in train_subjects)
    sub_train = np.isin(g["subjects"], list(train_subjects))
    view_train = np.isin(g["cameras"], [2, 3])
    splits = {
        "xsub": {"train": np.flatnonzero(sub_train), "test": np.flatnonzero(~sub_train)},
        "xview": {"train": np.flatnonzero(view_train), "test": np.flatnonzero(~view_train)},
    }
    ids = [
        f"syn{i:06d}_s{s:02d}_c{c}_a{a:02d}"
        for i, (s, c, a) in enumerate(zip(g["subjects"], g["cameras"], g["labels"]))
    ]
    builder = StoreBuilder.create(
        out_dir,
        dataset="synthetic",
        sample_ids=ids,
        labels=g["labels"],
        num_classes=num_classes,
        class_names=g["class_names"],
        splits=splits,
        sample_info={"subject": g["subjects"], "camera": g["cameras"]},
        extra=dict(
            generator=dict(
                module="msclr.data.synthetic",
                num_samples=num_samples,
                T=T,
                seed=seed,
                num_classes=num_classes,
                num_subjects=num_subjects,
                train_subjects=sorted(train_subjects),
                normalize=normalize,
                style=style,
            ),
            coordinates="metres, ST-GCN pre-normalised (spine-centred per frame, spine +z, shoulders +x)"
            if normalize
            else "camera space, metres (x = camera's left, y = up, z = away from the camera)",
        ),
        overwrite=overwrite,
        durable=durable,
    )
    for conv, arr in g["data"].items():
        builder.add(
            conv,
            arr,
            g["lengths"],
            np.ones(num_samples, bool),
            unit="m",
            note="synthetic: rendered from one kinematic body through msclr.data.synthetic.JOINT_MAPS",
        )
    return builder.finish()


def synthetic_store_from_config(out_dir: str | Path, syn) -> Store:
    """The store a run's ``data.synthetic`` config section describes (train and evaluate both
    make it here, so a checkpoint's data is regenerated exactly). A checkpoint's config comes
    through msclr.config.from_checkpoint, which fills keys added since with the values that
    reproduce its run (style 0 before style existed)."""
    return make_synthetic_store(
        out_dir,
        num_samples=int(syn.num_samples),
        T=int(syn.frames),
        seed=int(syn.seed),
        normalize=bool(syn.normalize),
        style=float(syn.style),
    )
