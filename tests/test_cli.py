"""The `adjit` command: dump, check, graph and the errors, on the functions in examples/.

Tests that need a part of adjit another module provides (the NumPy front for NumPy code, codegen
for the fused/llvm/asm stages) skip with a reason naming it while it is missing.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from adjit.cli import main
from peers import run_adjit
from adjit.ir import eval_graph, parse_graph, verify

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EX = os.path.join(ROOT, "examples")
POLY = os.path.join(EX, "poly.py") + ":poly"
MLP = os.path.join(EX, "mlp.py") + ":loss"
LAYER = os.path.join(EX, "mlp.py") + ":layer"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path / "adjit-cache"))


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def sh(args, stdin=None, env=None):
    """`python -m adjit ARGS` in a subprocess (from the repository root)."""
    return run_adjit(args, stdin=stdin, env=env)


# ------------------------------------------------------------------------------ dump

def test_traced_stage_parses_back_and_verifies(capsys):
    code, out, err = run(["dump", POLY, "--args", "f64[]"], capsys)
    assert code == 0, err
    g = verify(parse_graph(out))
    assert g.name == "poly" and [str(t) for t in g.in_types] == ["f64[]"]
    assert [e.prim.name for e in g.eqns].count("pow") == 2
    assert float(eval_graph(g, [np.float64(2.0)])[0]) == 2.0**3 + 2 * 4 - 10 + 1


def test_grad_stage_is_the_adjoint(capsys):
    code, out, err = run(["dump", POLY, "--args", "f64[]", "--grad", "--stage", "grad"], capsys)
    assert code == 0, err
    g = verify(parse_graph(out))
    assert len(g.invars) == 2 and len(g.outvars) == 2  # (x, cotangent) -> (value, dx)
    val, dx = eval_graph(g, [np.float64(1.5), np.float64(1.0)])
    assert float(dx) == pytest.approx(3 * 1.5**2 + 4 * 1.5 - 5)
    assert float(val) == pytest.approx(1.5**3 + 2 * 1.5**2 - 5 * 1.5 + 1)


def test_all_stages_have_headers(capsys):
    code, out, err = run(["dump", POLY, "--args", "f64[]", "--grad", "--stage", "all"], capsys)
    assert code == 0, err
    for stage in ("traced", "grad", "optimized", "fused", "llvm", "asm", "cache"):
        assert f"# ---- {stage}: " in out


def test_loc_prints_source_lines(capsys):
    code, out, _ = run(["dump", POLY, "--args", "f64[]", "--loc"], capsys)
    assert code == 0
    assert re.search(r'loc\("[^"]*examples/poly.py":5\)', out)
    assert verify(parse_graph(out)).eqns[0].loc[1] == 5  # locations parse back too


def test_npz_inputs(tmp_path, capsys):
    f = tmp_path / "in.npz"
    np.savez(f, np.ones((4, 3), np.float32), np.ones((3, 2), np.float32))
    code, out, err = run(["dump", LAYER, "--npz", str(f)], capsys)
    assert code == 0, err
    assert verify(parse_graph(out)).in_types[0].shape == (4, 3)
    code, _, err = run(["dump", LAYER, "--npz", str(f), "--args", "f64[2] f64[2]"], capsys)
    assert code == 2 and "holds f32[4,3] f32[3,2]" in err


def test_numpy_code_and_guards(capsys):
    code, out, err = run(["dump", MLP, "--args", "f32[8,5] f32[5,3] f32[3]", "--grad", "1,2",
                          "--stage", "traced,grad,optimized"], capsys)
    assert code == 0, err
    assert "tanh" in out and out.count("def ") == 3
    code, out, err = run(["dump", os.path.join(EX, "guarded.py") + ":clipped_norm",
                          "--args", "f64[5]", "--loc"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    guard = next(i for i, ln in enumerate(lines) if ln.strip().startswith("guard "))
    assert 'guarded.py":10)' in lines[guard]  # where the comparison was read
    assert " gt " in lines[guard - 1]  # right after the comparison it checks
    verify(parse_graph(out))


def test_optimized_stage_round_trips_through_check():
    dump = sh(["dump", "examples/poly.py:poly", "--args", "f64[]", "--grad", "--stage",
               "optimized"])
    assert dump.returncode == 0, dump.stderr
    chk = sh(["check", "-"], stdin=dump.stdout)
    assert chk.returncode == 0, chk.stdout + chk.stderr
    assert chk.stdout.startswith("ok: poly_vjp(f64[], f64[]) -> (f64[], f64[])")


def test_fused_llvm_asm_stages(capsys):
    code, out, err = run(["dump", LAYER, "--args", "f32[4,3] f32[3,2]", "--grad", "1",
                          "--stage", "fused"], capsys)
    assert code == 0, err
    assert re.search(r"nest 0: writes [a-z]+: f32", out)
    code, out, err = run(["dump", POLY, "--args", "f64[]", "--stage", "llvm"], capsys)
    assert code == 0, err
    sym = re.search(r"native entry @(\w+)", out).group(1)
    before, after = out.split("; ---- after optimisation (-O3) ----")
    assert re.search(rf'^define .*@"?{sym}"?\(', before, re.M)
    assert re.search(rf'^define .*@"?{sym}"?\(', after, re.M)
    code, out, err = run(["dump", POLY, "--args", "f64[]", "--stage", "asm"], capsys)
    assert code == 0, err
    assert re.search(rf"^{sym}:", out, re.M)


def test_cache_reports_miss_then_hit_in_a_second_process(tmp_path):
    env = {"ADJIT_CACHE_DIR": str(tmp_path / "cache")}
    args = ["dump", "examples/poly.py:poly", "--args", "f64[]", "--grad", "--stage", "cache"]
    first, second = sh(args, env=env), sh(args, env=env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "hit: no" in first.stdout and "hit: yes" in second.stdout
    key = re.search(r"key: (\w+)", first.stdout).group(1)
    entry = re.search(r"entry: (.+)", first.stdout).group(1)
    assert key in second.stdout and os.path.isfile(entry)
    info = sh(["cache", "info"], env=env)
    assert "entries on disk: 1" in info.stdout and str(tmp_path) in info.stdout
    assert "removed 1 entries" in sh(["cache", "clear"], env=env).stdout
    assert not os.path.exists(entry)


# ------------------------------------------------------------------------------ check

BAD_PARSE = "def f(a: f64[3]) -> f64[3]:\n  b: f64[3] = mul a 2.0\n  c: f64[3] = frob b\n" \
            "  return c\n"
BAD_TYPES = "def f(a: f64[3]) -> f64[]:\n  b: f64[3] = mul a 2.0\n  c: f64[] = add b b\n" \
            "  return c\n"


def test_check_reports_line_and_column(tmp_path, capsys):
    p = tmp_path / "bad.ir"
    p.write_text(BAD_PARSE)
    code, out, _ = run(["check", str(p)], capsys)
    assert code == 1
    assert f"{p}:3:15: error: unknown primitive 'frob'" in out
    p.write_text(BAD_TYPES)
    code, out, _ = run(["check", str(p)], capsys)
    assert code == 1
    assert re.search(r":3:14: error: add: declared f64\[\] but the shape rule gives f64\[3\]", out)


# ------------------------------------------------------------------------------ graph

def test_graph_svg_png_dot(tmp_path, capsys):
    code, out, err = run(["dump", LAYER, "--args", "f32[4,3] f32[3,2]", "--grad", "1",
                          "--stage", "grad"], capsys)
    n_eqns = len(parse_graph(out).eqns)
    svg = tmp_path / "g.svg"
    code, out, err = run(["graph", LAYER, "--args", "f32[4,3] f32[3,2]", "--grad", "1",
                          "-o", str(svg)], capsys)
    assert code == 0, err
    text = svg.read_text()
    assert re.search(r"<svg\b", text) and text.rstrip().endswith("</svg>")
    assert len(re.findall(r"<title>e\d+</title>", text)) == n_eqns  # one node per equation
    assert len(re.findall(r"<title>in\d+</title>", text)) == 3
    assert "dot_general" in text and "f32[4,2]" in text
    png = tmp_path / "g.png"
    assert run(["graph", LAYER, "--args", "f32[4,3] f32[3,2]", "-o", str(png)], capsys)[0] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dot = tmp_path / "g.dot"
    assert run(["graph", LAYER, "--args", "f32[4,3] f32[3,2]", "-o", str(dot)], capsys)[0] == 0
    assert dot.read_text().startswith("digraph")


def test_graph_without_renderer_writes_dot(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ADJIT_GRAPHVIZ", "none")
    code, _, err = run(["graph", POLY, "--args", "f64[]", "-o", str(tmp_path / "p.svg")], capsys)
    assert code == 1
    assert "graphviz-pure -Tsvg" in err and (tmp_path / "p.dot").exists()


def test_graphviz_ir_renders_make_dot(tmp_path):
    import adjit
    from adjit.viz.ir_graph import render
    x = adjit.ones(3, requires_grad=True)
    out = render(adjit.make_dot((x * 2).sum()), str(tmp_path / "eager.svg"))
    assert "<svg" in open(out).read()


# ------------------------------------------------------------------------------ errors

ERRORS = [
    (["dump", "examples/nope.py:f", "--args", "f64[]"], "no such file: examples/nope.py"),
    (["dump", "examples/poly.py:nope", "--args", "f64[]"], "has no function 'nope'"),
    (["dump", "examples/poly.py", "--args", "f64[]"], "expected FILE.py:FUNCTION"),
    (["dump", "examples/poly.py:poly", "--args", "f64[]", "--stage", "bogus"],
     "unknown stage 'bogus'"),
    (["dump", "examples/poly.py:poly", "--args", "x64[3]"], "bad type string 'x64[3]'"),
    (["dump", "examples/poly.py:poly", "--args", "f64[2,a]"], "bad type string 'f64[2,a]'"),
    (["dump", "examples/poly.py:poly", "--args", "f64[] f64[]"], "cannot take the 2 argument"),
    (["dump", "examples/poly.py:poly", "--args", "f64[]", "--grad", "4"],
     "--grad 4: the function has 1 argument"),
    (["graph", "examples/poly.py:poly", "--args", "f64[]", "-o", "x.pdf"], "use .svg, .png"),
    (["check", "no/such.ir"], "no such file: no/such.ir"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
]


@pytest.mark.parametrize("argv,message", ERRORS, ids=[" ".join(a[:1] + a[-1:])
                                                       for a, _ in ERRORS])
def test_errors_exit_2_with_one_line(argv, message, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, err = run(argv, capsys)
    assert code == 2, (out, err)
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_failure_in_user_code_shows_only_the_users_traceback():
    res = sh(["dump", "examples/broken.py:fails", "--args", "f64[3]"])
    assert res.returncode == 2
    first, *rest = res.stderr.strip().splitlines()
    assert first.startswith("adjit dump: error: fails failed while tracing: AttributeError")
    assert 'examples/broken.py", line 9, in fails' in res.stderr
    assert 'examples/broken.py", line 5, in helper' in res.stderr
    files = re.findall(r'File "([^"]+)"', "\n".join(rest))
    assert files and all(os.path.samefile(f, os.path.join(EX, "broken.py")) for f in files), files


def test_help_documents_every_command_with_an_example():
    top = sh(["--help"])
    assert top.returncode == 0
    for cmd in ("dump", "check", "graph", "bench", "demo", "cache"):
        assert cmd in top.stdout
        res = sh([cmd, "--help"])
        assert res.returncode == 0 and "example" in res.stdout and f"adjit {cmd}" in res.stdout


def _console_script():
    """The `adjit` entry point installed for this interpreter (its scripts folder), not the
    first `adjit` on PATH: that may be another Python's, or a version manager's shim (pyenv's
    runs some 20 bash processes before the script: seconds on a loaded machine)."""
    import sysconfig
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        path = os.path.join(folder, "adjit")
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


@pytest.mark.skipif(_console_script() is None, reason="console script not installed")
def test_console_script():
    # the generated entry point runs adjit.cli.main. Its time is a cold start of Python,
    # NumPy and adjit (~0.4 s alone), which a machine shared by many test processes can
    # stretch far: the timeout only catches a hang
    res = subprocess.run([_console_script(), "check", "-"],
                         input=BAD_TYPES.replace("f64[] = add b b", "f64[3] = add b b"),
                         text=True, capture_output=True, timeout=600)
    assert "return types" in res.stdout and res.returncode == 1
