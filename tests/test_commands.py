"""Every command line the README, the notebooks (tutorials included) and the other Markdown pages show goes through
the argument parser of the command it names: nothing is run, only parsed, so a documented command cannot drift
from the CLI it documents.

Where commands are found: fenced `sh`/`bash`/`shell`/`console` blocks in Markdown files and notebook Markdown cells,
`!` lines and `%%bash` cells in notebook code cells, and inline code spans that start with one of our commands.
A command is ours when it is a console script of `pyproject.toml` (`distill-l2s-*`, parsed with fastcore's
`anno_parser` of the function the script calls) or `python <a script of this repository>` (parsed with the
script's `parser()`, or by its `main()` stopped right after its `parse_args`). Other programs (pip, pytest, tar, ...) must be listed in `OTHER_PROGRAMS`, so that a new or
misspelt command is noticed instead of skipped.
"""
import argparse
import contextlib
import functools
import importlib
import importlib.util
import io
import json
import re
import shlex
import sys
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHELL_FENCES = {"sh", "bash", "shell", "console", "zsh"}
OTHER_PROGRAMS = {"pip", "apt-get", "mkdir", "tar", "cd", "git", "bash", "nbdev-export", "nbdev-clean", "nbdev-preview",
                  "nbdev-docs", "nbdev-test", "quarto", "echo"}
PYTHON_MODULES = {"pytest", "http.server", "pip"}  # `python -m <module>`: not ours
WRAPPERS = {"nice", "time", "nohup", "env"}  # prefixes before the real program (their own options are skipped)
PLACEHOLDER = re.compile(r"\.\.\.|<[^>]+>")  # `distill-l2s-train ...`, `--student <name>`: prose, not a command line


def _scripts() -> dict[str, str]:
    "Console script name -> 'module:function', from pyproject.toml."
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r"^\[project\.scripts\]\n(.*?)(?:^\[|\Z)", text, re.S | re.M).group(1)
    return dict(re.findall(r'^([\w-]+)\s*=\s*"([^"]+)"', block, re.M))


SCRIPTS = _scripts()


# ---------------------------------------------------------------- finding command lines
def _shell_lines(script: str) -> list[str]:
    "Logical lines of a shell snippet: continuations joined, `$ ` prompts dropped, blank lines and comments left out."
    out = []
    for line in script.replace("\\\n", " ").splitlines():
        line = line.strip()
        if line.startswith("$ "): line = line[2:]
        if line and not line.startswith("#"): out.append(line)
    return out


def _markdown_commands(md: str) -> list[str]:
    "Shell lines of the fenced shell blocks in `md`, and inline code spans that start with one of our commands."
    lines = []
    for m in re.finditer(r"^```+\s*([\w-]*)[^\n]*\n(.*?)^```+", md, re.S | re.M):
        if m.group(1).lower() in SHELL_FENCES: lines += _shell_lines(m.group(2))
    prose = re.sub(r"^```.*?^```", "", md, flags=re.S | re.M)
    for span in re.findall(r"`([^`\n]+)`", prose):
        words = span.split()
        first = words[0] if len(words) > 1 else ""  # a bare `distill-l2s-train` names the command in prose
        if (first in SCRIPTS or (first == "python" and ".py" in span)) and not PLACEHOLDER.search(span): lines.append(span)
    return lines


def _notebook_commands(nb: dict) -> list[str]:
    "Command lines of a notebook: Markdown cells as Markdown, `!` lines and `%%bash` cells of code cells."
    lines = []
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown": lines += _markdown_commands(src)
        elif cell["cell_type"] == "code":
            if src.lstrip().startswith("%%bash"): lines += _shell_lines(src.lstrip().split("\n", 1)[-1])
            else: lines += [l.strip()[1:] for l in src.replace("\\\n", " ").splitlines() if l.strip().startswith("!")]
    return lines


