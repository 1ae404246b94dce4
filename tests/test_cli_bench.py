"""`adjit bench` (the framework in adjit/bench/__init__.py, workload W1) and `adjit demo`."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from adjit import bench
from adjit.cli.bench import table
from peers import run_adjit


def sh(args, timeout=120):
    return run_adjit(args, timeout=timeout)


def _toy(impls, **kw):
    inputs = lambda seed: (np.arange(3.0) + seed,)  # noqa: E731
    return bench.Workload("T", "toy", inputs, impls, **kw)


def _have_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        # the `plot` extra: optional, except in CI where every extra must be installed
        if os.environ.get("ADJIT_REQUIRE_PEERS") == "1":
            raise
        return False


def test_bench_quick_runs_w1_with_json_and_plot(tmp_path):
    js, png = tmp_path / "b.json", tmp_path / "b.png"
    plot = _have_matplotlib()
    res = sh(["bench", "W1", "--quick", "--only", "adjit,numpy,autograd", "--json", str(js)]
             + (["--plot", str(png)] if plot else []))
    assert res.returncode == 0, res.stderr
    rows = {ln.split()[1]: ln for ln in res.stdout.splitlines()
            if ln.startswith("W1 ") and ln.split()[1] in bench.PEERS}
    assert set(rows) == {"adjit", "numpy", "autograd"}
    assert rows["adjit"].rstrip().endswith("ok") and rows["numpy"].rstrip().endswith("ok")
    assert "W1 (scalar poly, grad): adjit/best peer = " in res.stdout
    assert "3/3 W1 autograd" in res.stderr  # the progress bar
    doc = json.loads(js.read_text())
    assert doc["meta"]["threads"] == 2 and doc["meta"]["quick"] is True
    r = {d["impl"]: d for d in doc["results"]}
    assert r["adjit"]["p10"] <= r["adjit"]["median"] <= r["adjit"]["p90"]
    assert r["adjit"]["first"] > 0 and r["adjit"]["peak_rss_mb"] > 0
    assert doc["ratios"]["W1"]["best"] in ("numpy", "autograd")
    if plot:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_list_and_unknown_names():
    res = sh(["bench", "--list"])
    assert res.returncode == 0 and "W1  scalar poly, grad" in res.stdout
    res = sh(["bench", "W99", "--quick"])
    assert res.returncode == 2 and "unknown workload 'W99'" in res.stderr


def test_missing_peer_is_shown_as_missing():
    w = _toy({"numpy": lambda inp: lambda: inp[0] * 2, "adjit": lambda inp: lambda: inp[0] * 2,
              "jax": None})
    ref = bench.reference_outputs(w)
    results = [bench.measure(w, i, quick=True, reference=ref) for i in ("adjit", "numpy", "jax")]
    assert [r.status for r in results] == ["ok", "ok", "missing"]
    text = table(results, [w])
    assert "missing" in text and "not installed" in text
    assert "T (toy): adjit/best peer = " in text



def test_rows_a_workload_does_not_define_are_not_printed(monkeypatch, capsys):
    # the toy defines numpy and adjit only; torch and jax are installed (or not): no row either
    # way, and certainly not "missing ... not installed"
    from adjit.cli import bench as cli
    w = _toy({"numpy": lambda inp: lambda: inp[0] * 2, "adjit": lambda inp: lambda: inp[0] * 2})
    monkeypatch.setattr(bench, "discover", lambda: {"T": w})
    ns = type("NS", (), dict(list=False, names=["T"], only=None, quick=True, isolate=False,
                             json=None, plot=None))()
    assert cli.run_command(ns) == 0
    out = capsys.readouterr().out
    rows = [ln.split()[1] for ln in out.splitlines() if ln.startswith("T ")
            and ln.split()[1] in bench.PEERS]
    assert rows == ["adjit", "numpy"]
    assert "missing" not in out and "not installed" not in out
    assert bench.measure(w, "torch", quick=True).status == "n/a"


def test_dict_results_are_flattened_and_checked():
    # values in sorted key order, whatever order an implementation builds the dict in
    w = _toy({"numpy": lambda inp: lambda: {"b": inp[0] * 2, "a": (inp[0], inp[0] + 1)},
              "adjit": lambda inp: lambda: {"a": (inp[0], inp[0] + 1), "b": inp[0] * 2},
              "jax": lambda inp: lambda: {"a": (inp[0], inp[0] + 1), "b": inp[0] * 3}})
    ref = bench.reference_outputs(w)
    x = w.inputs(0)[0]
    assert [r.tolist() for r in ref] == [x.tolist(), (x + 1).tolist(), (x * 2).tolist()]
    assert bench.measure(w, "adjit", quick=True, reference=ref).status == "ok"
    assert bench.measure(w, "jax", quick=True, reference=ref).status == "mismatch"


def test_wrong_numbers_are_a_mismatch_and_errors_are_reported():
    w = _toy({"numpy": lambda inp: lambda: inp[0] * 2,
              "adjit": lambda inp: lambda: inp[0] * 2 + 1e-3,
              "torch": lambda inp: lambda: 1 / 0})
    ref = bench.reference_outputs(w)
    bad = bench.measure(w, "adjit", quick=True, reference=ref)
    assert bad.status == "mismatch" and "tolerance" in bad.message
    err = bench.measure(w, "torch", quick=True, reference=ref)
    assert err.status == "error" and "ZeroDivisionError" in err.message
    assert "MISMATCH" in table([bad, err], [w])


def test_w1_implementations_agree_with_numpy():
    w = bench.discover()["W1"]
    ref = bench.reference_outputs(w)
    assert ref[0] == pytest.approx(3 * w.inputs(0)[0] ** 2 + 4 * w.inputs(0)[0] - 5)
    for impl in ("adjit", "autograd"):
        if w.impls[impl] is not None:
            got = bench.as_arrays(w.impls[impl](w.inputs(0))())
            assert bench.compare(got, ref, w)[0] <= 1, impl


def test_demo_trains_and_reports():
    res = sh(["demo", "--steps", "40"], timeout=60)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    losses = [float(ln.split()[-1]) for ln in out.splitlines() if ln.strip().startswith("step")]
    assert len(losses) >= 3 and losses[-1] < losses[0]
    assert "first call (trace + compile):" in out and "max relative error" in out
    for name in ("adjit", "numpy by hand", "torch eager"):
        assert f"  {name}" in out
    assert "disk cache:" in out
