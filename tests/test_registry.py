"""The registry sweep: every primitive x dtype x sample from its own record (never a hand list).

For each case: (a) the shape rule agrees with the NumPy impl; (e) the one-equation graph and
every graph derived from it verify and survive print -> parse -> print; for float dtypes with a
vjp rule: (b) vjp by the inner-product identity <J t, c> = <t, J^T c> against jvp, (c) jvp
against central differences, (d) for smooth primitives, the vjp of the vjp graph against central
differences of the first derivative. Derivative values are checked in f64 only (f32 differences
are too noisy); f32 cases check that derived graphs evaluate to the dtypes they declare.
"""
from __future__ import annotations


import numpy as np
import pytest

import sweep

from adjit.ir import REGISTRY, AType, bind, eval_graph, parse_graph, print_graph
from adjit.ir import verify
from adjit.ir.autodiff import jvp_graph, vjp_graph
from adjit.ir.core import Lit

FLOAT_DTYPES = ("f32", "f64")
EPS = 1e-6  # central differences in f64: truncation ~eps^2, rounding ~1e-16/eps




CASES = list(sweep.cases())
# derivative values need a float dtype and a vjp rule; second derivatives a smooth primitive
DIFF_CASES = [c for c in CASES if c.values[1] in FLOAT_DTYPES and REGISTRY[c.values[0]].vjp]
SMOOTH_CASES = [c for c in DIFF_CASES if REGISTRY[c.values[0]].smooth]



def _check_text(g):
    """(e): verifies, and print -> parse -> print is the identity (with locations)."""
    verify(g)
    text = print_graph(g, locations=True)
    back = parse_graph(text)
    verify(back)
    assert print_graph(back, locations=True) == text


def _check_types(g, outs):
    # a derived graph must compute what it declares (catches f32 rules that promote to f64)
    for v, o in zip(g.outvars, outs):
        o = np.asarray(o)
        assert AType(o.shape, o.dtype) == v.type, f"{g.name}: declared {v.type}, got " \
            f"{o.dtype}{list(o.shape)}"


def _vdot(xs, ys):
    return sum(float(np.vdot(np.asarray(x, np.float64), np.asarray(y, np.float64)))
               for x, y in zip(xs, ys))


def _close(a, b, what, rtol=1e-5, atol=1e-6):
    assert abs(a - b) <= atol + rtol * max(abs(a), abs(b)), f"{what}: {a!r} vs {b!r}"


def _float_slots(args):
    return [k for k, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]


def _shifted(arrays, slots, direction, h):
    out = list(arrays)
    for k, t in zip(slots, direction):
        out[k] = arrays[k] + h * t
    return out


# ------------------------------------------------------------------------------------ tests

@pytest.mark.parametrize("name,dt,i", CASES)
def test_shape_rule_and_text(name, dt, i):
    """(a) the shape rule matches the impl's output; (e) the graph verifies and round-trips."""
    prim = REGISTRY[name]
    args, params = sweep.sample(name, dt, i)
    ref = bind(prim, *args, **params)  # no trace active: the NumPy reference
    g = sweep.one_eqn(prim, args, params)
    _check_text(g)
    if name == "guard":
        assert ref is None and g.eqns[0].outvars == []
        return
    refs = ref if prim.nout != 1 else (ref,)  # several results: a tuple
    assert len(refs) == prim.nout == len(g.outvars) == len(g.eqns[0].outvars)
    gots = eval_graph(g, [a for a in args if isinstance(a, np.ndarray)])
    for v, got, ref in zip(g.outvars, gots, refs):
        assert type(ref) is np.ndarray, f"{name}: impl returned {type(ref).__name__}"
        assert v.type == AType(ref.shape, ref.dtype)
        np.testing.assert_array_equal(got, ref)


def _diff_case(name, dt, i):
    prim = REGISTRY[name]
    args, params = sweep.sample(name, dt, i)
    g = sweep.one_eqn(prim, args, params)
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    return prim, g, arrays, _float_slots(arrays)


def _ad_graphs(g, slots):
    vg = vjp_graph(g, wrt=slots)
    jg = jvp_graph(g)
    for d in (vg, jg):
        _check_text(d)
    return vg, jg


def _refuses_jvp(prim):
    """custom_vjp_call: a reverse-mode rule only; forward mode raises instead of guessing."""
    return getattr(prim.jvp, "refuses", False)


def _check_vjp_by_differences(name, g, vg, arrays, slots, t, rng):
    y = eval_graph(g, arrays)[0]
    c = rng.standard_normal(np.shape(y)).astype(y.dtype)
    vouts = eval_graph(vg, arrays + [c])
    _check_types(vg, vouts)
    np.testing.assert_array_equal(vouts[0], y)
    plus = eval_graph(g, _shifted(arrays, slots, t, EPS))[0]
    minus = eval_graph(g, _shifted(arrays, slots, t, -EPS))[0]
    _close(_vdot([(plus - minus) / (2 * EPS)], [c]), _vdot(t, vouts[1:]),
           f"{name}: <t, J^T c> vs differences", 1e-5, 1e-6)


