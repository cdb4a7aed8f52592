"""Build the documentation site into `_site/` without Quarto: `python tools/docs.py`.

`nbdev-docs` runs nbdev's notebook processors and hands the result to Quarto. This script runs the same
processors (show_doc for every exported name, `#| hide` / `#| export` / `#| default_exp` cells removed,
backticked names linked to their docs) and hands the result to Sphinx with MyST-NB instead:

1. each notebook in `nbs/` is executed in its own process (a fresh fork of one that imported torch and transformers
   once: `tools/warm.py`), as `nbdev-test` runs it (cells flagged with the
   `tst_flags` of `pyproject.toml`, e.g. `#| slow`, are skipped and keep any stored output, unless `--flags slow`
   forces them), with a `show_doc` cell after each exported definition, so that figures and API docs are current;
   each notebook's verdict (passed, or the failing cell's traceback) is written to `build/notebook-runs.json`, which
   `tests/test_notebooks.py` reads instead of running the notebooks again when `DISTILL_L2S_NOTEBOOK_RUNS` names it
   (what CI does: every notebook runs once);
2. nbdev's docs processors turn it into the notebook Quarto would get; Quarto cell options (`#| echo: false`,
   `#| code-fold`, ...) become MyST-NB cell tags; it is staged under `build/docs/` with the page name nbdev
   gives it (`00_align.ipynb` -> `align`), so nbdev's doc links resolve;
3. Sphinx (config in `docs/conf.py`, Furo theme) renders the staged pages into `_site/`, the index notebook
   as home, top-level notebooks as the library section, each sub-folder (`nbs/tutorials/`) as its own section;
   links to the hosted docs site (`doc_host` + `doc_baseurl`) are made relative so the site works offline.
"""
import argparse
import hashlib
import importlib.util
import json
import os
import queue
import re
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "build" / "docs"
RUNS = ROOT / "build" / "notebook-runs.json"  # each notebook's verdict from the last build (see `write_runs`)
RUNS_FORMAT = 1
ASSETS = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".csv", ".tsv", ".json", ".txt", ".wav", ".mp3"}
_QUARTO_TAGS = {("echo", "false"): "remove-input", ("output", "false"): "remove-output",
                ("include", "false"): "remove-cell", ("code-fold", "true"): "hide-input",
                ("code-fold", "show"): "hide-input"}
_CELL_KEYS = {"code": {"cell_type", "id", "metadata", "source", "outputs", "execution_count"},
              "markdown": {"cell_type", "id", "metadata", "source", "attachments"},
              "raw": {"cell_type", "id", "metadata", "source", "attachments"}}


def page_name(rel: Path) -> Path:
    "Staged path of the notebook at `rel` (relative to nbs/): nbdev's page name, as a notebook."
    from nbdev.config import nbpath2html
    return nbpath2html(rel).with_suffix(".ipynb")


def find_notebooks(nbs: Path) -> list[Path]:
    "Notebooks under `nbs` that nbdev puts on the site (folders starting with `_` or `.` skipped), index first."
    nbs_ = [p.relative_to(nbs) for p in nbs.rglob("*.ipynb")]
    nbs_ = [p for p in nbs_ if not any(part.startswith(("_", ".")) for part in p.parts)]
    return sorted(nbs_, key=lambda p: (len(p.parts) > 1, p.parent.as_posix(), p.name != "index.ipynb", p.name))


def summary(nb_path: Path) -> tuple[str|None, list[str]]:
    "The `>` summary of a notebook's title cell as nbdev reads it (one line), and the lines that continue it, which nbdev drops."
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    md = next((c for c in nb["cells"] if c["cell_type"] == "markdown"), None)
    lines = ("".join(md["source"]) if md else "").splitlines()
    at = next((i for i, l in enumerate(lines) if re.match(r">\s+\S", l)), None)
    if at is None: return None, []
    rest = []
    for l in lines[at + 1:]:  # a `>` line or any text right under it continues the quote in Markdown
        if not l.strip() or re.match(r"-\s+\S.*:", l): break
        rest.append(l)
    return lines[at][1:].strip(), rest