def documented_files() -> list[Path]:
    "The README, every notebook and every Markdown page of the repository (build outputs left out)."
    skip = {"_site", "_docs", "build", ".git", ".ipynb_checkpoints", "node_modules"}
    files = [ROOT / "README.md"]
    for pattern in ("nbs/**/*.ipynb", "docs/**/*.md", "benchmarks/**/*.md"):
        files += [p for p in sorted(ROOT.glob(pattern)) if not skip & set(p.relative_to(ROOT).parts)]
    return files


def documented_commands() -> list[tuple[str, str]]:
    "(where, command line) for every command line in `documented_files`, in file order."
    out = []
    for f in documented_files():
        text = f.read_text(encoding="utf-8")
        lines = _notebook_commands(json.loads(text)) if f.suffix == ".ipynb" else _markdown_commands(text)
        out += [(str(f.relative_to(ROOT)), l) for l in lines]
    return out


# ---------------------------------------------------------------- splitting a line into simple commands
def _simple_commands(line: str) -> list[list[str]]:
    "The simple commands of a shell line (split at `&&`, `||`, `;`, `|`), as argument lists."
    line = re.sub(r"\$\([^)]*\)", "SUBSTITUTED", line)  # `$(mktemp -d)`: one word for the command line around it
    lex = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lex.whitespace_split, lex.commenters = True, "#"
    cmds, cur = [], []
    for tok in lex:
        if tok and set(tok) <= set(";&|"):
            if cur: cmds.append(cur)
            cur = []
        else: cur.append(tok)
    if cur: cmds.append(cur)
    return cmds


def _program(argv: list[str]) -> tuple[str, list[str]]:
    "The program a simple command runs and its arguments: environment assignments and wrappers dropped, torchrun unwrapped."
    i = 0
    while i < len(argv) and re.fullmatch(r"[A-Za-z_]\w*=.*", argv[i]): i += 1
    argv = argv[i:]
    while argv and argv[0] in WRAPPERS:
        argv = argv[1:]
        while argv and argv[0].startswith("-"): argv = argv[2:] if argv[0] in ("-n",) else argv[1:]
    if argv and argv[0] == "torchrun":  # torchrun [options] --no-python <script> args
        at = next((k for k, a in enumerate(argv) if a in SCRIPTS), None)
        if at is None: raise AssertionError(f"torchrun without one of our commands: {' '.join(argv)}")
        argv = argv[at:]
    return (argv[0], argv[1:]) if argv else ("", [])


# ---------------------------------------------------------------- parsing with the command's own parser
@functools.cache
def _console_parser(name: str):
    from fastcore.script import anno_parser
    module, func = SCRIPTS[name].split(":")
    f = getattr(importlib.import_module(module), func)
    return anno_parser(getattr(f, "__wrapped__", f), prog=name)


class _Parsed(Exception): "Raised by the patched `parse_args`: the script parsed its arguments and must not go on."


@functools.cache
def _script_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"_doc_script_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # as an import: its `if __name__ == "__main__"` block does not run
    return mod


def _parse_script(path: Path, args: list[str]):
    "Parse `args` as the script at `path` would: with its `parser()`, or by calling its `main()` up to its `parse_args`."
    mod = _script_module(path)
    if hasattr(mod, "parser"): return mod.parser().parse_args(args)
    if not hasattr(mod, "argparse"):  # a script without options
        if args: raise SystemExit(f"{path.name} takes no arguments, got {args}")
        return None
    if not hasattr(mod, "main"): raise AssertionError(f"{path.relative_to(ROOT)}: neither parser() nor main() to check it with")
    real = argparse.ArgumentParser.parse_args
    def parse_then_stop(self, a=None, namespace=None):
        real(self, args, namespace)
        raise _Parsed
    with mock.patch.object(argparse.ArgumentParser, "parse_args", parse_then_stop), mock.patch.object(sys, "argv", [str(path), *args]):
        try: mod.main()
        except _Parsed: return None
    raise AssertionError(f"{path.relative_to(ROOT)}: main() returned without parsing its arguments")


