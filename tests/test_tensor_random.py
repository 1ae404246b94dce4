"""adjit.randn / adjit.rand honour generator= and device= as torch 2.13 does (they ignored both):
what is compared with PyTorch is behaviour (a generator's draws are reproducible and leave the
global stream alone; which devices are accepted; the exception types), not the random bits,
which are NumPy's."""
from __future__ import annotations

import numpy as np
import pytest

import adjit

try:
    from tests.peers import require
except ImportError:
    from peers import require


def _behaviour(t, fn):
    """What a generator does to the draws of `fn` (torch or adjit): reseeding repeats them, the
    module's own stream does not move, two generators with one seed agree."""
    f = getattr(t, fn)
    g = t.Generator().manual_seed(7)
    a = f(4, generator=g)
    b = f(4, generator=g)
    g.manual_seed(7)
    c = f(4, generator=g)
    t.manual_seed(3)
    x1 = f(4)
    t.manual_seed(3)
    f(4, generator=g)
    x2 = f(4)
    h = t.Generator().manual_seed(7)
    same = [a.tolist() == c.tolist(), a.tolist() == b.tolist(), x1.tolist() == x2.tolist(),
            f(4, generator=h).tolist() == a.tolist()]
    return same + [g.initial_seed(), tuple(a.shape),
            str(a.dtype).replace("torch.", "").replace("adjit.", "")]


@pytest.mark.parametrize("fn", ["randn", "rand"])
def test_generator_is_honoured_as_in_torch(fn):
    torch = require("torch")
    assert _behaviour(adjit, fn) == _behaviour(torch, fn)


def _outcome(t, fn, **kw):
    try:
        r = getattr(t, fn)(2, 3, **kw)
    except Exception as exc:  # noqa: BLE001 - the type is what is compared
        return type(exc).__name__
    return str(r.device)


DEVICES = [None, "cpu", "cpu:0", "cuda", "cuda:0", "xyz", "CPU", 0, 1.5]


@pytest.mark.parametrize("fn", ["randn", "rand"])
@pytest.mark.parametrize("device", DEVICES, ids=repr)
def test_device_accepted_or_refused_as_in_torch(fn, device):
    torch = require("torch")
    assert _outcome(adjit, fn, device=device) == _outcome(torch, fn, device=device)


@pytest.mark.parametrize("fn", ["randn", "rand"])
def test_devices_torch_has_and_adjit_has_not_are_refused(fn):
    torch = require("torch")
    assert str(getattr(torch, fn)(2, device=torch.device("cpu")).device) == "cpu"
    assert str(getattr(adjit, fn)(2, device=torch.device("cpu")).device) == "cpu"
    for d in ("meta", "mps"):  # PyTorch has these device types; adjit refuses, not ignores
        with pytest.raises(RuntimeError, match="live on the CPU"):
            getattr(adjit, fn)(2, device=d)


@pytest.mark.parametrize("fn", ["randn", "rand"])
def test_wrong_generator_type_is_refused_as_in_torch(fn):
    torch = require("torch")
    for bad in (5, "seed"):
        with pytest.raises(TypeError):
            getattr(torch, fn)(2, generator=bad)
        with pytest.raises(TypeError, match="generator"):
            getattr(adjit, fn)(2, generator=bad)
    for d in ("cuda", "xyz"):
        with pytest.raises(RuntimeError):
            torch.Generator(device=d)
        with pytest.raises((RuntimeError, AssertionError)):
            adjit.Generator(device=d)


def test_a_generator_drawn_from_in_jit_is_seen_as_a_random_source():
    # a draw while jit traces is a constant of the trace: jit warns about an adjit.Generator
    # in the closure as it does about a NumPy one
    g = adjit.Generator().manual_seed(0)

    def f(x):
        return x + adjit.randn(3, dtype=adjit.float64, generator=g).numpy()
    with pytest.warns(RuntimeWarning, match="random|generator|draw"):
        adjit.jit(f)(np.zeros(3))