def check_summaries(nbs: Path, rels: list[Path]):
    "Stop when a notebook's summary spans several lines: nbdev's frontmatter, and so either site, would show only the first."
    bad = [f"  {rel}: {len(rest) + 1} lines, from {s!r}" for rel in rels for s, rest in [summary(nbs / rel)] if rest]
    if bad: raise SystemExit("notebook summaries (`> ...` under the title) must be one line; nbdev keeps only the first:\n"
                             + "\n".join(bad))


# ---------------------------------------------------------------- the record of notebook runs
def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def library_digest(root: Path = ROOT) -> str:
    "SHA-256 over the files of the library package (`lib_path`): a notebook's run depends on them as well as on itself."
    from nbdev.config import get_config
    lib = Path(get_config(root).lib_path)
    h = hashlib.sha256()
    for f in sorted(p for p in lib.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"):
        h.update(f.relative_to(lib).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def write_runs(path: Path, skip_flags: list[str], force_flags: list[str], library: str, runs: dict):
    """Write each notebook's verdict to `path`: `{"notebooks": {rel: {"ok", "error", "seconds", "sha256"}}}`, with the
    flags its cells were skipped or forced by and the `library_digest` at the start of the build. A reader takes a
    verdict only while the notebook and the library are the ones that were run (see `tests/test_notebooks.py`)."""
    rec = {"format": RUNS_FORMAT, "skip_flags": sorted(skip_flags), "force_flags": sorted(force_flags), "library": library,
           "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "notebooks": runs}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(rec, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def recorded_run(path: Path, nb: Path, nbs: Path, skip_flags: list[str], force_flags: list[str], root: Path = ROOT) -> dict|None:
    """The verdict on notebook `nb` (under `nbs`) recorded in `path` by a build that ran it with these flags, the same
    notebook and the same library; None when there is none, so the caller runs the notebook itself."""
    try: rec = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError): return None
    if not isinstance(rec, dict) or rec.get("format") != RUNS_FORMAT: return None
    if rec.get("skip_flags") != sorted(skip_flags) or rec.get("force_flags") != sorted(force_flags): return None
    run = rec.get("notebooks", {}).get(Path(nb).relative_to(nbs).as_posix())
    if not isinstance(run, dict) or run.get("sha256") != file_sha256(nb): return None
    if rec.get("library") != library_digest(root): return None
    return run


# ---------------------------------------------------------------- one notebook (runs in its own process)
def _link_notebooks(md: str) -> str:
    "Point relative links to notebooks (`../00_align.ipynb#x`) at their staged page names."
    def sub(m):
        p = Path(m.group(1))
        return f"]({(p.parent / page_name(Path(p.name))).as_posix()}{m.group(2) or ''})"
    return re.sub(r"\]\((?!\w+:)([^)\s#]+\.ipynb)(#[^)\s]*)?\)", sub, md)


def _unlink_private(md: str) -> str:
    "Drop nbdev's links to private names (`_helper`): nbdev documents no private name, so their anchors never exist."
    def sub(m):
        last = m.group(2).rsplit(".", 1)[-1]
        return f"`{m.group(1)}`" if last.startswith("_") and not last.startswith("__") else m.group(0)
    return re.sub(r"\[`([^`]+)`\]\([^)\s]+#([^)\s]+)\)", sub, md)


def _callouts(md: str) -> str:
    "Quarto callouts (`::: {.callout-note}`) as MyST admonitions (`:::{note}`)."
    return re.sub(r"^(:::+)\s*\{\.callout-(note|tip|warning|important|caution)[^}]*\}\s*$", r"\1{\2}", md, flags=re.M)


def _anchor(m: re.Match) -> str:
    "A show_doc heading with the anchor nbdev's links use (`#scaler.__call__`), where MyST's slug (`scaler__call__`) differs."
    anchor = m.group(2).lower()
    return m.group(0) if re.fullmatch(r"[\w-]+", anchor) else f'<div id="{anchor}"></div>\n\n{m.group(0)}'


def _quarto_to_myst(nb):
    "Turn the Quarto-ready notebook nbdev made into one MyST-NB renders the same way."
    from fastcore.nbio import mk_cell
    fm = getattr(nb, "frontmatter_", {}) or {}
    cells = []
    for c in nb.cells:
        if c.cell_type == "raw" and c.source.startswith("---"):  # FrontmatterProc's YAML header -> title + summary
            head = f"# {fm['title']}" if fm.get("title") else ""
            if fm.get("description"): head += f"\n\n{{.description}}\n{fm['description']}"
            if head: cells.append(mk_cell(head, "markdown"))
            continue
        if c.cell_type == "code":
            lines, tags = c.source.splitlines(), set(c.metadata.get("tags", []))
            while lines and lines[0].startswith("#|"):
                k, _, v = lines.pop(0)[2:].partition(":")
                if (tag := _QUARTO_TAGS.get((k.strip(), v.strip().strip('"').lower()))): tags.add(tag)
            c.source = "\n".join(lines).strip()
            if not c.source and not c.get("outputs"): continue
            for o in c.get("outputs", []):
                md = o.get("data", {}).get("text/markdown")
                if md is None: continue
                md = "".join(md) if isinstance(md, list) else md
                md = _unlink_private(md)
                if md.startswith("---\n"): md, tags = md[4:].lstrip(), tags | {"show-doc"}  # the rule is drawn by CSS
                o["data"]["text/markdown"] = re.sub(r"^(#+) (\S+)$", _anchor, md, count=1, flags=re.M)
            if tags: c.metadata["tags"] = sorted(tags)
        elif c.cell_type == "markdown": c.source = _callouts(_link_notebooks(_unlink_private(c.source)))
        for k in list(c.keys()):
            if k not in _CELL_KEYS[c.cell_type]: del c[k]
        c.metadata.pop("language", None)
        c.metadata.pop("execution", None)  # execnb's timings, not valid nbformat
        cells.append(c)
    nb.cells = cells
    nb.metadata.setdefault("language_info", {"name": "python", "pygments_lexer": "ipython3"})
    return nb


def process_notebook(src: Path, dst: Path, skip_flags: list[str], force_flags: list[str] = (), verdict: Path|None = None):
    """Execute the notebook at `src` as nbdev-test would, apply nbdev's docs processors, write it to `dst`; the
    execution's verdict (`ok`, `error`: the failing cell's traceback, `seconds`) goes to the JSON file `verdict`."""
    from fastcore.nbio import read_nb, write_nb, dict2nb
    from fastcore.xtras import working_directory
    from execnb.shell import CaptureShell
    from nbdev.process import NBProcessor
    from nbdev.processors import FilterDefaults, populate_language, add_show_docs, insert_warning, exec_show_docs, _do_eval
    from nbdev.test import _skip_cell

    os.environ["IN_TEST"] = "1"  # as nbdev-docs and nbdev-test set it
    sys.path.insert(0, str(ROOT))
    nb = read_nb(src)
    # 1. a show_doc cell after each exported definition, then run every cell nbdev-test would run, plus the
    #    exports, imports and show_docs nbdev-docs runs (`_do_eval`): outputs and figures are fresh
    NBProcessor(nb=nb, procs=[populate_language, add_show_docs], rm_directives=False).process()
    test_skips = _skip_cell(nb, skip_flags, force_flags)
    shell = CaptureShell(src, mpl_format="retina")
    shell.run_cell("from nbdev.showdoc import show_doc")
    t = time.time()
    with working_directory(src.parent):
        try: shell.run_all(nb, exc_stop=True, preproc=lambda c: test_skips(c) and not _do_eval(c), cell_timeout=600)
        except Exception as e:
            error = shell.prettytb(fname=src) or f"{type(e).__name__}: {e}"
            if verdict: Path(verdict).write_text(json.dumps({"ok": False, "error": error, "seconds": time.time() - t}))
            raise SystemExit(f"{src}: a cell failed while building the docs:\n{error}") from e
    if verdict: Path(verdict).write_text(json.dumps({"ok": True, "error": "", "seconds": time.time() - t}))
    # 2. the rest of nbdev-docs' processing (hide, remove exports, frontmatter, doc links, ...), minus execution
    # execution leaves plain dicts in cells, nbdev's processors want attributes: rebuild (nbdev's `*_` keys are recomputed)
    nb = dict2nb({**{k: v for k, v in nb.items() if k != "cells"},
                  "cells": [json.loads(json.dumps({k: v for k, v in c.items() if not k.endswith("_")})) for c in nb.cells]})
    done = {add_show_docs, insert_warning, exec_show_docs}
    NBProcessor(nb=nb, procs=[p for p in FilterDefaults().procs() if p not in done], rm_directives="quarto").process()
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_nb(_quarto_to_myst(nb), dst)


# ---------------------------------------------------------------- the site
def _toctree(caption: str, pages: list[str]) -> str:
    return "\n".join(["```{toctree}", ":hidden:", ":maxdepth: 2", f":caption: {caption}", "", *pages, "```"])


def _section_name(folder: str) -> str:
    return re.sub(r"^\d+[a-zA-Z0-9]*_", "", folder).replace("_", " ").capitalize()


def _longest_first(rels: list[Path], nbs: Path) -> list[Path]:
    "`rels` with the notebooks that took longest in the last build (RUNS) first, so parallel jobs end together."
    try: secs = {k: v["seconds"] for k, v in json.loads(RUNS.read_text(encoding="utf-8"))["notebooks"].items()}
    except (OSError, ValueError, KeyError, TypeError): return rels
    return sorted(rels, key=lambda r: -secs.get(r.as_posix(), float("inf")))  # new notebooks first: their time is unknown


def _load_warm():
    "tools/warm.py, beside this script, also when this script is loaded from its path."
    spec = importlib.util.spec_from_file_location("warm_tool", Path(__file__).with_name("warm.py"))
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def stage(nbs: Path, jobs: int, flags: list[str] = ()) -> list[Path]:
    """Process every notebook of `nbs` into STAGE (in parallel processes), cells flagged with `tst_flags` skipped
    unless in `flags`; each notebook's verdict goes to RUNS. Returns the staged notebooks."""
    from nbdev.config import get_config
    cfg = get_config(ROOT)
    force_flags = sorted(set(flags))
    skip_flags = [f for f in str(cfg.get("tst_flags", "")).split() if f not in force_flags]
    rels = find_notebooks(nbs)
    order = _longest_first(rels, nbs)
    RUNS.unlink(missing_ok=True)  # no verdicts from an earlier build survive this one
    if STAGE.exists(): shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True)
    library = library_digest(ROOT)
    if not rels or rels[0] != Path("index.ipynb"): raise SystemExit(f"{nbs}/index.ipynb is missing: it is the home page")
    check_summaries(nbs, rels)
    for p in nbs.rglob("*"):  # images and other files the notebooks show
        rel = p.relative_to(nbs)
        if p.is_file() and p.suffix.lower() in ASSETS and not any(s.startswith(("_", ".")) for s in rel.parts):
            (STAGE / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, STAGE / rel)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "TOKENIZERS_PARALLELISM": "false",  # one OpenMP thread a notebook, as the tests run them (tests/conftest.py)
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}

    verdicts = STAGE.parent / "verdicts"
    shutil.rmtree(verdicts, ignore_errors=True)
    verdicts.mkdir(parents=True)

    warm = _load_warm()
    runners = queue.SimpleQueue()  # one warm server a job: each notebook runs in a fresh fork of one (tools/warm.py)
    for _ in range(max(1, jobs)): runners.put(warm.WarmRunner(env=env))

    def one(rel):
        t, sha = time.time(), file_sha256(nbs / rel)  # the notebook as it was run
        v = verdicts / f"{rel.as_posix().replace('/', '__')}.json"
        runner = runners.get()
        try: r = runner.run([__file__, "--one", str(nbs / rel), str(STAGE / page_name(rel)), " ".join(skip_flags),
                             "--flags", " ".join(force_flags), "--verdict", str(v)])
        finally: runners.put(runner)
        try: run = json.loads(v.read_text())
        except (OSError, ValueError):  # it died before or while running its cells: its output says why
            run = {"ok": False, "error": f"exit code {r.returncode}\n{r.stdout[-3000:]}{r.stderr[-8000:]}", "seconds": time.time() - t}
        print(f"  {rel}: {time.time() - t:.1f} s{'' if run['ok'] else ' (FAILED)'}", flush=True)
        return rel, r, run | {"sha256": sha}

    failed, runs = [], {}
    try:
        with ThreadPoolExecutor(max(1, jobs)) as ex:
            for rel, r, run in ex.map(one, order):
                runs[rel.as_posix()] = run
                if r.returncode != 0: failed.append(f"{rel}:\n{r.stdout[-3000:]}{r.stderr[-6000:]}")
    finally:
        while not runners.empty(): runners.get().close()
    write_runs(RUNS, skip_flags, force_flags, library, {k: runs[k] for k in sorted(runs)})
    if failed: raise SystemExit("notebooks failed to build:\n" + "\n".join(failed))

    # the index notebook is the home page and carries the navigation: top-level pages, then one section a folder
    sections = {}
    for rel in rels[1:]: sections.setdefault(rel.parent.as_posix(), []).append(page_name(rel).with_suffix("").as_posix())
    trees = [_toctree("Library" if d == "." else _section_name(d), pages) for d, pages in sections.items()]
    index = STAGE / "index.ipynb"
    nb = json.loads(index.read_text(encoding="utf-8"))
    for i, t in enumerate(trees): nb["cells"].append({"cell_type": "markdown", "id": f"toctree{i}", "metadata": {}, "source": t})
    index.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return [STAGE / page_name(r) for r in rels]


