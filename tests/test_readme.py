"""The README's Python examples run as written."""
from __future__ import annotations

import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _blocks():
    text = open(README).read()
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.mark.parametrize("i", range(len(_blocks())))
def test_readme_python_block_runs(i, capsys):
    code = _blocks()[i]
    exec(compile(code, f"README.md[python block {i}]", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    # what the comments promise, where they state a result
    for line, shown in re.findall(r"^(print\(.*\))\s*#\s*(tensor\(.*\))$", code, re.M):
        assert shown in out


def test_numpy_section_prints_what_it_says(capsys):
    code = [b for b in _blocks() if "value_and_grad" in b][0]
    exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("loss ") and float(lines[0].split()[1]) < 1.5
    assert isinstance(eval(lines[1]), float)
    assert lines[2] == "(3, 3)" and lines[3] == "(3, 2)"
    assert lines[4] == "[0.6 0.8] [0.3 0.4]"
