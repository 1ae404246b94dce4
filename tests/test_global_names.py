"""live._global_names reads the globals, global stores and `glob.attr` / `cell.attr` reads of
a function off its raw bytecode (issue 18: dis.get_instructions cost ~0.5 ms per new traced
function). It must give what a dis-based scan gives, for every kind of code."""
from __future__ import annotations

import dis
import types

import numpy as np
import pytest

import adjit
from adjit.transforms import live


# The reference: live's dis route (dis's decoded instructions, EXTENDED_ARG a prefix), a path
# independent of the raw-bytecode scan it checks.
_by_dis = live._global_names_dis


CFG = types.SimpleNamespace(lr=0.5, beta=2.0)
COUNT = 0


def _many_names(n):
    """Source of a function whose co_names exceeds 256 entries before `CFG.lr` (EXTENDED_ARG
    on both the global and the attribute load)."""
    body = "\n".join(f"        g{i}.a{i}" for i in range(n))
    return (f"def far(x):\n    if FLAG:\n{body}\n    return x * CFG.lr\n")


def _sweep():
    k = 3

    def closure(x):
        return x * k + CFG.lr + np.sum(x)

    def comprehension(xs):
        return [np.exp(v) * CFG.beta for v in xs if v > COUNT] + \
            list({v: np.log(v) for v in xs}) + [w for w in (np.abs(v) for v in xs)]

    def nested(x):
        def inner(y):
            def innermost(z):
                return z * CFG.lr + k
            return innermost(y) + np.pi
        return inner(x)

    def writes(x):
        global COUNT
        COUNT += 1
        del globals()["COUNT"]
        return x

    def methods(x):
        return CFG.__repr__() + np.asarray(x).sum() + k.bit_length() + len(str(x))

    async def coro(x):
        return await x + CFG.lr

    def gen(x):
        yield from (np.sin(v) for v in x)
        yield CFG.beta

    def handlers(x):
        try:
            with np.errstate(all="ignore"):
                return np.divide(x, 0) + k
        except (ValueError, TypeError) as e:
            raise RuntimeError(CFG.lr) from e
        finally:
            print(COUNT)

    def matching(x):
        match x:
            case {"a": v}:
                return v + CFG.lr
            case [a, *rest]:
                return np.sum(rest) + a
            case _:
                return None

    lam = lambda x: np.tanh(x) * CFG.beta + k  # noqa: E731
    ns = {"np": np, "CFG": CFG, "FLAG": False}
    exec(compile(_many_names(300), "<many>", "exec"), ns)
    fns = [closure, comprehension, nested, writes, methods, coro, gen, handlers, matching, lam,
           ns["far"], live.Slots._plan if hasattr(live, "Slots") else live.kkey]
    # every function of a few real modules (opcodes of every kind)
    import adjit.ir.autodiff as ad
    import json.decoder
    for m in (live, ad, json.decoder, dis):
        for o in vars(m).values():
            if isinstance(o, types.FunctionType):
                fns.append(o)
            elif isinstance(o, type):
                fns.extend(v for v in vars(o).values() if isinstance(v, types.FunctionType))
    return fns


@pytest.mark.parametrize("attrs", [True, False])
def test_global_names_equals_dis_scan(attrs):
    fns = _sweep()
    assert len(fns) > 100
    for f in fns:
        got = ([], set(), [] if attrs else None)
        ref = ([], set(), [])
        live._global_names(f.__code__, *got)
        _by_dis(f.__code__, *ref)
        assert got[0] == ref[0], f
        assert got[1] == ref[1], f
        if attrs:
            assert got[2] == ref[2], f


def test_attribute_read_past_256_names_is_keyed():
    """`CFG.lr` read where the attribute's name index needs EXTENDED_ARG: jit keys it like any
    other global object's attribute (a changed value traces again; NumPy gives the answer)."""
    ns = {"np": np, "CFG": types.SimpleNamespace(lr=0.5), "FLAG": False}
    exec(compile(_many_names(300), "<many>", "exec"), ns)
    far = ns["far"]
    assert far.__code__.co_names.index("lr") > 255
    x = np.linspace(-1.0, 1.0, 5)
    jf = adjit.jit(far)
    np.testing.assert_array_equal(jf(x), x * 0.5)
    ns["CFG"].lr = 3.0
    np.testing.assert_array_equal(jf(x), x * 3.0)
