"""Does the cheap recipe train as well? The whisper-base baseline of replication v2's Swahili cell (seed 0), trained
once more with its whole encoder fine-tuned (stem frozen, no frozen layers, no frozen-state cache) and otherwise the
same settings; its results and dev CER over training are written to benchmarks/results/whisper_full_ft.json.

    python benchmarks/replication/run.py --grid v2 --cells whisper-sw-150 --seeds 0 --only baseline   # corpus + the cached run
    python benchmarks/whisper_full_ft.py                                                         # about 55 min on 2 busy cores
"""
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(out=Path("runs/whisper-full-ft-sw-150_seed0")):
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT))
    from distill_l2s.e5 import cache_root
    from distill_l2s.replication import FULL_V2, _whisper_config
    from distill_l2s.train import train
    work = cache_root() / "replication-v2"
    cfg = _whisper_config(FULL_V2, work / "corpus" / "sw-150", Path(out), 0.0, 0, work / "frozen-cache")
    cfg = replace(cfg, frozen_layers=0, frozen_cache="")
    start = time.time()
    res = train(cfg, resume=Path(cfg.output_dir).is_dir() and any(Path(cfg.output_dir).iterdir()))
    state = json.loads(sorted(Path(cfg.output_dir).glob("checkpoint-*/trainer_state.json"))[-1].read_text())
    record = dict(command="python benchmarks/whisper_full_ft.py", minutes=round((time.time() - start) / 60, 1),
                  frozen_layers=0, frozen_cache="", dev=res["dev"], test=res["test"],
                  dev_cer=[(e["step"], e["eval_cer"]) for e in state["log_history"] if "eval_cer" in e])
    (ROOT / "benchmarks" / "results" / "whisper_full_ft.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__": main()
