"""NaN and inf in infonce_queue: the fused CPU kernel gives what the reference gives.

A NaN or inf in a query, a key or the queue must reach the loss (NaN in, NaN out; +inf logits give
an infinite log-sum-exp), so that the trainer sees it and stops, instead of a finite loss computed
from a queue it silently skipped (before: one NaN in the queue gave loss 0 and lse -inf).
"""

from __future__ import annotations

import pytest
import torch
from helpers import infonce_problem, needs_backend

from msclr.ops import infonce as nce_mod

N, P, Q, D = 5, 2, 300, 16  # 300 queue rows: two tiles, so the running max crosses a tile boundary

pytestmark = needs_backend("cpu", "cpu", "infonce_queue")


def inputs(dtype):
    return dict(zip(("q", "k", "queue", "q2"), infonce_problem(N, P, Q, D, dtype=dtype)))


def outputs(name, x, valid, q2):
    op = nce_mod._FORWARD[name]
    losses, lse, _, div, dq, dq2 = op(
        x["q"], x["k"], x["queue"], torch.tensor(valid), 0.1, 0, x["q2"] if q2 else None, True
    )
    return {"losses": losses, "lse": lse, "div": div, "dq": dq, "dq2": dq2}


def assert_same(got, want):
    for key in ("losses", "lse", "div"):
        a, b = got[key], want[key]
        assert torch.equal(a.isnan(), b.isnan()), (key, a, b)
        assert torch.equal(a.isposinf(), b.isposinf()) and torch.equal(a.isneginf(), b.isneginf()), (key, a, b)
        fin = a.isfinite()
        torch.testing.assert_close(a[fin], b[fin], rtol=1e-4, atol=1e-4, msg=key)
    for key in ("dq", "dq2"):  # which rows of the gradient are usable
        if want[key].numel():
            assert torch.equal(got[key].isfinite().all(1), want[key].isfinite().all(1)), (key, got[key], want[key])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("where", ["q", "k", "queue", "queue_first", "q2"])
@pytest.mark.parametrize("q2", [False, True], ids=["loss", "loss+divergence"])
def test_nonfinite_input_gives_what_the_reference_gives(where, value, dtype, q2):
    if where == "q2" and not q2:
        pytest.skip("q2 is only read with the divergence")
    x = inputs(dtype)
    if where == "queue":
        x["queue"][257, 3] = value  # in the second tile
    elif where == "queue_first":
        x["queue"][0, 5] = value  # the first row seen: the running max starts from it
    elif where == "k":
        x["k"][1, 0, 3] = value
    else:
        x[where][1, 3] = value
    got, want = outputs("cpu", x, Q, q2), outputs("reference", x, Q, q2)
    assert_same(got, want)


def test_nan_in_the_queue_is_nan_not_a_zero_loss():
    """The issue's case: before, loss 0.0 and lse -inf for every query."""
    x = inputs(torch.float32)
    x["queue"][10, 0] = float("nan")
    got = outputs("cpu", x, Q, False)
    assert got["losses"].isnan().all() and got["lse"].isnan().all()


def test_nonfinite_rows_beyond_the_filled_part_are_ignored():
    x = inputs(torch.float32)
    x["queue"][250:, 0] = float("nan")  # not yet filled: never read
    x["queue"][249, 1] = float("-inf")
    got, want = outputs("cpu", x, 250, True), outputs("reference", x, 250, True)
    assert_same(got, want)
    assert got["losses"].isfinite().any()


def test_every_logit_minus_inf_gives_the_empty_queue_values():
    """A queue whose every valid logit is -inf for a query is an empty queue for it (lse -inf, loss 0)."""
    x = inputs(torch.float64)
    x["q"] = torch.zeros(N, D, dtype=torch.float64)
    x["q"][:, 0] = 1.0
    x["queue"][:, 0] = float("-inf")
    got, want = outputs("cpu", x, Q, False), outputs("reference", x, Q, False)
    assert_same(got, want)
    assert got["lse"].isneginf().all()
