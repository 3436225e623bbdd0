"""Validation splits: hold whole subjects of a split's train part out as a validation part.

Hyper-parameters (epochs, lr, pairing, the probe's settings, even the synthetic data's options)
must be chosen without looking at the test part. `add_validation_split` writes a new split
into meta.json whose ``train`` part is the source train part minus some subjects and whose
``test`` part is those subjects, so every command that takes ``data.split`` / ``--split``
(train, evaluate, reproduce) runs on it unchanged. Subjects are held out whole for the same
reason the cross-subject benchmark exists: one person's repetitions are near-duplicates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write_json
from .reader import META, open_store


def _held_out_subjects(subjects: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    unique = np.unique(subjects)
    if unique.size < 2:
        raise ValueError(f"the train part has {unique.size} subject(s); a validation split needs at least 2")
    count = min(unique.size - 1, max(1, round(fraction * unique.size)))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(unique, size=count, replace=False))


def add_validation_split(
    store_path: str | Path,
    source: str = "xsub",
    name: str | None = None,
    fraction: float = 0.2,
    subjects: list[int] | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Add split `name` (default '<source>_val') to the store: train = the source's train part
    without the held-out subjects, test = those subjects' samples of the source train part.

    subjects: the subjects to hold out (default: round(fraction * subjects) drawn with `seed`).
    Without per-sample subjects in the store, samples are held out at random instead.
    Returns a summary (name, subjects held out, part sizes)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    store = open_store(store_path)
    name = name or f"{source}_val"
    if name in store.splits and not overwrite:
        raise ValueError(f"{store.path / META}: split {name!r} exists (--overwrite replaces it)")
    if name == source:
        raise ValueError(f"the validation split must not replace its source split {source!r}")
    train = store.split(source, "train")
    subject_of = store.sample_info.get("subject")
    if subject_of is not None:
        train_subjects = np.asarray(subject_of)[train]
        if subjects is None:
            held = _held_out_subjects(train_subjects, fraction, seed)
        else:
            held = np.asarray(sorted(set(subjects)))
            missing = sorted(set(held.tolist()) - set(np.unique(train_subjects).tolist()))
            if missing:
                raise ValueError(f"subjects {missing} are not in the train part of split {source!r}")
        is_val = np.isin(train_subjects, held)
        if is_val.all():
            raise ValueError("holding out every subject leaves nothing to train on")
    else:
        if subjects is not None:
            raise ValueError(f"{store.path / META}: the store records no subjects to hold out")
        held = np.asarray([], dtype=np.int64)
        rng = np.random.default_rng(seed)
        is_val = np.zeros(train.size, dtype=bool)
        is_val[rng.choice(train.size, size=max(1, round(fraction * train.size)), replace=False)] = True
    meta = dict(store.meta)
    meta["splits"] = dict(meta.get("splits", {}))
    meta["splits"][name] = {"train": train[~is_val].tolist(), "test": train[is_val].tolist()}
    meta.setdefault("split_notes", {})[name] = (
        f"validation split of {source}: its train part with "
        + (f"subjects {held.tolist()} held out" if held.size else f"{int(is_val.sum())} random samples held out")
        + f" (seed {seed}); the {source} test part is in neither part"
    )
    atomic_write_json(store.path / META, meta)
    return {
        "name": name,
        "source": source,
        "held_out_subjects": held.tolist(),
        "train": int((~is_val).sum()),
        "test": int(is_val.sum()),
        "note": meta["split_notes"][name],
    }
