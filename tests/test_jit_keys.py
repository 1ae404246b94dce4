"""jit never replays a trace made for other values (issue 12): static arguments keyed by type
and bit pattern, float()/.item() guards on bit patterns, out-of-range negative indices, fresh
output arrays on every call of every tier, and errors that name the offending argument.
References are the same Python functions run on plain NumPy."""
from __future__ import annotations

import math

import numpy as np
import pytest

import adjit
from adjit import jit


# --- item 2: static arguments -------------------------------------------------------------------
def _by_type(x, s):
    """Depends on what `s` is, not only on `s == ...`: its type, the sign of a zero, nesting."""
    flat = s if isinstance(s, tuple) else (s,)
    tag = 0.0
    for v in flat:
        if isinstance(v, tuple):
            v = v[0]
        tag = tag * 10 + {bool: 1.0, int: 2.0, float: 3.0}.get(type(v), 4.0)
        tag += 0.5 * math.copysign(1.0, v) if not math.isnan(v) else 0.25
    return x + tag


STATICS = [1, 1.0, True, np.int64(1), np.float64(1.0), 0.0, -0.0, 0, False, float("nan"),
           (1, (2.0,)), (1, (2,)), (1.0, (2,)), (True, (-0.0,))]


@pytest.mark.filterwarnings("ignore:adjit.jit")
def test_static_args_keyed_by_type_and_bits():
    x = np.array([1.0, 2.0])
    jf = jit(_by_type, static_argnums=1)
    for s in STATICS + STATICS[::-1]:
        np.testing.assert_array_equal(jf(x, s), _by_type(x, s), err_msg=repr(s))
    # one trace per distinct (type, bits); a NaN matches itself instead of retracing every call
    assert jf.traces == len(STATICS)
    jf(x, float("nan"))
    assert jf.traces == len(STATICS)


def test_static_argnames_by_position_and_argnums_by_keyword():
    seen = []

    def f(x, s, t=1.0):
        seen.append((type(s), type(t)))
        return x * s + t

    x = np.array([1.0, -2.0])
    for jf, call in ((jit(f, static_argnames="s"), lambda jf, s: jf(x, s)),
                     (jit(f, static_argnums=1), lambda jf, s: jf(x, s=s)),
                     (jit(f, static_argnames=("s", "t")), lambda jf, s: jf(x, s, -0.0))):
        seen.clear()
        for s in (2.0, 3.0, 2.0):
            np.testing.assert_array_equal(call(jf, s), x * s + (1.0 if jf.static_argnames != (
                "s", "t") else -0.0))
        # static: the function saw the Python float itself, once per value
        assert [t for t, _ in seen] == [float, float], seen
        assert jf.traces == 2
    assert seen[-1][1] is float  # t static too, passed by position


# --- item 13: errors name the argument ------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.array(["a", "b"]), np.array([object()], dtype=object)])
def test_bad_dtype_error_names_the_argument(bad):
    def f(x, inputs):
        return x

    with pytest.raises(TypeError, match=r"argument 'inputs' \(position 1\).*dtype"):
        jit(f)(np.ones(2), bad)
    with pytest.raises(TypeError, match=r"argument 'inputs'.*dtype"):
        jit(f)(np.ones(2), inputs=[bad])
    with pytest.raises(TypeError, match=r"argument at position 2.*dtype"):
        jit(lambda *a: a[0])(np.ones(2), 1.0, bad)
    with pytest.raises(TypeError, match=r"grad: argument 'inputs' \(position 1\).*dtype"):
        adjit.grad(lambda x, inputs: np.sum(x))(np.ones(2), bad)
    with pytest.raises(TypeError, match=r"grad: argument 'inputs' \(position 0\).*dtype"):
        adjit.grad(lambda inputs: np.sum(inputs))(bad)
