"""`benchmarks/paper/run_paper.py` end to end on tiny models: two Common Voice-style languages, baseline and
Distill-L2S each, one table; a second call skips the finished runs; a second seed gives mean ± std; bad arguments
are refused before any training. Runs over two processes each (torchrun, gloo on the CPU) land in the table too:
`test_runs_over_two_processes`, slow (every run starts three processes), `pytest --flags slow`."""
import json
import os
from pathlib import Path

import pytest
from conftest import warm_run

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "paper" / "run_paper.py"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
       "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}


def paper(*args, check=True):
    r = warm_run([SCRIPT, *map(str, args)], ENV, timeout=900)
    if check and r.returncode != 0: raise AssertionError(f"exit {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return r


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from distill_l2s.data import write_cv_fixture
    from distill_l2s.train import save_tiny_teacher
    d = tmp_path_factory.mktemp("paper")
    words = "the cat sat on a mat dog ran far away red sun".split()
    s = [" ".join(words[(i * 5 + k) % len(words)] for k in range(2 + i % 3)) for i in range(12)]
    for lang in ("cs", "pt"):
        write_cv_fixture(d / "cv", {"train": [dict(sentence=t, duration=1.0 + 0.1 * i) for i, t in enumerate(s[:8])],
                                    "dev": [dict(sentence=t, duration=1.2) for t in s[8:10]],
                                    "test": [dict(sentence=t, duration=1.1) for t in s[10:12]]}, lang=lang)
    return dict(cv=d / "cv", out=d / "out", teacher=save_tiny_teacher(d / "teacher"))


@pytest.mark.slow  # four tiny trainings through the script (about 2 min of the default run); CI runs it with the slow tests
def test_paper_protocol_on_tiny_models(setup):
    common = ["--cv-root", setup["cv"], "--out", setup["out"], "--preset", "tiny", "--teacher", setup["teacher"]]
    r = paper(*common, "--langs", "cs,pt")
    out = setup["out"]
    for lang in ("cs", "pt"):
        for arm in ("baseline_seed42", "distill_lam0.5_seed42"):
            res = json.loads((out / lang / arm / "results.json").read_text())
            assert res["language"] == lang and res["steps"] == 8
    assert all((out / l / "teacher_cache").is_dir() for l in ("cs", "pt"))  # shared by the λ > 0 runs of a language
    md = (out / "results.md").read_text()
    assert md.count("\n| cs |") == 1 and md.count("\n| pt |") == 1 and "### λ = 0.5" in md and "Distill-L2S CER" in md, md
    runs = json.loads((out / "results.json").read_text())["runs"]  # 8 steps: judged by their logs (here: did not learn)
    assert len(runs) == 4 and all(r["learning"]["learned"] is False for r in runs), runs
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert {(r["lang"], r["arm"]) for r in rows} == {(l, a) for l in ("cs", "pt") for a in ("baseline", "distill")}
    # again: nothing to train
    r = paper(*common, "--langs", "cs,pt")
    assert r.stdout.count("finished before") == 4 and "training " + str(out) not in r.stdout
    # a second seed of Czech
    r = paper(*common, "--langs", "cs", "--seeds", "43")
    res = json.loads((out / "cs" / "distill_lam0.5_seed43" / "results.json").read_text())
    assert res["world_size"] == 1 and res["language"] == "cs"
    r = paper(*common, "--langs", "cs", "--seeds", "42,43", "--report-only")
    assert "| cs | " in r.stdout and " ± " in r.stdout  # two seeds: mean ± std


@pytest.mark.slow
def test_runs_over_two_processes(setup):
    "With --procs 2 every run goes through torchrun over two processes, and lands in the table."
    out = setup["out"] / "procs2"
    paper("--cv-root", setup["cv"], "--out", out, "--preset", "tiny", "--teacher", setup["teacher"], "--langs", "cs",
          "--seeds", "44", "--procs", "2")
    for arm in ("baseline_seed44", "distill_lam0.5_seed44"):
        res = json.loads((out / "cs" / arm / "results.json").read_text())
        assert res["world_size"] == 2 and res["steps"] == 8
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert {(r["lang"], r["arm"]) for r in rows} == {("cs", "baseline"), ("cs", "distill")}


def test_paper_bad_arguments(setup):
    r = paper("--cv-root", setup["cv"], "--out", setup["out"] / "bad", "--langs", "cs,xx", check=False)
    assert r.returncode == 2 and "no Common Voice folder (with train.tsv) for xx" in r.stderr, r.stderr
    r = paper("--cv-root", setup["cv"], "--out", setup["out"] / "bad", "--langs", "cs", "--lams", "0", check=False)
    assert r.returncode == 2 and "every λ must be > 0" in r.stderr
    r = paper("--cv-root", setup["cv"], "--out", setup["out"] / "dry", "--langs", "cs", "--dry-run")
    assert r.stdout.count("--preset paper") == 2 and not (setup["out"] / "dry" / "cs").exists()
