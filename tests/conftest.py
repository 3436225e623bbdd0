"""Fixtures and collection rules of the test suite; the plain functions they use are in helpers.py.

Markers (pyproject.toml): `gpu` tests skip without a CUDA GPU; `slow` tests run by default and
`pytest -m "not slow"` leaves them out (a quick run of the rest).
"""

from __future__ import annotations

import pytest
from helpers import FUSED_CASES, GPU, need_backend


def pytest_collection_modifyitems(config, items):
    if GPU:
        return
    no_gpu = pytest.mark.skip(reason="no CUDA GPU on this machine")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(no_gpu)


@pytest.fixture(params=FUSED_CASES)
def fused_backend(request):
    """(backend, device) for each fused backend; skips, with the reason, where it cannot run here.

    A test module's OPS (op names of msclr.ops.IMPLEMENTED) must be implemented by the backend too.
    """
    backend, device = request.param
    need_backend(backend, device, getattr(request.module, "OPS", ()))
    return backend, device
