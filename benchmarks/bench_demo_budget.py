"""What the demo's training budget costs: steps of 4 clips against steps of 8, and the whole demo with its runs one after another against side by side.

The demo trains 1,200 steps of 4 clips per run (`distill_l2s.demo.DEFAULT_STEPS`, `DEFAULT_BATCH`); it used to train
600 steps of 8, which left Russian on the blank plateau of CTC training. Both see the same number of clips. This
script times training steps of the demo's student (forward, backward, AdamW) on the demo's corpus at both batch
sizes, alternating, and prints the CPU time per clip and the ratio. CPU time of the one torch thread, so that other
jobs on the machine change the figures less than they change wall time.

    python benchmarks/bench_demo_budget.py                  # Swahili and Russian, 3 rounds
    python benchmarks/bench_demo_budget.py --clips 320 --rounds 5

`--wall` times the whole demo instead (`distill-l2s-demo`, each call from an empty cache, so corpus synthesis and
the teacher's conversion are in it): `--jobs 1`, today's sequential demo, against the runs side by side
(`--jobs 0`: as many at a time as the cores hold), taking turns, in one sitting. It prints each wall time, the load
average around it, the ratio of the medians, and whether both wrote the same results.json. Wall time, so the
machine must be quiet: with other jobs on its cores, the side-by-side runs have no free core to take.

    python benchmarks/bench_demo_budget.py --wall                           # the default demo, about 25 min on 2 cores
    python benchmarks/bench_demo_budget.py --wall --steps 60 --scale 0.25   # a short check of the script (about 3 min)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def parser() -> argparse.ArgumentParser:
    "The command line of this script."
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--langs", default="sw,ru", help="comma-separated languages of the demo corpus")
    p.add_argument("--clips", type=int, default=240, help="clips per measurement (a multiple of 8)")
    p.add_argument("--rounds", type=int, default=None, help="measurements per batch size, alternating (default 3); with --wall, calls per mode (default 1)")
    p.add_argument("--wall", action="store_true", help="time the whole demo, --jobs 1 against side by side, instead")
    p.add_argument("--jobs", type=int, default=0, help="--wall: the side-by-side demo's --jobs (0: its default, cores // threads)")
    p.add_argument("--steps", type=int, default=None, help="--wall: the demo's --steps (default: its own, 1200)")
    p.add_argument("--scale", type=float, default=1.0, help="--wall: the demo's --scale (training clips per language)")
    p.add_argument("--work", type=Path, default=None, help="--wall: folder for the demos' caches, outputs and logs (default: a temporary one)")
    return p


def cpu_per_clip(cfg, processor, records, batch: int, clips: int) -> float:
    "CPU seconds per clip of `clips // batch` training steps of the demo's student at `batch` clips a step."
    import torch
    from torch.utils.data import DataLoader
    from distill_l2s.data import SpeechDataset, Collator
    from distill_l2s.train import build_model, conv_frames, _student_config
    torch.manual_seed(0)
    model = build_model(cfg, processor, None)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate)
    ds = SpeechDataset(records[:clips], processor, frames=conv_frames(_student_config(cfg)))
    loader = DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True, collate_fn=Collator(processor),
                        generator=torch.Generator().manual_seed(0))
    start = time.process_time()
    for b in loader:
        out = model(b["input_values"], b.get("attention_mask"), b["labels"])
        opt.zero_grad(); out.loss.backward(); opt.step()
    return (time.process_time() - start) / (len(loader) * batch)


def load() -> str: return " ".join(f"{x:.2f}" for x in os.getloadavg())


def demo_wall(work: Path, name: str, jobs: int, a) -> tuple[float, dict]:
    "Wall seconds of one `distill-l2s-demo` call from an empty cache, and the results.json it wrote."
    args = ["--langs", a.langs, "--scale", str(a.scale), "--jobs", str(jobs), "--out-dir", str(work / name)]
    if a.steps: args += ["--steps", str(a.steps)]
    env = {**os.environ, "DISTILL_L2S_CACHE": str(work / f"cache-{name}"), "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg"}
    script = work / "distill-l2s-demo"  # the console script as pip writes it (`python -c` would not pass the arguments on)
    script.write_text("import sys\nfrom distill_l2s.demo import demo_cli\nif __name__ == '__main__': sys.exit(demo_cli())\n")
    before = load()
    start = time.perf_counter()
    with open(work / f"{name}.log", "w") as log:
        r = subprocess.run([sys.executable, str(script), *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if r.returncode: raise SystemExit(f"{name}: the demo failed (exit code {r.returncode}); see {work / f'{name}.log'}")
    print(f"  {name}: --jobs {jobs}: {wall:.1f} s ({wall / 60:.2f} min); load average before {before}, after {load()}", flush=True)
    text = (work / name / "results.json").read_text()  # each call's own folders named alike, so that only numbers can differ
    return wall, json.loads(text.replace(str(work / f"cache-{name}"), "<cache>").replace(str(work / name), "<out>"))


def wall_main(a):
    "The demo end to end, one run after another against side by side, taking turns."
    from distill_l2s.demo import usable_cores
    work = a.work or Path(tempfile.mkdtemp(prefix="bench-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    rounds = a.rounds or 1
    print(f"the demo ({a.langs}, steps {a.steps or 'default'}, scale {a.scale:g}), each call from an empty cache; "
          f"{usable_cores()} usable cores; work folder {work}")
    print(f"load average before: {load()}", flush=True)
    times, results = {"sequential": [], "parallel": []}, {}
    for k in range(rounds):
        order = ("sequential", "parallel") if k % 2 == 0 else ("parallel", "sequential")
        for mode in order:
            wall, res = demo_wall(work, f"{mode}-{k}", 1 if mode == "sequential" else a.jobs, a)
            times[mode].append(wall); results[f"{mode}-{k}"] = res
    seq, par = statistics.median(times["sequential"]), statistics.median(times["parallel"])
    same = all(r == next(iter(results.values())) for r in results.values())
    print(f"median of {rounds}: one after another {seq:.1f} s ({seq / 60:.2f} min), side by side {par:.1f} s ({par / 60:.2f} min) "
          f"-> {par / seq:.2f}x (goal: at most 0.65x)")
    print(f"results.json the same in every call, but for its folders (every number, each run's weights_digest): {'yes' if same else 'NO'}")
    print(f"load average after: {load()}")
    return 0 if same else 1


def main(argv=None):
    a = parser().parse_args(argv)
    if a.wall: return wall_main(a)
    a.rounds = a.rounds or 3
    import torch
    torch.set_num_threads(1)
    from distill_l2s.demo import demo_config, DEFAULT_STEPS, DEFAULT_BATCH
    from distill_l2s.data import read_split
    from distill_l2s.e5 import cache_root
    from distill_l2s.synth import synthesize_corpus
    from distill_l2s.text import build_vocab, make_processor
    langs = [l for l in a.langs.split(",") if l]
    corpus = synthesize_corpus(cache_root() / "demo-corpus", langs, eval_sentences=40, seed=0, progress=False)
    print(f"demo default: {DEFAULT_STEPS} steps of {DEFAULT_BATCH} clips; against steps of 8 clips, the same clips seen")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ratios = []
    for lang in langs:
        cfg = demo_config(corpus[lang]["dir"], "unused", 0.0, "unused")
        records, _ = read_split(cfg.lang_dir, "train", max_duration=cfg.max_duration, max_label_length=cfg.max_label_chars)
        processor = make_processor(build_vocab(r.text for r in records))
        per = {4: [], 8: []}
        for _ in range(a.rounds):
            for batch in (8, 4): per[batch].append(cpu_per_clip(cfg, processor, records, batch, a.clips))
        m4, m8 = statistics.median(per[4]), statistics.median(per[8])
        ratios.append(m4 / m8)
        print(f"{lang}: CPU per clip, median of {a.rounds}: steps of 8 {m8 * 1000:.1f} ms, steps of 4 {m4 * 1000:.1f} ms "
              f"-> {m4 / m8:.2f}x  (all: 8: {', '.join(f'{x * 1000:.0f}' for x in per[8])}; "
              f"4: {', '.join(f'{x * 1000:.0f}' for x in per[4])} ms)")
    print(f"steps of 4 cost {min(ratios):.2f}x to {max(ratios):.2f}x steps of 8 per clip")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    sys.exit(main())
