"""The seed notebooks (examples/seeds/) must show, cell by cell, what they show under torch.

Goldens come from scripts/make_seed_goldens.py (real torch, same runner, normalised).  Each
cell is its own test so a failure names the seed and the cell.  The cells run under adjit in
one shared namespace per seed; the run happens once and is cached.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from adjit.cli.notebook import format_run, normalize, parse_cells, parse_run, run_cells

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "examples" / "seeds"
GOLDEN = ROOT / "tests" / "golden" / "seeds"
SEED_NAMES = sorted(p.stem for p in SEEDS.glob("seed_*.py"))


def _golden(name: str) -> list[tuple[str, str]]:
    return parse_run((GOLDEN / f"{name}.txt").read_text())


@functools.lru_cache(maxsize=None)
def _adjit_run(name: str) -> dict[str, str]:
    # Round-trip through the golden text format so both sides lose exactly the same details
    # (e.g. a missing final newline), then normalise.
    text = normalize(format_run(run_cells(SEEDS / f"{name}.py")))
    return dict(parse_run(text))


def _cases():
    for name in SEED_NAMES:
        for index, (header, _) in enumerate(_golden(name)):
            yield pytest.param(name, index, id=f"{name}-{index:02d}-{header[5:]}")


def test_seed_files_exist():
    assert SEED_NAMES == ["seed_000", "seed_001", "seed_002", "seed_003"]


@pytest.mark.parametrize("name", SEED_NAMES)
def test_cells_match_golden_cells(name):
    # The golden must describe the same cells, in the same order, as the cell file.
    headers = [c.header for c in parse_cells((SEEDS / f"{name}.py").read_text())]
    assert len(set(headers)) == len(headers), "cell markers must be unique"
    assert headers == [h for h, _ in _golden(name)], "golden is stale: rerun make_seed_goldens"


@pytest.mark.parametrize("name", SEED_NAMES)
def test_seed_uses_only_allowed_edits(name):
    # The examples must be the notebooks with nothing but the sanctioned edits applied.
    source = (SEEDS / f"{name}.py").read_text()
    assert "import torch\n" not in source
    assert "torchviz" not in source
    assert "matplotlib" not in source


@pytest.mark.parametrize("name, index", _cases())
def test_seed_cell_output(name, index):
    header, expected = _golden(name)[index]
    got = _adjit_run(name)
    assert header in got, f"cell {header!r} did not run"
    assert got[header] == normalize(expected)


# --- the runner itself (independent of adjit's Tensor) ----------------------------------------

RUNNER_CELLS = '''# %% [In 1]
import warnings
x = 1
x + 1
# %% [In 2]
print("out")
raise ValueError("bad value")
# %% [In 3]
x, x
# %% [In 4]
x;
# %% [In 5]
for i in range(3):
    warnings.warn("careful")
type(x), None
# %% [In 6]
None
# %% [In 7]
int
'''


def test_runner_semantics(tmp_path):
    path = tmp_path / "cells.py"
    path.write_text(RUNNER_CELLS)
    out = {r.header: r.output for r in run_cells(path)}
    assert out["# %% [In 1]"] == "2\n"
    assert out["# %% [In 2]"] == "out\nValueError: bad value\n"
    assert out["# %% [In 3]"] == "(1, 1)\n"
    assert out["# %% [In 4]"] == ""
    # one report per warning location, with the echoed source line, before the value
    assert normalize(out["# %% [In 5]"]) == (
        "<file>:<line>: UserWarning: careful\n"
        "  warnings.warn(\"careful\")\n"
        "(<class 'int'>, None)\n"
    )
    assert out["# %% [In 6]"] == ""
    assert out["# %% [In 7]"] == "int\n"


def test_normalize():
    assert normalize("<AddBackward0 object at 0x7f86305835e0>") == "<AddBackward0 object at 0x…>"
    assert (normalize("<class 'torch.Tensor'> torch.float64")
            == "<class 'adjit.Tensor'> adjit.float64")
    warning = ("/tmp/ipykernel_1/2.py:9: UserWarning: msg (Triggered internally at "
               "/x/TensorBody.h:493.)\n  print(e.grad)\n")
    assert normalize(warning) == "<file>:<line>: UserWarning: msg\n  print(e.grad)\n"
    assert normalize(normalize(warning)) == normalize(warning)


def test_describe_dot_maps_ids_to_labels():
    graphviz = pytest.importorskip("graphviz")
    dot = graphviz.Digraph()
    dot.node("140", "\n (2)", fillcolor="lightblue")
    dot.node("141", "AccumulateGrad")
    dot.node("142", "SumBackward0")
    dot.edge("140", "141")
    dot.edge("141", "142")
    dot.edge("140", "142", style="dotted")
    from adjit.cli.notebook import describe_dot
    assert describe_dot(dot) == "\n".join([
        "<Digraph: 3 nodes, 3 edges>",
        "  node (2) [lightblue]",
        "  node AccumulateGrad",
        "  node SumBackward0",
        "  edge (2) -> AccumulateGrad",
        "  edge (2) -> SumBackward0 [dotted]",
        "  edge AccumulateGrad -> SumBackward0",
    ])
