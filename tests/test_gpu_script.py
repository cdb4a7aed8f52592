"""`benchmarks/gpu.sh` (every GPU figure in one run) works without a GPU: its tiny self-test runs each part and logs
its figures, a failing or overrunning part is logged without stopping the rest, and the exit status says so.

The tiny self-test takes about a minute on two idle cores (each part starts torch afresh; the bridge part builds a
synthesised corpus first), so it is `slow`; the checks of the failure handling use a stand-in Python and take seconds.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu.sh"
PARTS = ("header", "bridge", "paper-fp16", "paper-bf16", "whisper")
NUM = r"[0-9]+(?:\.[0-9]+)?"


def run(log: Path, *args, timeout=600, **settings):
    "Run the script into `log` with these settings; the caller's own (TINY, DEVICE, ...) left out."
    env = {k: v for k, v in os.environ.items() if k not in ("TINY", "DEVICE", "COMPILE", "TOTAL_S", "CORPUS")}
    env = {**env, "PYTHON": sys.executable, **settings}
    return subprocess.run(["bash", str(SCRIPT), *args, str(log)], capture_output=True, text=True, env=env, timeout=timeout)


def summary(text: str) -> dict[str, str]:
    "part name -> its outcome, from the log's summary."
    return dict(re.findall(r"^part (\S+): (.*)$", text.split("## summary", 1)[1], re.M))


@pytest.mark.slow
def test_tiny_self_test(tmp_path):
    log = tmp_path / "gpu.log"
    r = run(log, "--tiny", CORPUS=str(tmp_path / "corpus"))
    text = log.read_text()
    assert r.returncode == 0, text[-4000:] + r.stderr[-2000:]
    check_tiny_log(text)


def check_tiny_log(text: str):
    "Each part ran and logged its figures: the header's fields and a RESULT line per mode (and dtype) of each benchmark."
    assert text.startswith("# GPU figures: TINY self-test on cpu")
    s = summary(text)
    assert list(s) == list(PARTS) and all(v.startswith("ok") for v in s.values()), s
    for field in ("date: ", "commit: ", "machine: ", "nvidia-smi: "): assert re.search(f"^{field}\\S", text, re.M), field
    assert re.search(r"^python \S+, torch \S+ \(CUDA .*\), transformers \S+$", text, re.M)
    assert re.search(r"^RESULT header: device cpu; CUDA available (True|False)", text, re.M)
    reads = {"read": "1", "sync-free": "0", "compiled": "0 (compiled graph)"}
    for mode, n in reads.items():
        assert re.search(f"^RESULT bridge {mode}: median {NUM} ms per batch, .*; host reads {re.escape(n)}; ", text, re.M), mode
    assert re.search(r"^RESULT bridge: compiled against sync-free: ", text, re.M)
    expected = {"paper-fp16": [("fp16", m) for m in ("plain", "distill", "distill-compiled")],
                "paper-bf16": [("bf16", m) for m in ("plain", "distill", "distill-compiled")],
                "whisper": [(d, m) for d in ("fp16", "bf16") for m in ("plain", "distill")]}
    for part, rows in expected.items():
        got = re.findall(rf"^RESULT {part} (\S+) (\S+): step ({NUM}) s .*; peak ([^;]+)", text, re.M)
        assert [(d, m) for d, m, *_ in got] == rows, (part, got)
        for d, m, step, peak in got:
            assert float(step) > 0 and peak == "n/a (CPU)"  # peak memory is reported on CUDA only
        assert re.search(rf"^RESULT {part} \S+ distill: .*x plain \(goal <= 1\.03x (met|not met)\)", text, re.M)
    assert "Whisper CTC" in text.split("## whisper", 1)[1]


def test_without_cuda_it_stops_after_the_header(tmp_path):
    import torch
    if torch.cuda.is_available(): pytest.skip("this machine has a GPU: the script would take its figures")
    log = tmp_path / "gpu.log"
    r = run(log, timeout=120)
    text = log.read_text()
    assert r.returncode == 2, text
    s = summary(text)
    assert "no CUDA device" in text and list(s) == ["header"] and s["header"].startswith("FAILED") and "## bridge" not in text


@pytest.fixture
def fake_python(tmp_path):
    "A stand-in interpreter that fails at once, or hangs when its arguments contain $FAKE_HANG."
    fake = tmp_path / "python"
    fake.write_text('#!/bin/bash\ncase "$*" in *"${FAKE_HANG:-no such}"*) sleep 300 ;; esac\necho "fake failure" >&2; exit 3\n')
    fake.chmod(0o755)
    return fake


def test_failing_parts_do_not_stop_the_others(tmp_path, fake_python):
    "Every part fails; each is logged, all are tried, and the exit status is 1."
    log = tmp_path / "gpu.log"
    r = run(log, "--tiny", timeout=120, PYTHON=str(fake_python))
    text = log.read_text()
    assert r.returncode == 1, text
    s = summary(text)
    assert list(s) == list(PARTS), s
    assert all(v.startswith("FAILED (exit 3") for v in s.values()), s
    assert text.count("fake failure") == 5  # each part ran


def test_the_budget_bounds_the_whole_run(tmp_path, fake_python):
    "A hanging part is cut when the budget TOTAL_S is spent (its process group killed); the parts after it are not run."
    log = tmp_path / "gpu.log"
    r = run(log, "--tiny", timeout=120, PYTHON=str(fake_python), TOTAL_S="8", FAKE_HANG="bench_bridge.py")
    text = log.read_text()
    assert r.returncode == 1, text
    s = summary(text)
    assert s["bridge"].startswith("TIMEOUT after") and float(re.search(NUM, s["bridge"]).group()) < 12
    assert all(s[p] == "TIMEOUT (not run, budget spent)" for p in ("paper-fp16", "paper-bf16", "whisper")), s
