"""Data: the multi-skeleton store, readers/importers, derived and synthetic conventions, Dataset.

>>> from msclr.data import open_store, MultiSkeletonDataset
>>> from msclr.data.synthetic import make_synthetic_store
>>> store = make_synthetic_store("/tmp/syn", num_samples=64, T=32)    # doctest: +SKIP
>>> store.array("ntu25").shape                                       # doctest: +SKIP
(64, 3, 32, 25, 2)
"""

from .dataset import MultiSkeletonDataset, NonFiniteSampleError
from .store import Store, StoreBuilder, StoreError, is_store, open_store

__all__ = [
    "MultiSkeletonDataset",
    "NonFiniteSampleError",
    "Store",
    "StoreBuilder",
    "StoreError",
    "is_store",
    "open_store",
]
