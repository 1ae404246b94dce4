"""User mistakes given to the `adjit` command exit 2 with one line (never 3, "internal error"),
and `adjit check` reads whatever its path names, pipes included; `adjit bench --list` works from
any directory."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from peers import ROOT, run_adjit

POLY = os.path.join(ROOT, "examples", "poly.py") + ":poly"


def sh(args, cwd, stdin=None):
    return run_adjit(args, cwd=cwd, stdin=stdin, text=False)


def _one_line_error(res, command):
    err = res.stderr.decode() if isinstance(res.stderr, bytes) else res.stderr
    assert res.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"adjit {command}: error: "), err
    assert "internal error" not in err
    return lines[0]


@pytest.mark.parametrize("command", ["dump", "graph"])
def test_inputs_too_large_for_memory(command, tmp_path):
    extra = ["-o", str(tmp_path / "g.dot")] if command == "graph" else []
    line = _one_line_error(sh([command, POLY, "--args", "f64[99999999999]", *extra],
                              tmp_path), command)
    assert "f64[99999999999]" in line and "GiB" in line


@pytest.mark.parametrize("seed", ["-5", "x", "1.5"])
def test_bad_seed(seed, tmp_path):
    line = _one_line_error(sh(["dump", POLY, "--args", "f64[]", "--seed", seed], tmp_path),
                           "dump")
    assert "--seed" in line and "non-negative integer" in line


def test_check_refuses_non_utf8_file(tmp_path):
    bad = tmp_path / "bad.ir"
    bad.write_bytes(b"def f(a: f64[]) -> f64[]:\n  return a\n# \xff\xfe\n")
    line = _one_line_error(sh(["check", str(bad)], tmp_path), "check")
    assert "not UTF-8" in line and "line 3" in line
    line = _one_line_error(sh(["check", "-"], tmp_path, stdin=bad.read_bytes()), "check")
    assert "not UTF-8" in line


def test_check_directory_and_missing_file(tmp_path):
    assert "is a directory" in _one_line_error(sh(["check", str(tmp_path)], tmp_path), "check")
    assert "no such file" in _one_line_error(sh(["check", str(tmp_path / "nope.ir")],
                                                tmp_path), "check")


@pytest.mark.skipif(not os.path.exists("/dev/fd") or sys.platform == "win32",
                    reason="needs /dev/fd process substitution")
def test_check_reads_a_pipe(tmp_path):
    text = "def f(a: f64[]) -> f64[]:\n  b: f64[] = sin a\n  return b\n"
    cmd = f'{sys.executable} -m adjit check <(printf "%s" "$IR")'
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=tmp_path,
                         env=dict(os.environ, IR=text), timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("ok: f(f64[]) -> f64[]")


def test_bench_list_from_any_directory(tmp_path):
    res = sh(["bench", "--list"], tmp_path)
    assert res.returncode == 0, res.stderr
    from adjit.bench import workloads  # noqa: F401 - the package holds the workloads
    names = [ln.split()[0] for ln in res.stdout.decode().splitlines() if ln.strip()]
    assert "W1" in names and len(names) >= 5
