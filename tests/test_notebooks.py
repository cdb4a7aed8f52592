"""Every notebook in `nbs/` is one test item, run in its own process with nbdev's notebook runner (a fresh fork of a
process that imported torch and transformers once: `tools/warm.py`).

Building the docs site (`python tools/docs.py`) runs every notebook the same way and records each one's verdict in
`build/notebook-runs.json`. CI builds the site first and sets `DISTILL_L2S_NOTEBOOK_RUNS=build/notebook-runs.json`:
a notebook's test then takes the build's verdict (and fails with the recorded traceback) instead of running the
notebook a second time. The verdict counts only for the notebook, library and flags the build ran; otherwise (or
without the variable) the test runs the notebook itself.
"""
import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from conftest import warm_run, warm_tool

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
NOTEBOOKS = sorted(p for p in NBS.rglob("*.ipynb")
                   if not any(part.startswith(("_", ".")) for part in p.relative_to(NBS).parts))
RUNS_VAR = "DISTILL_L2S_NOTEBOOK_RUNS"

def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_tool", ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

docs_tool = _load_tool("docs")
_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "MPLBACKEND": "Agg", "TOKENIZERS_PARALLELISM": "false"}

_RUNNER = """
import sys
from nbdev.test import test_nb
nb, skip, force, root = sys.argv[1:5]
ok, secs = test_nb(nb, skip_flags=skip.split(), force_flags=force.split(), basepath=root)
print(f"{nb}: {secs:.1f}s")
sys.exit(0 if ok else 1)
"""


def _tst_flags() -> list[str]:
    from nbdev.config import get_config
    return str(get_config(ROOT).tst_flags).split()


def check_notebook(nb: Path, nbs: Path, flags: set[str], runs: str|None = None):
    "Fail unless notebook `nb` (under `nbs`) passes: the verdict recorded in `runs` when it holds a valid one, else a run here."
    skip, force = [f for f in _tst_flags() if f not in flags], sorted(flags)
    if runs:
        run = docs_tool.recorded_run(Path(runs).resolve(), nb, nbs, skip, force)
        if run is not None:
            if not run["ok"]: pytest.fail(f"{nb.relative_to(nbs)} failed in the docs build ({runs}):\n{run['error'][-12000:]}",
                                          pytrace=False)
            return
        warnings.warn(f"{runs} holds no verdict on {nb.relative_to(nbs)} for this notebook, library and flags: running it")
    r = warm_run(["-c", _RUNNER, str(nb), " ".join(skip), " ".join(force), str(ROOT)], _ENV, cwd=nb.parent)
    if r.returncode != 0:
        pytest.fail(f"{nb.relative_to(nbs)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-12000:]}", pytrace=False)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[str(p.relative_to(NBS)) for p in NOTEBOOKS])
def test_notebook(nb: Path, flags: set[str]):
    check_notebook(nb, NBS, flags, os.environ.get(RUNS_VAR))


# ---------------------------------------------------------------- the record the docs build leaves
def _notebook(path: Path, *sources: str) -> Path:
    cells = [{"cell_type": "markdown", "id": "title", "metadata": {}, "source": f"# {path.stem}\n\n> A test notebook"}]
    cells += [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [], "source": s}
              for i, s in enumerate(sources)]
    path.write_text(json.dumps({"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                            "language": "python"}},
                                "nbformat": 4, "nbformat_minor": 5}))
    return path


_BUILD = """
import importlib.util, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("docs_tool", sys.argv[1])
docs = importlib.util.module_from_spec(spec); spec.loader.exec_module(docs)
out, skip, force = Path(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split()
for nb in map(Path, sys.argv[5:]):
    try: docs.process_notebook(nb, out / "staged" / nb.name, skip, force, out / f"{nb.stem}.verdict.json")
    except SystemExit: pass  # a failing notebook: its verdict says so
"""


def _build_runs(nbs: Path, record: Path, flags: set[str]) -> dict:
    """Run the notebooks of `nbs` as `tools/docs.py` runs each (`process_notebook`, here all in one process: importing the
    library costs seconds) and write the record it writes; returns the verdicts."""
    skip, force = [f for f in _tst_flags() if f not in flags], sorted(flags)
    library, nbs_ = docs_tool.library_digest(ROOT), sorted(nbs.glob("*.ipynb"))
    r = subprocess.run([sys.executable, "-c", _BUILD, str(ROOT / "tools" / "docs.py"), str(nbs.parent), " ".join(skip),
                        " ".join(force), *map(str, nbs_)], cwd=ROOT, capture_output=True, text=True)
    try: runs = {nb.name: json.loads((nbs.parent / f"{nb.stem}.verdict.json").read_text()) | {"sha256": docs_tool.file_sha256(nb)}
                 for nb in nbs_}
    except OSError: pytest.fail(f"no verdict written:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}", pytrace=False)
    docs_tool.write_runs(record, skip, force, library, runs)
    return runs


