"""`distill-l2s-demo` through its console script on a tiny scale: one synthesised language with a few clips,
a tiny random teacher and student, two steps per arm. Checks the table (JSON and Markdown), the plots, the
checkpoints, the transcripts, that a second call reuses the finished runs, and that `--force` trains again.
The default-size run (about ten minutes) is `test_default_size`, flagged slow: `pytest tests/test_demo.py --flags slow`.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
       "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
PNG = b"\x89PNG\r\n\x1a\n"


def demo(tmp, *args):
    "Run the installed entry point `distill_l2s.demo:demo_cli` as a console-script wrapper does."
    script = tmp / "distill-l2s-demo"
    script.write_text("import sys\nfrom distill_l2s.demo import demo_cli\nsys.exit(demo_cli())\n")
    r = subprocess.run([sys.executable, str(script), *map(str, args)], env=ENV, capture_output=True, text=True, timeout=900)
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


def test_tiny_demo(tmp_path):
    from distill_l2s.train import save_tiny_teacher
    teacher = save_tiny_teacher(tmp_path / "teacher")
    out = tmp_path / "demo"
    args = ("--langs", "sw", "--out-dir", out, "--data-dir", tmp_path / "corpus", "--teacher", teacher, "--steps", 2,
            "--batch-size", 2, "--scale", 0.04, "--eval-clips", 3, "--samples", 2, "--hidden", 32, "--layers", 1)
    r = demo(tmp_path, *args)
    table = json.loads((out / "results.json").read_text())
    (row,) = table["rows"]
    assert row["language"] == "sw" and row["lam"] == 0.5 and row["steps"] == 2 and row["train_utterances"] == 6
    base, kd = table["runs"]["sw/baseline"], table["runs"]["sw/distill"]
    assert (base["lam"], kd["lam"], base["seed"], kd["seed"]) == (0.0, 0.5, 0, 0) and kd["teacher"] == str(teacher)
    for m in ("cer", "wer"):
        assert (row[f"baseline_{m}"], row[f"distill_{m}"]) == (base["test"][m], kd["test"][m])
        b, d = base["test"][m], kd["test"][m]
        assert row[f"{m}_rel"] == (pytest.approx((d - b) / b) if b > 0 else None)
    md = (out / "results.md").read_text()
    assert md.startswith("| language | train min | baseline CER") and md.count("\n") == 3 and "| sw |" in md
    assert md.splitlines()[-1] in r.stdout  # the printed table is the written one
    assert {p.name for p in (out / "plots").iterdir()} == {"curves_sw.png", "results.png", "alignment_sw.png", "lengths_sw.png"}
    for p in (out / "plots").iterdir(): assert p.read_bytes()[:8] == PNG, p
    for arm in ("baseline", "distill"):  # checkpoints: a plain transformers student and its processor
        model = out / "runs" / "sw" / arm / "model"
        assert (model / "config.json").is_file() and (model / "model.safetensors").is_file() and (model / "tokenizer.json").is_file()
    assert (out / "runs" / "sw" / "distill" / "model" / "distill_l2s_projection.safetensors").is_file()
    tr = json.loads((out / "transcripts.json").read_text())["sw"]
    assert len(tr) == 2 and all(set(t) == {"clip", "reference", "hypothesis"} and t["reference"] for t in tr)
    assert all(t["reference"] in r.stdout for t in tr) and "reference:" in r.stdout and "hypothesis:" in r.stdout

    stamp = (out / "runs" / "sw" / "distill" / "results.json").stat().st_mtime_ns
    demo(tmp_path, *args)  # finished runs are reused
    assert (out / "runs" / "sw" / "distill" / "results.json").stat().st_mtime_ns == stamp
    assert json.loads((out / "results.json").read_text())["rows"] == table["rows"]
    demo(tmp_path, *args, "--force")  # ... unless forced
    assert (out / "runs" / "sw" / "distill" / "results.json").stat().st_mtime_ns != stamp


@pytest.mark.slow
def test_default_size(tmp_path):
    "The command as the README gives it, with the corpus and the teacher conversion in a fresh cache."
    env_cache = tmp_path / "cache"
    ENV["DISTILL_L2S_CACHE"] = str(env_cache)
    try: r = demo(tmp_path, "--out-dir", tmp_path / "demo")
    finally: ENV.pop("DISTILL_L2S_CACHE")
    rows = json.loads((tmp_path / "demo" / "results.json").read_text())["rows"]
    assert [x["language"] for x in rows] == ["sw", "ru"] and "| ru |" in r.stdout
