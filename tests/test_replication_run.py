"""`benchmarks/replication/run.py`'s machine check: runs retrained on one machine laid beside their first records."""
import importlib.util
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EARLIER = ROOT / "benchmarks" / "replication" / "results" / "v3-earlier-machines"


def load_runner():
    spec = importlib.util.spec_from_file_location("replication_run", ROOT / "benchmarks" / "replication" / "run.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def test_machine_check_lays_runs_side_by_side(tmp_path):
    names = ["whisper-sw-150_baseline_lam0_seed0", "whisper-sw-150_distill-std_lam0.5_seed0"]
    earlier, here = tmp_path / "earlier", tmp_path / "here"
    earlier.mkdir(); here.mkdir()
    for n in names: shutil.copy(EARLIER / f"{n}.json", earlier)
    rec = json.loads((EARLIER / f"{names[0]}.json").read_text())  # the baseline retrained here: 10% higher test CER
    first = rec["results"]["test"]["cer"]
    rec["results"]["test"]["cer"] = first * 1.1
    rec["device"] = "CPU Test (2 cores visible)"
    (here / f"{names[0]}.json").write_text(json.dumps(rec))
    md = tmp_path / "v3.md"
    md.write_text("# report\n\n<!-- machine-check:start -->\nold\n<!-- machine-check:end -->\ntail\n")
    load_runner().machine_check(here, earlier, md)
    text = md.read_text()
    assert "old" not in text and text.endswith("tail\n")  # the block replaced, the rest kept
    assert f"| {names[0]} | {first:.4f} | {first * 1.1:.4f} | +10.0% |" in text  # only the run in both folders
    assert names[1] not in text.split("Paired changes")[0]
    assert "1 runs in both" in text and "CPU Test (2 cores visible)" in text
    assert "| whisper-sw-150 | distill-std | 0: " in text  # the earlier records' own paired changes
