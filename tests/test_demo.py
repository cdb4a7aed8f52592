"""`distill-l2s-demo` through its console script on a tiny scale: one synthesised language with a few clips,
a tiny random teacher and student, two steps per arm. Checks what it prints (a line per stage, no Trainer log
dictionaries, the table, both students' transcripts, what to do next, and a transcribe command that runs), the
table (JSON and Markdown, runs that did not learn marked), the plots, the checkpoints, that a second call reuses
the finished runs, and that `--force` trains again.
The default-size run (about ten minutes) is `test_default_size`, flagged slow: `pytest tests/test_demo.py --flags slow`.
"""
import json
import os
import shlex
from pathlib import Path

import pytest
from conftest import warm_run

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
       "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
PNG = b"\x89PNG\r\n\x1a\n"


def demo(tmp, *args):
    "Run the installed entry point `distill_l2s.demo:demo_cli` as a console-script wrapper does."
    script = tmp / "distill-l2s-demo"
    script.write_text("import sys\nfrom distill_l2s.demo import demo_cli\nsys.exit(demo_cli())\n")
    r = warm_run([script, *map(str, args)], ENV, timeout=900)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    return r


def test_script_registered():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the package supports 3.10
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["distill-l2s-demo"] == "distill_l2s.demo:demo_cli"


def test_help_documents_every_argument(tmp_path):
    h = " ".join(demo(tmp_path, "--help").stdout.split())  # argparse wraps lines
    for flag in ("--langs", "--out-dir", "--data-dir", "--teacher", "--student", "--hidden", "--layers", "--lam", "--steps",
                 "--batch-size", "--lr", "--scale", "--eval-clips", "--samples", "--seed", "--threads", "--force"):
        assert flag in h, flag
    assert "offline multilingual-e5-small" in h


