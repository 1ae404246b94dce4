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


def _state_behaviour(t):
    """get_state / set_state as torch.Generator's: a 1-D state of byte values (torch: uint8;
    adjit, without a uint8 dtype: int64), a new tensor each time, that
    set_state restores exactly (draws, half-used normal pairs, the initial seed), also into
    another generator; foreign or garbled states are refused with torch's exception types."""
    g = t.Generator().manual_seed(11)
    t.randn(3, generator=g)
    s = g.get_state()
    a = [t.randn(5, generator=g).tolist(), t.rand(2, generator=g).tolist()]
    g.manual_seed(99)
    t.rand(7, generator=g)
    g.set_state(s)
    b = [t.randn(5, generator=g).tolist(), t.rand(2, generator=g).tolist()]
    h = t.Generator().manual_seed(5)
    h.set_state(s)
    c = [t.randn(5, generator=h).tolist(), t.rand(2, generator=h).tolist()]
    out = [s.ndim, s.requires_grad, a == b == c, 0 <= int(s.min()) <= int(s.max()) <= 255,
           h.initial_seed(), g.get_state() is not g.get_state(),
           g.set_state(s) is None or g.set_state(s) is g]

    def refused(bad):
        try:
            g.set_state(bad)
        except Exception as exc:  # noqa: BLE001 - the type is what is compared
            return type(exc).__name__
        return "accepted"
    out += [refused(s.float()), refused(s.bool()), refused(s[:-1]), refused(s.tolist()),
            refused(np.asarray(s)), refused(t.zeros_like(s))]
    return out


def test_generator_state_round_trips_and_refuses_what_is_no_state_as_in_torch():
    torch = require("torch")
    assert _state_behaviour(adjit) == _state_behaviour(torch)


def test_a_torch_generator_state_is_refused_by_an_adjit_generator():
    torch = require("torch")
    foreign = adjit.tensor(torch.Generator().manual_seed(1).get_state().numpy().astype(np.int64))
    with pytest.raises(RuntimeError, match="size"):
        adjit.Generator().set_state(foreign)
    g = adjit.Generator().manual_seed(2)
    s = g.get_state()
    before = g.get_state().tolist()
    with pytest.raises(RuntimeError, match="Invalid"):
        g.set_state(adjit.tensor(np.roll(s.numpy(), 1)))
    garbled = s.clone()  # (torch takes any mt19937 state but all-zero; adjit checks its sum)
    garbled[len(s) // 2] = (int(garbled[len(s) // 2]) + 1) % 256
    for bad in (garbled, s + 256):  # one byte changed; no byte values
        with pytest.raises(RuntimeError, match="Invalid"):
            g.set_state(bad)
    assert g.get_state().tolist() == before  # a refused state changes nothing
    assert s.dtype == adjit.int64 and tuple(s.shape) == (len(s),)
