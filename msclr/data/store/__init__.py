"""The multi-skeleton store: one directory per dataset (docs/architecture.md section 6).

Layout of a store directory::

    meta.json                   everything small: format version, dataset name, sample ids,
                                labels, class names, per-sample info (subject, camera, ...),
                                splits, and one entry per convention
    <conv>.npy                  float32 (N, C, T_max, V_l, M), memory-mappable
    <conv>.lengths.npy          int32 (N,): valid frames of each sample in that convention
    <conv>.available.npy        bool (N,): False where the convention is missing for a sample
    conventions/<conv>.json     only for conventions that msclr.skeletons does not know
                                (user-defined or derived ones); `open_store` registers them

Every convention array is aligned by sample index (row i of every array is sample_ids[i]).
A convention entry in meta.json says its unit, channels and, for derived conventions,
``derived_from`` (the source convention) and ``derivation`` (the joint map used).

Every file is written atomically (a temporary file in the same directory, then
`os.replace`), and meta.json is written last, so a store is either complete or not
opened at all. `StoreBuilder` writes a new store or adds conventions to an existing one.

Modules: reader (Store, open_store), builder (StoreBuilder), atomic (the atomic writes),
splits (add_validation_split: hold subjects out of a train part to choose settings on).
"""

from .atomic import AtomicArray, atomic_save_npy, atomic_write_bytes, atomic_write_json
from .builder import StoreBuilder, valid_lengths
from .reader import FORMAT, FORMAT_VERSION, META, Store, StoreError, is_store, open_store
from .splits import add_validation_split

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "META",
    "AtomicArray",
    "Store",
    "StoreBuilder",
    "StoreError",
    "add_validation_split",
    "atomic_save_npy",
    "atomic_write_bytes",
    "atomic_write_json",
    "is_store",
    "open_store",
    "valid_lengths",
]
