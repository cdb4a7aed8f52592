"""Write README.md from nbs/index.ipynb without Quarto, or check that it is current (`--check`).

`nbdev-readme` needs Quarto; this renders the same notebook offline: markdown cells as they are,
visible code cells as fenced Python with their text outputs. Cells marked `#| hide` are left out.
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "<!-- Generated from nbs/index.ipynb by `python tools/readme.py`: edit the notebook, not this file. -->\n\n"


def _src(cell) -> str:
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def _directives(src: str) -> set[str]:
    return {line[3:].strip().split()[0] for line in src.splitlines() if line.startswith("#| ") and line[3:].strip()}


def render(nb_path: Path) -> str:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    parts = []
    for cell in nb["cells"]:
        src = _src(cell)
        if {"hide", "exporti", "export"} & _directives(src): continue
        if cell["cell_type"] == "markdown": parts.append(src.strip())
        elif cell["cell_type"] == "code":
            code = "\n".join(l for l in src.splitlines() if not l.startswith("#|")).strip()
            if code: parts.append(f"```python\n{code}\n```")
            for out in cell.get("outputs", []):
                text = out.get("text") or out.get("data", {}).get("text/plain")
                if text: parts.append("    " + "".join(text).rstrip().replace("\n", "\n    "))
    return HEADER + "\n\n".join(p for p in parts if p) + "\n"


def parser() -> argparse.ArgumentParser:
    "The command line of this script."
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if README.md differs from the notebook")
    return ap


def main():
    args = parser().parse_args()
    text, readme = render(ROOT / "nbs" / "index.ipynb"), ROOT / "README.md"
    if args.check:
        if not readme.exists() or readme.read_text(encoding="utf-8") != text:
            sys.exit("README.md is out of date with nbs/index.ipynb: run `python tools/readme.py` and commit it.")
        print("README.md matches nbs/index.ipynb")
    else:
        readme.write_text(text, encoding="utf-8")
        print(f"wrote {readme}")


if __name__ == "__main__": main()
