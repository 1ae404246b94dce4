"""Regenerate the README's `adjit` examples from real runs of the command.

    python scripts/update_readme_cli.py            # rewrite the blocks and the picture
    python scripts/update_readme_cli.py --check    # exit 1 if anything is out of date

Between the markers `<!-- adjit-cli:NAME -->` and `<!-- /adjit-cli:NAME -->` in README.md
it puts the output of the command registered as NAME below (as a
fenced block that shows the command too); it renders the pictures of PICTURES into docs/img/.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = ["README.md"]
MLP_ARGS = '"f32[32,20] f32[20,16] f32[16]"'
BLOCKS = {
    "dump": f"adjit dump examples/mlp.py:loss --args {MLP_ARGS} --loc",
    "dump-grad": "adjit dump examples/poly.py:poly --args \"f64[]\" --grad --stage optimized",
    "check": "adjit dump examples/poly.py:poly --args \"f64[]\" --grad --stage optimized "
             "| adjit check -",
}
PICTURES = {
    os.path.join("docs", "img", "cli_mlp_grad.svg"):
        f"adjit graph examples/mlp.py:loss --args {MLP_ARGS} --grad 1,2 --optimize "
        "-o docs/img/cli_mlp_grad.svg",
}


def run(cmd: str) -> str:
    """Run an `adjit ...` pipeline from the repository root, through `python -m adjit`."""
    py = shlex.quote(sys.executable)
    shell = re.sub(r"(^|\|\s*)adjit ", lambda m: f"{m.group(1)}{py} -m adjit ", cmd)
    res = subprocess.run(shell, shell=True, cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    if res.returncode != 0:
        sys.exit(f"`{cmd}` failed (exit {res.returncode}):\n{res.stderr}")
    return res.stdout


def block(name: str) -> str:
    cmd = BLOCKS[name]
    return f"```console\n$ {cmd}\n{run(cmd).rstrip()}\n```"


def update_text(text: str, outputs: dict) -> str:
    def sub(m):
        name = m.group(1)
        if name not in outputs:
            return m.group(0)
        return f"<!-- adjit-cli:{name} -->\n{outputs[name]}\n<!-- /adjit-cli:{name} -->"
    return re.sub(r"<!-- adjit-cli:([\w-]+) -->.*?<!-- /adjit-cli:\1 -->", sub, text,
                  flags=re.S)


def main(argv=None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    outputs = {name: block(name) for name in BLOCKS}
    stale = []
    for rel in FILES:
        path = os.path.join(ROOT, rel)
        if not os.path.exists(path):
            continue
        with open(path) as fh:
            old = fh.read()
        new = update_text(old, outputs)
        if new != old:
            stale.append(rel)
            if not check:
                with open(path, "w") as fh:
                    fh.write(new)
    for rel, cmd in PICTURES.items():
        path = os.path.join(ROOT, rel)
        before = open(path, "rb").read() if os.path.exists(path) else None
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if check:
            tmp = path + ".check.svg"
            run(cmd.replace(rel, tmp))
            changed = open(os.path.join(ROOT, tmp), "rb").read() != before
            os.remove(os.path.join(ROOT, tmp))
        else:
            run(cmd)
            changed = open(path, "rb").read() != before
        if changed:
            stale.append(rel)
    verb = "out of date" if check else "updated"
    print(f"{verb}: {', '.join(stale)}" if stale else "up to date")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
