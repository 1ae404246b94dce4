"""ADJIT_TIER (runtime/__init__.py): the interpreter tier, compiles in the worker process, and the
switch to native code. Each graph reads the mode on its first run, so every test makes new ones."""
from __future__ import annotations

import time

import numpy as np
import pytest

import adjit
import adjit.runtime as runtime
from adjit.runtime import background, cache
from adjit.runtime.call import CompiledGraph


_SHAPES = iter(range(3, 1000))


def _graph(scale):
    # a graph of its own per test (a batch size no other test uses), so no cache holds it
    f = adjit.value_and_grad(lambda w, x: np.sum(np.tanh(x @ w) ** 2) * scale)
    n = next(_SHAPES) + 97 * (id(_SHAPES) % 89)
    w, x = np.linspace(-1, 1, 12).reshape(4, 3), np.linspace(0, 2, 4 * n).reshape(n, 4)
    return adjit.make_ir(f)(w, x), [w, x]


def _want(g, args):
    from adjit.ir.graph import eval_graph
    return eval_graph(g, args)


def _close(a, b):
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)


def test_interp_tier_matches_and_compiles_nothing(monkeypatch):
    monkeypatch.setenv("ADJIT_TIER", "interp")
    g, args = _graph(1.25)
    before = dict(cache.STATS)
    for _ in range(30):
        _close(runtime.run_graph(g, args), _want(g, args))
    assert isinstance(g.native, runtime.Interpreted)
    assert cache.STATS["compiles"] == before["compiles"]
    assert cache.STATS["background_compiles"] == before["background_compiles"]


def test_deterministic_tier_switches_at_the_fixed_call(monkeypatch):
    monkeypatch.setenv("ADJIT_TIER", "deterministic")
    g, args = _graph(1.5)
    for k in range(1, runtime.HOT_CALLS):
        _close(runtime.run_graph(g, args), _want(g, args))
        assert isinstance(g.native, runtime.Interpreted), k
    _close(runtime.run_graph(g, args), _want(g, args))  # waits for the worker's code
    assert isinstance(g.native, CompiledGraph)


def _until_native(g, args, seconds=120):
    t0 = time.time()
    while not isinstance(g.native, CompiledGraph):
        assert time.time() - t0 < seconds, "never switched to native code"
        _close(runtime.run_graph(g, args), _want(g, args))  # every call answers meanwhile
        time.sleep(0.01)


def test_auto_tier_compiles_off_the_callers_path(monkeypatch):
    monkeypatch.setenv("ADJIT_TIER", "auto")
    g, args = _graph(1.75)
    before = cache.STATS["background_compiles"] + cache.STATS["disk_hits"]
    for _ in range(runtime.HOT_CALLS - 1):
        runtime.run_graph(g, args)
    assert isinstance(g.native, runtime.Interpreted)  # not hot yet: nothing asked for
    _until_native(g, args)
    _close(runtime.run_graph(g, args), _want(g, args))
    assert cache.STATS["background_compiles"] + cache.STATS["disk_hits"] > before


def test_a_killed_worker_is_restarted_and_calls_still_answer(monkeypatch):
    monkeypatch.setenv("ADJIT_TIER", "auto")
    comp = background.compiler()
    g, args = _graph(2.25)
    for _ in range(runtime.HOT_CALLS):
        runtime.run_graph(g, args)
    comp.kill()  # whatever it was compiling is lost
    started = comp.started
    _until_native(g, args)
    assert comp.started > started  # a new worker took the job the killed one lost


@pytest.mark.parametrize("mode", ["bogus"])
def test_an_unknown_tier_is_refused(monkeypatch, mode):
    monkeypatch.setenv("ADJIT_TIER", mode)
    with pytest.raises(ValueError, match="ADJIT_TIER"):
        runtime.tier_mode()


def test_the_worker_retires_after_its_compile_budget(monkeypatch):
    # LLVM's pass pipeline keeps ~80 KB per module in the process that runs it, so the worker
    # exits after ADJIT_WORKER_MAX_COMPILES compiles and the client starts a fresh one
    monkeypatch.setenv("ADJIT_TIER", "deterministic")
    monkeypatch.setenv("ADJIT_WORKER_MAX_COMPILES", "2")
    comp = background.compiler()
    comp.kill()  # the next worker starts with the budget above
    started = comp.started
    for scale in (3.25, 3.5, 3.75, 4.25, 4.5):
        g, args = _graph(scale)
        for _ in range(runtime.HOT_CALLS):
            _close(runtime.run_graph(g, args), _want(g, args))
        assert isinstance(g.native, CompiledGraph)
    assert comp.started >= started + 3  # 5 compiles, 2 per worker
    comp.kill()  # later tests get a worker with the default budget