def _relative_site_links(out: Path, site_url: str):
    "Rewrite links to the hosted docs site into links relative to each page, so the built site stands alone."
    if not site_url: return
    pat = re.compile(r'href="' + re.escape(site_url.rstrip("/")) + r'/([^"]*)"')
    for page in out.rglob("*.html"):
        up = "../" * (len(page.relative_to(out).parts) - 1)
        html = page.read_text(encoding="utf-8")
        new = pat.sub(lambda m: f'href="{up}{m.group(1) or "index.html"}"', html)
        if new != html: page.write_text(new, encoding="utf-8")


def build(out: Path = ROOT / "_site", jobs: int = os.cpu_count() or 1, flags: list[str] = ()) -> Path:
    "Build the whole site into `out` (cells flagged with one of `flags` run too); returns `out`."
    from sphinx.cmd.build import build_main
    from nbdev.config import get_config
    cfg = get_config(ROOT)
    if out.exists() and any(out.iterdir()) and not (out / ".nojekyll").exists():
        raise SystemExit(f"{out} exists and holds something other than a site built by this script: choose another --out")
    t = time.time()
    print(f"executing and processing notebooks in {cfg.nbs_path} ({jobs} at a time)", flush=True)
    stage(Path(cfg.nbs_path), jobs, flags)
    print(f"notebooks done in {time.time() - t:.1f} s; rendering with Sphinx", flush=True)
    html = STAGE.parent / "html"  # MyST-NB keeps scratch files beside Sphinx's output folder: render inside build/, then copy
    for d in (html, out): shutil.rmtree(d, ignore_errors=True)
    rc = build_main(["-b", "html", "-q", "-c", str(ROOT / "docs"), "-d", str(STAGE.parent / "doctrees"), str(STAGE), str(html)])
    if rc: raise SystemExit(f"sphinx-build failed with exit code {rc}")
    shutil.copytree(html, out)
    _relative_site_links(out, f"{cfg.get('doc_host', '')}{cfg.get('doc_baseurl', '')}")
    (out / ".nojekyll").touch()
    print(f"site written to {out} in {time.time() - t:.1f} s: open {out / 'index.html'}")
    return out


def parser() -> argparse.ArgumentParser:
    "The command line of this script."
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "_site", help="output folder (default: _site)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="notebooks executed at a time")
    ap.add_argument("--flags", default="", help="run the notebook cells flagged with these tst_flags too, as "
                    "`pytest --flags` does (comma- or space-separated, e.g. slow)")
    ap.add_argument("--one", nargs=3, metavar=("SRC", "DST", "SKIP_FLAGS"), help=argparse.SUPPRESS)
    ap.add_argument("--verdict", type=Path, help=argparse.SUPPRESS)
    return ap


def main():
    args = parser().parse_args()
    flags = args.flags.replace(",", " ").split()
    if args.one: process_notebook(Path(args.one[0]), Path(args.one[1]), args.one[2].split(), flags, args.verdict)
    else: build(args.out.resolve(), args.jobs, flags)


if __name__ == "__main__": main()