@pytest.mark.parametrize("name,dt,i", DIFF_CASES)
def test_vjp_jvp(name, dt, i):
    """(b) <J t, c> = <t, J^T c>; (c) jvp == central differences; (e) on both graphs."""
    prim, g, arrays, slots = _diff_case(name, dt, i)
    rng = sweep.rng(name, dt, i, "dirs")
    if _refuses_jvp(prim):
        with pytest.raises(TypeError, match="forward-mode"):
            jvp_graph(g)
        vg = vjp_graph(g, wrt=slots)
        _check_text(vg)
        t = [rng.standard_normal(arrays[k].shape).astype(arrays[k].dtype) for k in slots]
        if dt == "f64":
            _check_vjp_by_differences(name, g, vg, arrays, slots, t, rng)
        return
    vg, jg = _ad_graphs(g, slots)
    t = [rng.standard_normal(arrays[k].shape).astype(arrays[k].dtype) for k in slots]
    tans = [np.zeros_like(a) for a in arrays]
    for k, tk in zip(slots, t):
        tans[k] = tk
    outs = eval_graph(jg, arrays + tans)
    _check_types(jg, outs)
    nout = len(g.outvars)  # one per result of the primitive
    ys, tys = outs[:nout], outs[nout:]
    cs = [rng.standard_normal(np.shape(y)).astype(y.dtype) for y in ys]
    vouts = eval_graph(vg, arrays + cs)
    _check_types(vg, vouts)
    for vo, y in zip(vouts, ys):
        np.testing.assert_array_equal(vo, y)
    if dt != "f64":
        return
    y = ys[0]
    # an f64 sample may still have an f32 output (convert_element_type): looser there
    eps, tol = (EPS, 1e-5) if y.dtype == np.float64 else (1e-2, 1e-3)
    # both sides are exact up to rounding: a tight tolerance catches a slightly wrong vjp
    ip_tol = 1e-9 if y.dtype == np.float64 else 1e-5
    _close(_vdot(tys, cs), _vdot(t, vouts[nout:]), f"{name}: <J t, c> vs <t, J^T c>", ip_tol,
           ip_tol)
    if _declares_no_derivative(prim, g, arrays):
        return  # stop_gradient: the identity whose derivative is zero by decree, not by limit
    plus = eval_graph(g, _shifted(arrays, slots, t, eps))
    minus = eval_graph(g, _shifted(arrays, slots, t, -eps))
    for ty, p_, m_ in zip(tys, plus, minus):
        np.testing.assert_allclose(ty, (p_ - m_) / (2 * eps), rtol=tol, atol=tol,
                                   err_msg=f"{name}: jvp vs central differences")


def _declares_no_derivative(prim, g, arrays):
    e = g.eqns[0]
    ins = [x.value if isinstance(x, Lit) else arrays[g.invars.index(x)]
           for x in e.inputs]
    outs = eval_graph(g, arrays)
    if prim.nout != 1:
        out, ct = tuple(outs), tuple(np.ones_like(o) for o in outs)
    else:
        out = outs[0]
        ct = np.ones_like(out)
    return all(c is None for c in prim.vjp(ct, *ins, out=out, **e.params))


@pytest.mark.parametrize("name,dt,i", SMOOTH_CASES)
def test_second_order(name, dt, i):
    """(d) smooth primitives: the vjp of the vjp graph against differences of the vjp."""
    prim, g, arrays, slots = _diff_case(name, dt, i)
    vg = vjp_graph(g, wrt=slots)
    # F(x) = <J^T(x) c, w>; its gradient is the vjp of vg with cotangents (0 for y, w for grads)
    vvg = vjp_graph(vg, wrt=slots)
    _check_text(vvg)
    # forward over reverse: vg holds no custom_vjp_call (its value comes from fwd, as in JAX)
    _check_text(jvp_graph(vg))
    rng = sweep.rng(name, dt, i, "second")
    ys = eval_graph(g, arrays)
    nout = len(ys)
    cs = [rng.standard_normal(np.shape(y)).astype(y.dtype) for y in ys]
    w = [rng.standard_normal(arrays[k].shape).astype(arrays[k].dtype) for k in slots]
    t = [rng.standard_normal(arrays[k].shape).astype(arrays[k].dtype) for k in slots]
    outs = eval_graph(vvg, arrays + cs + [np.zeros_like(y) for y in ys] + w)
    _check_types(vvg, outs)
    if dt != "f64":
        return
    n_out = len(vg.outvars)
    grad2 = outs[n_out:]

    def f(xs):
        return _vdot(eval_graph(vg, xs + cs)[nout:], w)

    fd = (f(_shifted(arrays, slots, t, EPS)) - f(_shifted(arrays, slots, t, -EPS))) / (2 * EPS)
    _close(_vdot(t, grad2), fd, f"{name}: second derivative vs differences", rtol=1e-4)


def test_every_primitive_is_swept():
    # a primitive the sweep cannot reach would pass silently; its absence from CASES is a bug
    swept = {p.values[0] for p in CASES}
    assert swept == set(REGISTRY)
