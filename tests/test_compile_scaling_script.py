"""benchmarks/compile_scaling.py: per-family --sizes, the bench family (issue 18, item 5)."""
from __future__ import annotations

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def cs():
    spec = importlib.util.spec_from_file_location(
        "compile_scaling", os.path.join(ROOT, "benchmarks", "compile_scaling.py"))
    mod = importlib.util.module_from_spec(spec)
    keep = os.environ.get("ADJIT_CACHE_DIR")
    os.environ["ADJIT_SCALING_KEEP_CACHE"] = "1"  # importing must not move the test's cache
    try:
        spec.loader.exec_module(mod)
    finally:
        os.environ.pop("ADJIT_SCALING_KEEP_CACHE", None)
    assert os.environ.get("ADJIT_CACHE_DIR") == keep
    return mod


def test_sizes_are_given_per_family(cs):
    fams = ["chain", "mlp", "lstm"]
    got = cs.parse_sizes(["mlp=32,128", "lstm=50"], fams)
    assert got == {"chain": cs.SIZES["chain"], "mlp": [32, 128], "lstm": [50]}
    assert cs.parse_sizes(["mlp=2;lstm=5,15"], fams) == {"chain": cs.SIZES["chain"],
                                                         "mlp": [2], "lstm": [5, 15]}
    assert cs.parse_sizes(None, fams) == {f: cs.SIZES[f] for f in fams}
    assert cs.parse_sizes(["bench=W1,W10"], ["bench", "mlp"])["bench"] == ["W1", "W10"]
    assert cs.parse_sizes(["8,32"], ["mlp"]) == {"mlp": [8, 32]}  # one family: a bare list


@pytest.mark.parametrize("spec, match", [
    (["8,32"], "name the family"),           # which of several families?
    (["conv=3"], "'conv' is not among"),
    (["mlp=a,b"], "integers"),
    (["mlp="], "no sizes"),
])
def test_bad_sizes_are_refused(cs, spec, match):
    with pytest.raises(ValueError, match=match):
        cs.parse_sizes(spec, ["chain", "mlp"])


def test_bad_sizes_exit_with_a_usage_error(cs, capsys):
    import os
    tier = os.environ.get("ADJIT_TIER")
    with pytest.raises(SystemExit):
        cs.main(["--families", "chain,mlp", "--sizes", "8,32", "--no-jax"])
    assert "name the family" in capsys.readouterr().err
    assert os.environ.get("ADJIT_TIER") == tier  # main() refused before touching the process


def test_bench_family_compiles_the_workloads_steady_state_graphs(cs):
    """W1's adjit row (jit(grad(poly))) asks for one graph; the stages run on it, on the
    optimised graph when it was sent as traced (as the compile worker optimises it first:
    the passes are timed, and `eqns` counts the optimised graph)."""
    from adjit.ir.passes import optimize
    front, graphs = cs.bench_graphs("W1")
    assert len(graphs) == 1 and front >= 0
    g, traced = graphs[0]
    t = cs.bench_compile("W1")
    assert t["graphs"] == 1 and t["eqns"] == len((optimize(g) if traced else g).eqns) > 0
    assert t["llvm"] > 0 and t["codegen"] > 0
    assert t["passes"] > 0 if traced else t["passes"] == 0
