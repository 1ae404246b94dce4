"""docs/architecture.md draws the layers the import-linter contract enforces (pyproject.toml) and
lists every folder of the package (issue 13): a test keeps picture, contract and folders in step."""
from __future__ import annotations

import pathlib
import re


def _package_files():
    root = pathlib.Path(__file__).resolve().parent.parent / "adjit"
    return root, sorted(root.rglob("*.py"))


# ------------------------------------------------------------------ the layers in the docs
def test_architecture_doc_draws_the_enforced_layers():
    """docs/architecture.md's picture lists the import-linter contract's layers, top to
    bottom, and its folder table every folder of the package."""
    import tomllib
    from peers import ROOT
    with open(f"{ROOT}/pyproject.toml", "rb") as f:
        contract = tomllib.load(f)["tool"]["importlinter"]["contracts"][0]
    layers = [m.strip() for layer in contract["layers"] for m in layer.split("|")]
    doc = open(f"{ROOT}/docs/architecture.md").read()
    picture = doc.split("```")[1]
    drawn = re.findall(r"^ (adjit/\w+)", picture, re.M)
    assert [d.replace("/", ".") for d in drawn] == layers
    root, files = _package_files()
    folders = {f.parent.relative_to(root.parent).as_posix() for f in files
               if f.name == "__init__.py" and f.parent != root}
    table = set(re.findall(r"^\| (adjit/[\w/]+)/ \|", doc, re.M))
    assert folders == table, folders ^ table
