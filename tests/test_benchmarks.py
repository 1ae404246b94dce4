"""The benchmark workloads (adjit/bench/workloads/): every implementation computes NumPy's numbers.

Each implementation is set up and called once (no timing) and compared with the workload's
reference within its tolerances. torch.compile is left out (it compiles for seconds per
workload; `adjit bench` runs it). Peers that are not installed are skipped unless
ADJIT_REQUIRE_PEERS=1. Also: every workload lists all seven implementations, and
benchmarks/cold_start.py runs.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from adjit import bench

from peers import peers_required

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = bench.discover()
ISSUE_9 = ("W1", "W2", "W3", "W4", "W5", "W6", "W7")
PYTREE = ("W2", "W3")  # issue 18 item 6: the adjit.pytree row (the one the targets use)
MODULE = {"torch": "torch", "torch.func": "torch", "torch.compile": "torch", "jax": "jax",
          "autograd": "autograd"}
_REFS: dict = {}


def _ref(name):
    if name not in _REFS:
        _REFS[name] = bench.reference_outputs(WORKLOADS[name])
    return _REFS[name]


def test_every_workload_of_issue_9_exists_with_all_peers():
    for name in ISSUE_9:
        assert name in WORKLOADS, name
        w = WORKLOADS[name]
        optional = set(bench.VARIANTS) - (set(bench.VARIANTS) if name in PYTREE else set())
        assert set(w.impls) == set(bench.PEERS) - optional, (name, sorted(w.impls))
        for impl, setup in w.impls.items():
            if impl in MODULE:  # None exactly when the peer is not installed
                assert (setup is None) == (not bench.installed(MODULE[impl])), (name, impl)
            else:
                assert setup is not None, (name, impl)
    assert WORKLOADS["W3g"].impls["numpy"] is not None  # W3's GEMM-alone reference row


def test_targets_use_the_pytree_row_and_adjit_rows_are_not_peers():
    R = bench.Result
    rows = [R("W2", "adjit", "ok", median=1.0), R("W2", "adjit.pytree", "ok", median=3.0),
            R("W2", "numpy", "ok", median=2.0), R("W2", "jax", "ok", median=4.0),
            R("W1", "adjit", "ok", median=1.0), R("W1", "numpy", "ok", median=2.0)]
    assert bench.ratio(rows, "W2") == (1.5, "numpy")
    assert bench.ratio(rows, "W1") == (0.5, "numpy")


CASES = [(n, i) for n, w in WORKLOADS.items() for i in bench.PEERS
         if i in w.impls and i != "torch.compile"]


@pytest.mark.parametrize("name,impl", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_implementation_agrees_with_numpy(name, impl):
    w = WORKLOADS[name]
    setup = w.impls[impl]
    if setup is None:
        if peers_required():
            pytest.fail(f"{impl} is not installed (ADJIT_REQUIRE_PEERS=1)")
        pytest.skip(f"{impl} is not installed")
    got = bench.as_arrays(setup(w.inputs(0))())
    err, msg = bench.compare(got, _ref(name), w)
    assert err <= 1, f"{name} {impl}: {msg}"


def test_inputs_are_deterministic():
    import numpy as np
    for name, w in WORKLOADS.items():
        a, b = w.inputs(0), w.inputs(0)
        assert all(np.array_equal(x, y) for x, y in zip(a, b)), name


def test_cold_start_script_reports_first_call_and_rss(tmp_path):
    out = tmp_path / "cold.json"
    res = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "cold_start.py"),
                          "W1", "--impls", "adjit,numpy", "--repeat", "1", "--calls", "3",
                          "--json", str(out)], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert "first call" in res.stdout and "peak RSS" in res.stdout
    doc = json.loads(out.read_text())
    rows = {r["impl"]: r for r in doc["results"]}
    assert set(rows) == {"adjit", "numpy"}
    for r in rows.values():
        assert r["status"] == "ok", r
        assert 0 < r["first"] < r["total"] and r["peak"] > 10 and r["import"] > 0


def test_cold_start_new_steps_are_new_code_in_the_same_process(tmp_path):
    # `--new-steps`: the workload's modules executed again (new functions and code objects, as
    # a user's new step), timed in the warm child process, for every implementation
    import importlib.util
    import numpy as np
    spec = importlib.util.spec_from_file_location(
        "_cold_start_under_test", os.path.join(ROOT, "benchmarks", "cold_start.py"))
    cs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cs)
    w = bench.discover()["W2"]
    fw = cs._fresh_workload("W2", 901)
    try:
        setup, fsetup = w.impls["adjit"], fw.impls["adjit"]
        assert fsetup is not setup and fsetup.__code__ is not setup.__code__
        assert fsetup.__module__ == "_cold_start_fresh901._mlp"
        a, b = w.inputs(0), fw.inputs(0)
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
    finally:
        for m in [m for m in sys.modules if m.startswith("_cold_start_fresh901")]:
            del sys.modules[m]
    out = tmp_path / "cold.json"
    res = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "cold_start.py"),
                          "W1", "--impls", "adjit,numpy", "--repeat", "1", "--calls", "3",
                          "--new-steps", "2", "--evict-mb", "2", "--json", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "new step" in res.stdout
    data = json.loads(out.read_text())
    assert data["evict_mb"] == 2
    rows = {r["impl"]: r for r in data["results"]}
    for r in rows.values():
        assert r["status"] == "ok", r
        assert 0 < r["new_first"] <= r["new20"] < r["total"]


def test_interp_tier_script_pairs_fresh_processes_in_alternating_order():
    res = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "interp_tier.py"),
                          "W2", "--calls", "2", "--repeat", "2"], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    row = [ln for ln in res.stdout.splitlines() if ln.startswith("W2")]
    assert len(row) == 1, res.stdout
    cells = row[0].split()
    assert float(cells[1].rstrip("ms")) > 0 and cells[5].endswith("x")
    # the first calls' user-time ratio, system times and minor faults (getrusage), last
    assert cells[-5].endswith("x") and float(cells[-5].rstrip("x")) > 0, cells
    assert float(cells[-4]) >= 0 and float(cells[-3]) >= 0, cells
    assert int(cells[-2]) > 0 and int(cells[-1]) > 0, cells


def test_first_touch_script_times_both_first_calls():
    res = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "first_touch.py"),
                          "pairs", "none", "--repeat", "1", "--n4", "100000"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = {ln.split()[1]: ln.split() for ln in res.stdout.splitlines()
            if ln.startswith("none ") and ln.split()[1] in ("adjit", "numpy")}
    assert set(rows) == {"adjit", "numpy"}, res.stdout
    for cells in rows.values():
        assert cells[2] == "ms" and float(cells[3]) > 0 and cells[8] == "faults", cells
    assert "adjit/numpy by pair:" in res.stdout


def test_workloads_are_user_code_for_locations():
    # the workloads are written as users write code: their equations are located at the
    # workload's own lines (and the walk for a location stops there, as it does in a user's
    # file), while the benchmark framework beside them stays adjit's
    import numpy as np

    import adjit
    from adjit._frames import is_adjit_file
    from adjit.bench.workloads import _mlp
    assert not is_adjit_file(_mlp.__file__)
    assert is_adjit_file(bench.__file__)
    inp = _mlp.make_inputs(4, 3, 5, 2)(0)
    g = adjit.make_ir(adjit.value_and_grad(_mlp.loss))(*inp)
    files = {e.loc[0] for e in g.eqns if e.loc is not None}
    assert files and all(os.path.basename(f) == "_mlp.py" for f in files), files
    assert np.isfinite(float(adjit.value_and_grad(_mlp.loss)(*inp)[0]))