def test_recorded_verdicts_fail_as_the_notebook_would(tmp_path):
    "A notebook that failed in the docs build fails its test with the build's traceback; one that passed passes without a run."
    nbs, record = tmp_path / "nbs", tmp_path / "notebook-runs.json"
    nbs.mkdir()
    good = _notebook(nbs / "good.ipynb", "x = 1 + 1", "assert x == 2")
    bad = _notebook(nbs / "bad.ipynb", "x = 1 + 1", "raise ValueError('deliberately broken')")
    runs = _build_runs(nbs, record, set())
    assert runs["good.ipynb"]["ok"] and not runs["bad.ipynb"]["ok"], runs
    assert "deliberately broken" in runs["bad.ipynb"]["error"] and "Cell" in runs["bad.ipynb"]["error"]

    check_notebook(good, nbs, set(), str(record))
    with pytest.raises(pytest.fail.Exception, match="(?s)failed in the docs build.*deliberately broken"):
        check_notebook(bad, nbs, set(), str(record))
    # the verdict is taken from the record, not from a run: a record that says "passed" passes without running
    rec = json.loads(record.read_text())
    rec["notebooks"]["bad.ipynb"] = {**rec["notebooks"]["bad.ipynb"], "ok": True, "error": ""}
    record.write_text(json.dumps(rec))
    check_notebook(bad, nbs, set(), str(record))


def test_stale_or_missing_verdicts_run_the_notebook(tmp_path):
    "No verdict for this notebook, these flags or this library, or the notebook changed since: the test runs it."
    nbs, record = tmp_path / "nbs", tmp_path / "notebook-runs.json"
    nbs.mkdir()
    nb = _notebook(nbs / "nb.ipynb", "assert True")
    docs_tool.write_runs(record, _tst_flags(), [], docs_tool.library_digest(ROOT),
                         {"nb.ipynb": {"ok": True, "error": "", "seconds": 0.1, "sha256": docs_tool.file_sha256(nb)}})
    skip = _tst_flags()
    assert docs_tool.recorded_run(record, nb, nbs, skip, []) is not None
    assert docs_tool.recorded_run(record, nb, nbs, [f for f in skip if f != "slow"], ["slow"]) is None  # other flags
    assert docs_tool.recorded_run(tmp_path / "missing.json", nb, nbs, skip, []) is None
    other = _notebook(nbs / "other.ipynb", "assert True")
    assert docs_tool.recorded_run(record, other, nbs, skip, []) is None  # not in the record
    rec = json.loads(record.read_text())
    record.write_text(json.dumps(rec | {"library": "0" * 64}))
    assert docs_tool.recorded_run(record, nb, nbs, skip, []) is None  # the library changed since the build
    record.write_text(json.dumps(rec))

    _notebook(nb, "raise ValueError('broken after the build')")  # edited since: its recorded "passed" no longer counts
    assert docs_tool.recorded_run(record, nb, nbs, skip, []) is None
    with pytest.warns(UserWarning, match="holds no verdict"), \
         pytest.raises(pytest.fail.Exception, match="broken after the build"):
        check_notebook(nb, nbs, set(), str(record))


# ---------------------------------------------------------------- the warm runner the notebooks run in
def test_warm_runner_gives_each_job_a_fresh_process(tmp_path):
    "Each job runs as `python ...` would, in a process of its own that no earlier job changed; failures are reported."
    script = tmp_path / "job.py"
    script.write_text("import os, sys, json\nprint(__name__, sys.argv[1:], os.getcwd())\nprint('to stderr', file=sys.stderr)\n"
                      "print(getattr(json, 'mark', None)); json.mark = 'changed'\nsys.exit(int(sys.argv[1]))\n")
    with warm_tool.WarmRunner(env=_ENV, preload=("json",)) as w:
        server = w.proc.pid
        a = w.run([script, "0", "x"], cwd=tmp_path)
        assert (a.returncode, a.stdout, a.stderr) == (0, f"__main__ ['0', 'x'] {tmp_path}\nNone\n", "to stderr\n"), a
        b = w.run([script, "3"], cwd=tmp_path)  # json was imported by the server: the first job's change did not reach it
        assert (b.returncode, b.stdout.splitlines()[1]) == (3, "None"), b
        c = w.run(["-c", "import os; print(os.getpid()); raise ValueError('deliberately broken')"])
        assert c.returncode == 1 and int(c.stdout) not in (server, os.getpid()) and "ValueError: deliberately broken" in c.stderr
        d = w.run(["-c", "import os; os.abort()"])  # a crash ends the child, not the server
        assert d.returncode < 0 and w.run(["-c", "print(7)"]).stdout == "7\n" and w.proc.pid == server
        with pytest.raises(subprocess.TimeoutExpired): w.run(["-c", "import time; print('started', flush=True); time.sleep(60)"], timeout=2)
        assert w.run(["-c", "print(8)"]).stdout == "8\n"  # a new server took over
