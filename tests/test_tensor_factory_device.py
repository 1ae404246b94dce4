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
