"""What the demo's training budget costs: steps of 4 clips against steps of 8, the same clips seen, side by side.

The demo trains 1,200 steps of 4 clips per run (`distill_l2s.demo.DEFAULT_STEPS`, `DEFAULT_BATCH`); it used to train
600 steps of 8, which left Russian on the blank plateau of CTC training. Both see the same number of clips. This
script times training steps of the demo's student (forward, backward, AdamW) on the demo's corpus at both batch
sizes, alternating, and prints the CPU time per clip and the ratio. CPU time of the one torch thread, so that other
jobs on the machine change the figures less than they change wall time.

    python benchmarks/bench_demo_budget.py                  # Swahili and Russian, 3 rounds
    python benchmarks/bench_demo_budget.py --clips 320 --rounds 5
"""
from __future__ import annotations

import argparse
import os
import statistics
import time


def parser() -> argparse.ArgumentParser:
    "The command line of this script."
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--langs", default="sw,ru", help="comma-separated languages of the demo corpus")
    p.add_argument("--clips", type=int, default=240, help="clips per measurement (a multiple of 8)")
    p.add_argument("--rounds", type=int, default=3, help="measurements per batch size, alternating")
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


def main(argv=None):
    a = parser().parse_args(argv)
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
    main()
