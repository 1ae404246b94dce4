"""jit's public statistics and its retrace warning (once, with the reason)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import adjit


@pytest.mark.usefixtures("native_tier")  # checks native code itself
def test_stats_count_hits_misses_and_retraces():
    @adjit.jit
    def f(x):
        return np.sum(np.exp(x))

    x = np.ones(3)
    for _ in range(5):
        f(x)
    f(np.ones(4))
    s = f.stats()
    assert s["misses"] == 2 and s["hits"] == 4 and s["retraces"] == 1 and s["variants"] == 2
    assert s["compile_seconds"] > 0


def test_retrace_warning_names_the_changed_argument_once():
    @adjit.jit
    def f(x):
        return np.sum(x * 2)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, 15):
            f(np.ones(n))
    msgs = [str(w.message) for w in caught if "traced" in str(w.message)]
    assert len(msgs) == 1
    assert "argument 'x' (position 0) changed from f64[8] to f64[9]" in msgs[0]


def test_retrace_warning_names_the_guard():
    @adjit.jit
    def f(x):
        k = int(np.sum(x))       # reading a value records a guard on it
        return x * k

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(12):
            np.testing.assert_array_equal(f(np.full(2, float(i))), np.full(2, 2.0 * i * i))
    msgs = [str(w.message) for w in caught if "traced" in str(w.message)]
    assert len(msgs) == 1, msgs
    assert "a guard failed (recorded at test_jit_stats.py:" in msgs[0]


def test_tracebacks_end_at_the_users_line_without_adjit_frames():
    import traceback

    from adjit._frames import is_adjit_file

    def f(x):
        return np.sum(x @ np.ones((4, 2)))   # the bad line

    for fn in (adjit.grad(f), adjit.jit(f), adjit.value_and_grad(f)):
        try:
            fn(np.ones((3, 3)))
        except ValueError as exc:
            frames = traceback.extract_tb(exc.__traceback__)
            inner = [fr for fr in frames if is_adjit_file(fr.filename)]
            assert frames[-1].line.endswith("# the bad line")
            assert len(inner) <= 1, inner  # at most the boundary that re-raised
            assert "(3, 3)" in str(exc) and "(4, 2)" in str(exc)
        else:
            raise AssertionError("no error")
