"""Rewrite the IR printer goldens (tests/golden/ir/*.txt) from tests/test_ir_text.py.

Run on purpose only, after a deliberate printer or transform change, then review `git diff`:

    python scripts/update_ir_goldens.py

The graphs are defined once, in the test module, so the script and the test cannot drift apart.
Stale files (no longer produced) are deleted.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "ir"


def _load_tests():
    spec = importlib.util.spec_from_file_location("_ir_text_cases",
                                                  ROOT / "tests" / "test_ir_text.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> int:
    texts = _load_tests().golden_texts()
    GOLDEN.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in sorted(texts.items()):
        path = GOLDEN / f"{name}.txt"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(path.name)
    for path in sorted(GOLDEN.glob("*.txt")):
        if path.stem not in texts:
            path.unlink()
            changed.append(f"{path.name} (deleted)")
    print("\n".join(f"updated {c}" for c in changed) or "goldens already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
