"""What every test module shares.

- A private disk cache for the whole run: ADJIT_CACHE_DIR is set to a fresh temporary folder in
  `pytest_configure` (before any test module is imported, so before adjit compiles anything;
  `adjit.runtime.cache.cache_dir()` reads the variable on every use) and removed at the end.
  Subprocesses inherit it. No test reads or writes the user's ~/.cache/adjit.
- This folder is on sys.path (pytest's default "prepend" import mode, tests/ being no
  package), so test modules import their helpers by plain name: `from peers import require`,
  `import sweep`, `from test_tensor_vs_torch import check`, wherever the checkout lives and
  whatever the working directory.
- Fixtures: `run_adjit` (the `adjit` command in a subprocess, see peers.run_adjit).
"""
from __future__ import annotations

import os
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


@pytest.fixture
def run_adjit():
    from peers import run_adjit as run
    return run
