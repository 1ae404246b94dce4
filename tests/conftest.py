"""What every test module shares.

- A private disk cache for the whole run: ADJIT_CACHE_DIR is set to a fresh temporary folder in
  `pytest_configure` (before any test module is imported, so before adjit compiles anything;
  `adjit.runtime.cache.cache_dir()` reads the variable on every use) and removed at the end.
  Subprocesses inherit it. No test reads or writes the user's ~/.cache/adjit.
- This folder is on sys.path (pytest's default "prepend" import mode, tests/ being no
  package), so test modules import their helpers by plain name: `from peers import require`,
  `import sweep`, `from test_tensor_vs_torch import check`, wherever the checkout lives and
  whatever the working directory.
- Fixtures: `run_adjit` (the `adjit` command in a subprocess, see peers.run_adjit);
  `auto_tier` (ADJIT_TIER=auto for one test: grad's eager tier, which native skips);
  `native_tier` (ADJIT_TIER=native for one test, subprocesses included: for tests of native
  code itself - compile counts, the disk cache, compile errors - which must hold whatever mode
  the suite runs in).
- The suite runs under any tier: `ADJIT_TIER=interp python -m pytest -n auto tests` (or
  native, auto, deterministic; unset = auto, the default). The header names the mode.
"""
from __future__ import annotations

import os
import sys
import shutil
import tempfile

import pytest

_CACHE = {}


def pytest_configure(config):
    if "dir" not in _CACHE:
        _CACHE["dir"] = tempfile.mkdtemp(prefix="adjit-test-cache-")
        _CACHE["old"] = os.environ.get("ADJIT_CACHE_DIR")
        os.environ["ADJIT_CACHE_DIR"] = _CACHE["dir"]


def pytest_unconfigure(config):
    d = _CACHE.pop("dir", None)
    if d is None:
        return
    old = _CACHE.pop("old", None)
    if old is None:
        os.environ.pop("ADJIT_CACHE_DIR", None)
    else:
        os.environ["ADJIT_CACHE_DIR"] = old
    shutil.rmtree(d, ignore_errors=True)


def pytest_report_header(config):
    return f"adjit tier: ADJIT_TIER={os.environ.get('ADJIT_TIER') or '(unset: auto)'}"


@pytest.fixture
def auto_tier(monkeypatch):
    """This test checks the tiers' default path (grad's eager tier for a small graph's first
    calls), which ADJIT_TIER=native skips by design: it runs under auto whatever the suite's."""
    monkeypatch.setenv("ADJIT_TIER", "auto")
    monkeypatch.delenv("ADJIT_DISABLE_JIT", raising=False)


@pytest.fixture
def native_tier(monkeypatch):
    """This test checks native code itself: graphs first run in it compile before they run."""
    monkeypatch.setenv("ADJIT_TIER", "native")
    monkeypatch.delenv("ADJIT_DISABLE_JIT", raising=False)


def broken_worker(monkeypatch, log, reason="test failure"):
    """A fresh compile worker (runtime/background.py) whose every graph compile raises
    CompileError(reason), appending a line to file `log` per compile; stopped at teardown."""
    from adjit.runtime import background
    code = ("import sys\n"
            "from adjit.runtime import compile as c\n"
            "from adjit.codegen.errors import CompileError\n"
            "def broken(g):\n"
            f"    open({str(log)!r}, 'a').write(g.name + '\\n')\n"
            f"    raise CompileError('graph ' + g.name, {reason!r})\n"
            "c.compile_object = broken\n"
            "from adjit.runtime.worker import main\n"
            "main()\n")
    monkeypatch.setattr(background, "WORKER_COMMAND", [sys.executable, "-c", code])
    monkeypatch.setattr(background, "_COMPILER", background.Compiler())
    monkeypatch.setattr(background, "_SYNC_COMPILER", background.Compiler(nice=0))
    yield
    background._COMPILER.kill()
    background._SYNC_COMPILER.kill()


@pytest.fixture
def run_adjit():
    from peers import run_adjit as run
    return run
