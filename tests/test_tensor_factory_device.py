"""Every tensor factory honours or refuses `device=` as torch 2.13's CPU build does (only randn
and rand checked it; zeros, ones, full, empty, arange, linspace, eye, tensor, ..._like ignored
it): 'cpu', 'cpu:0' and a CPU device object are accepted and give a CPU tensor; CUDA, an unknown
name, an accelerator index and a wrong type are refused with PyTorch's exception type; a device
type PyTorch knows but adjit has not ('meta', 'mps') is refused, not ignored."""
from __future__ import annotations

import pytest

import adjit

from peers import require

torch = require("torch")

FACTORIES = {
    "zeros": lambda m, **k: m.zeros(2, 3, **k),
    "ones": lambda m, **k: m.ones(2, 3, **k),
    "empty": lambda m, **k: m.empty(2, 3, **k),
    "full": lambda m, **k: m.full((2, 3), 1.5, **k),
    "arange": lambda m, **k: m.arange(5, **k),
    "linspace": lambda m, **k: m.linspace(0.0, 1.0, 5, **k),
    "eye": lambda m, **k: m.eye(3, **k),
    "tensor": lambda m, **k: m.tensor([1.0, 2.0], **k),
    "as_tensor": lambda m, **k: m.as_tensor([1.0, 2.0], **k),
    "randint": lambda m, **k: m.randint(0, 5, (3,), **k),
    "zeros_like": lambda m, **k: m.zeros_like(m.ones(2), **k),
    "ones_like": lambda m, **k: m.ones_like(m.ones(2), **k),
    "full_like": lambda m, **k: m.full_like(m.ones(2), 3.0, **k),
    "randn_like": lambda m, **k: m.randn_like(m.ones(2), **k),
    "rand_like": lambda m, **k: m.rand_like(m.ones(2), **k),
    "empty_like": lambda m, **k: m.empty_like(m.ones(2), **k),
    "new_zeros": lambda m, **k: m.ones(2).new_zeros(3, **k),
}
DEVICES = [None, "cpu", "cpu:0", "cuda", "cuda:0", "xyz", 0, 1.5]


def _outcome(lib, name, **kw):
    try:
        r = FACTORIES[name](lib, **kw)
    except Exception as exc:  # noqa: BLE001 - the type is what is compared
        return type(exc).__name__
    return str(r.device), tuple(r.shape)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_device_accepted_or_refused_as_in_torch(name):
    for device in DEVICES:
        assert _outcome(adjit, name, device=device) == _outcome(torch, name, device=device), \
            device
    cpu = torch.device("cpu")
    assert _outcome(adjit, name, device=cpu) == _outcome(torch, name, device=cpu)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_devices_torch_has_and_adjit_has_not_are_refused(name):
    assert str(FACTORIES[name](torch, device="meta").device) == "meta"
    for d in ("meta", "mps"):
        with pytest.raises(RuntimeError, match="live on the CPU"):
            FACTORIES[name](adjit, device=d)


def test_pin_memory_is_refused_as_in_torch():
    # a CPU-only build has no pinned memory: PyTorch refuses pin_memory=True (adjit ignored it)
    for lib in (torch, adjit):
        assert lib.tensor([1.0], pin_memory=False).tolist() == [1.0]
    with pytest.raises(RuntimeError) as want:
        torch.tensor([1.0], pin_memory=True)
    with pytest.raises(RuntimeError) as got:
        adjit.tensor([1.0], pin_memory=True)
    assert str(got.value) == str(want.value)


LIKE = {
    "randn_like": lambda m, t, **k: m.randn_like(t, **k),
    "rand_like": lambda m, t, **k: m.rand_like(t, **k),
    "empty_like": lambda m, t, **k: m.empty_like(t, **k),
    "zeros_like": lambda m, t, **k: m.zeros_like(t, **k),
}


def _like_outcome(lib, name, src, **kw):
    t = lib.ones(2, 3, dtype=src)
    try:
        r = LIKE[name](lib, t, **kw)
    except Exception as exc:  # noqa: BLE001 - the type and message are what is compared
        return type(exc).__name__, str(exc)
    return str(r.dtype).split(".")[-1], tuple(r.shape), r.requires_grad


@pytest.mark.parametrize("name", sorted(LIKE))
def test_like_factories_take_dtype_and_requires_grad_as_torch(name):
    for src in ("float32", "float64", "int64", "bool"):
        for kw in ({}, {"dtype": "float64"}, {"dtype": "int32"}, {"requires_grad": True},
                   {"dtype": "float32", "requires_grad": True}):
            k = {a: (getattr(torch, v) if a == "dtype" else v) for a, v in kw.items()}
            ka = {a: (getattr(adjit, v) if a == "dtype" else v) for a, v in kw.items()}
            want = _like_outcome(torch, name, getattr(torch, src), **k)
            got = _like_outcome(adjit, name, getattr(adjit, src if src != "bool" else "bool_"),
                                **ka)
            assert got == want, (src, kw)


@pytest.mark.parametrize("name", ["randn_like", "rand_like"])
def test_random_like_factories_take_a_generator(name):
    g = adjit.Generator().manual_seed(5)
    a = LIKE[name](adjit, adjit.ones(3), generator=g)
    b = LIKE[name](adjit, adjit.ones(3), generator=adjit.Generator().manual_seed(5))
    assert a.tolist() == b.tolist()
    assert LIKE[name](adjit, adjit.ones(3), generator=g).tolist() != a.tolist()
    if name == "rand_like":
        assert all(0.0 <= v < 1.0 for v in a.tolist())


@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_generator_copies_are_independent_with_the_same_state_as_torch(how):
    import copy
    import pickle
    dup = {"copy": copy.copy, "deepcopy": copy.deepcopy,
           "pickle": lambda g: pickle.loads(pickle.dumps(g))}[how]
    for lib in (torch, adjit):
        g = lib.Generator().manual_seed(3)
        lib.randn(2, generator=g)
        h = dup(g)
        assert type(h) is type(g) and h is not g and h.initial_seed() == 3
        ahead = lib.randn(4, generator=g).tolist()  # g moves on; h does not
        assert lib.randn(4, generator=h).tolist() == ahead, lib.__name__
