"""Steady calls feed no generation of the cyclic GC: a jitted training step called in a loop
(W2's step written the JAX way: value_and_grad of a loss over a dict of parameters) leaves no
object tracked by the collector and makes no cyclic garbage, whichever tier serves it, so a
long loop never pays a full collection that its own calls caused. Values are checked against
NumPy's gradient by hand (the workload's reference)."""
from __future__ import annotations

import gc

import numpy as np
import pytest

import adjit
from adjit.bench.workloads import _mlp, w2_mlp_small


@pytest.mark.parametrize("tier", ["auto", "interp"])
def test_steady_jitted_step_leaves_no_tracked_object_and_no_cyclic_garbage(monkeypatch, tier):
    monkeypatch.setenv("ADJIT_TIER", tier)
    w = w2_mlp_small.workload()
    inp = w.inputs(0)
    run = _mlp.adjit_pytree_setup(inp)
    want = w.impls["numpy"](inp)()
    for _ in range(200):  # hot, compiled (auto) or generated (interp)
        run()
    adjit.runtime.wait_for_compiles()
    for _ in range(200):
        got = run()
    for g, r in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=2e-4, atol=1e-5)
    gc.collect()
    was = gc.isenabled()
    gc.disable()  # (this test only: so that no collection hides what the calls leave)
    try:
        before = len(gc.get_objects())
        for _ in range(2000):
            run()
        after = len(gc.get_objects())
        garbage = gc.collect()
    finally:
        if was:
            gc.enable()
    assert after <= before + 2, after - before  # (a frame's locals, at most)
    assert garbage == 0
