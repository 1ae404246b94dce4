"""The registry sweep's shared pieces: cases per primitive × dtype × sample, seeded samples and
the one-equation graph. tests/test_registry.py (rules) and tests/test_codegen.py (lowering) both
walk the registry through these, so a new primitive is tested by adding its record."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

from adjit.ir import REGISTRY, AType, bind, extract, new_trace
from adjit.ir.core import Node


def rng(*key):
    """A generator seeded by the case, so `-k` reproduces a failure."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def cases():
    """pytest params (name, dtype, sample index); index -1 marks a missing sample (a failure)."""
    for name, prim in REGISTRY.items():
        if not prim.samples:
            yield pytest.param(name, None, -1, id=f"{name}-nosamples")
            continue
        for dt in prim.dtypes:
            n = len(prim.samples(dt, rng(name, dt)))
            if not n:
                yield pytest.param(name, dt, -1, id=f"{name}-{dt}-nosamples")
            for i in range(n):
                yield pytest.param(name, dt, i, id=f"{name}-{dt}-{i}")


def sample(name, dt, i, what="the registry sweep"):
    if i < 0:
        pytest.fail(f"primitive {name!r} has no samples for {what} (dtype {dt}); give its "
                    "record a samples(dtype, rng)")
    args, params = REGISTRY[name].samples(dt, rng(name, dt))[i]
    return [np.asarray(a) if isinstance(a, (np.ndarray, np.generic)) else a for a in args], params


def one_eqn(prim, args, params, kind="sweep"):
    """The one-equation graph: array args become invars, Python scalars literals; every
    result of the equation is a graph output."""
    with new_trace(kind) as tr:
        ins, nodes = [], []
        for a in args:
            if isinstance(a, np.ndarray):
                n = Node(None, AType(a.shape, a.dtype), None, tr)
                nodes.append(n)
                ins.append(n)
            else:
                ins.append(a)
        out = bind(prim, *ins, **params)
        outs = list(out) if type(out) is tuple else [out] if type(out) is Node else []
        return extract(outs, tr, inputs=nodes, name=prim.name)
