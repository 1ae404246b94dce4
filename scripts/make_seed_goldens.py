"""Write tests/golden/seeds/seed_NNN.txt by running each seed cell file under real torch.

The cell files in examples/seeds/ import adjit; here the allowed edits are reversed
(``import adjit as torch`` -> ``import torch``, ``from adjit import make_dot`` ->
``from torchviz import make_dot``) and the cells run with adjit's notebook runner, so the
goldens hold exactly what PyTorch shows, normalised with ``adjit.cli.notebook.normalize``.

Where the original notebook showed output (tests/golden/seeds/seed_NNN.notebook.txt, copied
from the notebook text), torch's output is also checked against it, loosely: the notebook
rendering drops warning header lines and spaces its outputs with extra blank lines.

Usage: python3 scripts/make_seed_goldens.py [--check]
  --check  write nothing; exit 1 if a golden file is missing or out of date.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adjit.cli.notebook import format_run, normalize, parse_run, run_cells  # noqa: E402

SEEDS = ROOT / "examples" / "seeds"
GOLDEN = ROOT / "tests" / "golden" / "seeds"

_REVERSE_EDITS = [
    (re.compile(r"^import adjit as torch$", re.MULTILINE), "import torch"),
    (re.compile(r"^from adjit import make_dot$", re.MULTILINE), "from torchviz import make_dot"),
]


def torch_source(source: str) -> str:
    """Undo the edits that turned the notebook's torch code into adjit code."""
    for pattern, replacement in _REVERSE_EDITS:
        source = pattern.sub(replacement, source)
    return source


def golden_text(cell_file: Path) -> str:
    return normalize(format_run(run_cells(cell_file, transform=torch_source)))


def _loose(text: str) -> list[str]:
    # The notebook text shows a warning only by its echoed source line, and separates output
    # blocks with blank lines, so compare non-blank lines without warning headers.
    lines = normalize(text).splitlines()
    return [ln.rstrip() for ln in lines
            if ln.strip() and not ln.startswith("<file>:<line>: ")]


def compare_with_notebook(name: str, golden: str) -> list[str]:
    shown_file = GOLDEN / f"{name}.notebook.txt"
    if not shown_file.exists():
        return [f"{name}: notebook shows no outputs (never executed); nothing to check"]
    shown = dict(parse_run(shown_file.read_text()))
    notes = []
    for header, output in parse_run(golden):
        if header not in shown:
            notes.append(f"{name} {header}: missing from the notebook text")
        elif _loose(output) != _loose(shown[header]):
            notes.append(f"{name} {header}: DIFFERS from notebook\n"
                         f"  notebook: {_loose(shown[header])!r}\n"
                         f"  torch:    {_loose(output)!r}")
    if not notes:
        notes.append(f"{name}: all {len(shown)} cells match the notebook's shown output")
    return notes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    import torch  # noqa: F401  (fail early and clearly: goldens come from real torch)

    stale = []
    for cell_file in sorted(SEEDS.glob("seed_*.py")):
        name = cell_file.stem
        text = golden_text(cell_file)
        target = GOLDEN / f"{name}.txt"
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(str(target))
        else:
            GOLDEN.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            print(f"wrote {target.relative_to(ROOT)}")
        for note in compare_with_notebook(name, text):
            print("  " + note)
    if stale:
        print("out of date:", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