def check_command(argv: list[str]) -> str|None:
    "Parse one simple command with its program's parser: None if it parses or is not ours, else the parser's complaint."
    prog, args = _program(argv)
    if not prog: return None
    if prog in ("python", "python3"):
        if args[:1] == ["-m"]:
            if args[1] in PYTHON_MODULES: return None
            return f"python -m {args[1]}: not a module this test knows (add it to PYTHON_MODULES if it is not ours)"
        if not args or not args[0].endswith(".py"): return None  # python -c ..., an interactive python
        path = ROOT / args[0]
        if not path.is_file(): return f"{args[0]}: no such script in the repository"
        parse = lambda: _parse_script(path, args[1:])
    elif prog in SCRIPTS: parse = lambda: _console_parser(prog).parse_args(args)
    elif prog.startswith("distill-l2s"): return f"{prog}: not a console script of pyproject.toml ({', '.join(SCRIPTS)})"
    elif prog in OTHER_PROGRAMS: return None
    else: return f"{prog}: a program this test does not know; add it to OTHER_PROGRAMS if it is not ours"
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()): parse()
    except SystemExit as e:
        if e.code not in (0, None):
            return err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else str(e.code)
    return None


# ---------------------------------------------------------------- the tests
def test_every_documented_command_parses():
    found = documented_commands()
    ours = [(w, c) for w, c in found for argv in _simple_commands(c) if _program(argv)[0] in SCRIPTS
            or (_program(argv)[0] == "python" and _program(argv)[1][:1] != ["-m"])]
    where = {w for w, _ in ours}
    # the extraction itself: the README's and the tutorials' commands are found
    assert "README.md" in where and any(w.startswith("nbs/tutorials/") for w in where), sorted(where)
    assert len(ours) >= 20, ours
    bad = [f"{w}: {c}\n    -> {msg}" for w, c in found for argv in _simple_commands(c) if (msg := check_command(argv))]
    assert not bad, "documented commands that their CLI rejects:\n" + "\n".join(bad)


@pytest.mark.parametrize("line,complaint", [
    ("distill-l2s-eval runs/ta/model cv/ta test", "unrecognized arguments: test"),  # the README's old eval line
    ("distill-l2s-train cv/ta", "the following arguments are required: output_dir"),
    ("distill-l2s-train cv/ta runs/x --lam half", "invalid float value"),
    ("distill-l2s-trian cv/ta runs/x", "not a console script"),
    ("torchrun --nproc_per_node 2 --no-python distill-l2s-train cv/ta runs/x --lamb 1", "unrecognized arguments"),
    ("python benchmarks/paper/run_paper.py --out x", "the following arguments are required: --cv-root"),
    ("python benchmarks/nothing.py", "no such script"),
    ("wget http://example.com", "does not know"),
    ("X=$(mktemp -d) distill-l2s-demo --stepz 3", "unrecognized arguments: --stepz"),
])
def test_a_wrong_command_is_caught(line, complaint):
    msgs = [m for argv in _simple_commands(line) if (m := check_command(argv))]
    assert msgs and complaint in msgs[0], msgs


def test_extraction():
    md = ("Run\n\n```bash\nCV=data/cv  # the release\nnice -n 5 distill-l2s-demo --steps 5 \\\n    --langs sw && echo done\n```\n"
          "```python\ndistill-l2s-demo --bogus\n```\nthen `distill-l2s-demo --help` or `distill-l2s-train ...`; `distill-l2s-eval` scores.\n")
    lines = _markdown_commands(md)
    assert lines == ["CV=data/cv  # the release", "nice -n 5 distill-l2s-demo --steps 5      --langs sw && echo done",
                     "distill-l2s-demo --help"], lines
    assert [_program(a) for a in _simple_commands(lines[1])] == [("distill-l2s-demo", ["--steps", "5", "--langs", "sw"]),
                                                                ("echo", ["done"])]
    nb = {"cells": [{"cell_type": "code", "source": "%%bash\ndistill-l2s-demo --steps 1\n"},
                    {"cell_type": "code", "source": ["x = 1\n", "!distill-l2s-eval m d --split dev\n"]}]}
    assert _notebook_commands(nb) == ["distill-l2s-demo --steps 1", "distill-l2s-eval m d --split dev"]