@pytest.mark.slow  # the demo command on a tiny corpus (about 1.5 min); CI runs it with the slow tests; nbs/10_demo runs run_demo, which the command calls, by default
def test_tiny_demo(tmp_path):
    from distill_l2s.train import save_tiny_teacher
    teacher = save_tiny_teacher(tmp_path / "teacher")
    out = tmp_path / "demo"
    args = ("--langs", "sw", "--out-dir", out, "--data-dir", tmp_path / "corpus", "--teacher", teacher, "--steps", 2,
            "--batch-size", 2, "--scale", 0.04, "--eval-clips", 3, "--samples", 2, "--hidden", 32, "--layers", 1)
    r = demo(tmp_path, *args)
    # it says what it does: a line per stage, labelled progress, no Trainer log dictionaries
    for line in ("[1/5] corpus:", "[2/5] teacher:", "[3/5] training 1/2: sw, baseline (λ = 0): 2 steps of 2 clips",
                 "[3/5] training 2/2: sw, Distill-L2S (λ = 0.5)", "[4/5] evaluation:", "[5/5] plots and transcripts"):
        assert line in r.stdout, line
    assert "sw baseline" in r.stderr and "sw distill" in r.stderr  # the training bars' labels
    assert "{'loss'" not in r.stdout + r.stderr and "{'eval_loss'" not in r.stdout + r.stderr
    assert "Loading weights" not in r.stderr and "Writing model shards" not in r.stderr
    table = json.loads((out / "results.json").read_text())
    base_row, kd_row = table["rows"]
    assert (base_row["arm"], kd_row["arm"], kd_row["lam"], kd_row["clips"]) == ("baseline", "distill", 0.5, 6)
    base, kd = table["runs"]["sw/baseline"], table["runs"]["sw/distill"]
    assert (base["results"]["lam"], kd["results"]["lam"], kd["results"]["teacher"]) == (0.0, 0.5, str(teacher))
    for m in ("cer", "wer"): assert (base_row[m], kd_row[m]) == (base["results"]["test"][m], kd["results"]["test"][m])
    # two steps: neither arm left the blank plateau, so no change is computed, and the table says so
    assert base["learning"]["learned"] is False and kd_row["no_change"] == "neither arm learned" and kd_row["cer_rel"] is None
    md = (out / "results.md").read_text()
    assert "| sw | 6 |" in md and "(did not learn)" in md and "none: neither arm learned" in md and "One seed per arm" in md
    assert md.split("\n\n", 1)[1].splitlines()[2] in r.stdout  # the printed table is the written one
    assert {p.name for p in (out / "plots").iterdir()} == {"curves_sw.png", "results.png", "alignment_sw.png", "lengths_sw.png"}
    for p in (out / "plots").iterdir(): assert p.read_bytes()[:8] == PNG, p
    for arm in ("baseline", "distill"):  # checkpoints: a plain transformers student and its processor
        model = out / "runs" / "sw" / arm / "model"
        assert (model / "config.json").is_file() and (model / "model.safetensors").is_file() and (model / "tokenizer.json").is_file()
    assert (out / "runs" / "sw" / "distill" / "model" / "distill_l2s_projection.safetensors").is_file()
    # both students' transcripts side by side
    tr = json.loads((out / "transcripts.json").read_text())["sw"]
    assert len(tr) == 2 and all(set(t) == {"clip", "path", "reference", "baseline", "distill"} and t["reference"] for t in tr)
    assert all(t["reference"] in r.stdout for t in tr) and "baseline:" in r.stdout and "Distill-L2S:" in r.stdout
    # it ends on what to do next, and its transcribe command runs on its own clip
    tail = r.stdout[r.stdout.index("What next:"):]
    assert "benchmarks/replication/README.md" in tail and "distill-l2s-demo --langs" in tail
    assert "benchmarks/replication/v3.md" in tail and (ROOT / "benchmarks/replication/v3.md").is_file()
    from test_commands import check_command  # every command it suggests parses
    suggested = [shlex.split(l) for l in tail.splitlines() if l.strip().startswith("distill-l2s-")]
    assert len(suggested) == 3 and all(check_command(c) is None for c in suggested), suggested
    cmd = next(c for c in suggested if c[0] == "distill-l2s-transcribe")
    assert cmd[2] == tr[0]["path"]
    script = tmp_path / "distill-l2s-transcribe"
    script.write_text("import sys\nfrom distill_l2s.cli import transcribe_cli\nsys.exit(transcribe_cli())\n")
    t = warm_run([script, *cmd[1:]], ENV, timeout=300)
    assert t.returncode == 0 and t.stdout.rstrip("\n") == tr[0]["distill"], t.stderr[-2000:]

    stamp = (out / "runs" / "sw" / "distill" / "results.json").stat().st_mtime_ns
    r = demo(tmp_path, *args)  # finished runs are reused
    assert (out / "runs" / "sw" / "distill" / "results.json").stat().st_mtime_ns == stamp and "finished before" in r.stdout
    assert json.loads((out / "results.json").read_text())["rows"] == table["rows"]
    demo(tmp_path, *args, "--force")  # ... unless forced
    assert (out / "runs" / "sw" / "distill" / "results.json").stat().st_mtime_ns != stamp


def test_output_folder_ignored():
    "The demo's default output folder is not something to commit."
    assert "distill-l2s-demo/" in (ROOT / ".gitignore").read_text().splitlines()


@pytest.mark.slow
def test_default_size(tmp_path):
    "The command as the README gives it, with the corpus and the teacher conversion in a fresh cache."
    env_cache = tmp_path / "cache"
    ENV["DISTILL_L2S_CACHE"] = str(env_cache)
    try: r = demo(tmp_path, "--out-dir", tmp_path / "demo")
    finally: ENV.pop("DISTILL_L2S_CACHE")
    from distill_l2s.demo import DEFAULT_LANGS
    res = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert [(x["lang"], x["arm"]) for x in res["rows"]] == [(l, a) for l in sorted(DEFAULT_LANGS) for a in ("baseline", "distill")]
    assert all(f"| {l} |" in r.stdout for l in DEFAULT_LANGS) and "What next:" in r.stdout
    # the default budget is one in which every arm of every default language learns
    assert all(rec["learning"]["learned"] for rec in res["runs"].values()), {k: v["learning"] for k, v in res["runs"].items()}
