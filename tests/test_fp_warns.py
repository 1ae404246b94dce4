"""Primitive.fp_warns (issue 13): only primitives whose NumPy implementation can report
overflow/invalid/divide pay for quieting NumPy's floating-point warnings on the eager path."""
from __future__ import annotations


import numpy as np
import pytest

import adjit
from adjit._fp import FP_QUIET, FP_STATE
from adjit.ir.core import REGISTRY, Primitive, registered, bind
from adjit.ir.types import AType

_SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308, 5e-324, 3.4e38, -3.4e38,
            1.4e-45, 1.0, -1.0, 2.0 ** 31, -(2.0 ** 63)]


def _variants(args):
    """The sample's arguments with every float array filled with each special value (all
    pairs for two float operands)."""
    import itertools
    fl = [isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in args]
    out = []
    with np.errstate(all="ignore"):  # f64 specials beyond f32's range become inf
        for combo in itertools.product(_SPECIAL, repeat=min(sum(fl), 2)):
            it = iter(combo)
            out.append([np.full_like(a, next(it, 1.0)) if f else a for a, f in zip(args, fl)])
    return out


@pytest.mark.parametrize("name", sorted(n for n, p in REGISTRY.items() if not p.fp_warns))
def test_primitives_that_claim_no_fp_reports_make_none(name):
    """A record with fp_warns=False runs its NumPy impl without quieting: NumPy must have
    nothing to report for any sample at nan, inf, zero, huge and tiny values."""
    p = REGISTRY[name]
    rng = np.random.default_rng(0)
    n = 0
    for dt in p.dtypes:
        for args, params in p.samples(dt, rng):
            args = [np.asarray(a) for a in args]
            for v in _variants(args):
                with np.errstate(all="raise"):
                    p.impl(*v, **params)
                n += 1
    assert n


def _probe(fp_warns):
    seen = []

    def impl(x):
        seen.append(FP_STATE.get() is FP_QUIET)
        return np.log(x)
    return Primitive(f"fp_probe_{fp_warns}", lambda x: AType(x.shape, x.dtype), impl,
                     kind="unary", fp_warns=fp_warns), seen


def test_only_primitives_that_can_report_pay_for_quieting():
    import warnings
    x = adjit.tensor([-1.0, 2.0], requires_grad=True)
    for fp_warns in (True, False):
        prim, seen = _probe(fp_warns)
        with registered(prim):
            with warnings.catch_warnings(record=True) as ws, np.errstate(all="warn"):
                warnings.simplefilter("always")  # (NumPy's own state made explicit too)
                bind(prim, np.array([-1.0, 2.0]))  # not recorded
                bind(prim, x._n)                   # recorded on the tape
        assert seen == [fp_warns, fp_warns]
        # the claim decides: NumPy's report of log(-1) is silenced only where declared
        assert [str(w.message) for w in ws] == ([] if fp_warns else
                                                ["invalid value encountered in log"] * 2)
