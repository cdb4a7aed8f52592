"""Time one training step of the whisper-base CTC student on the CPU, three ways, in one run.

1. full: fine-tune the whole encoder (the convolutional stem frozen, as the paper freezes wav2vec2's),
2. frozen: the stem and the lowest `--frozen` layers frozen (they run without gradients),
3. cached: as 2, with the frozen bottom's output read from a cache instead of computed (`frozen_cache`).

A step is forward + backward + AdamW on a batch of 8 clips of 5 s with Distill-L2S (λ = 0.5) against cached teacher
features of width 384 (the offline multilingual-e5-small's). Feature extraction (log-mel, done by the DataLoader's
workers in training) is not part of a step; it is timed apart, as is filling the cache for the batch (paid once per
clip, not per step). The three students start from the same weights and see the same batch; their steps are
interleaved round by round. Times are the worker thread's CPU time (`time.process_time`, one torch thread), the
steadier measure on a machine shared with other jobs, and wall time.

    python benchmarks/bench_whisper_step.py                  # 1 warm-up round + 5 timed rounds
    python benchmarks/bench_whisper_step.py --frozen 3 --rounds 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
B, SECONDS, SR, VOCAB, TEACHER_DIM = 8, 5.0, 16000, 40, 384


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (one step of every mode each)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    ap.add_argument("--frozen", type=int, default=4, help="encoder layers frozen in modes 2 and 3 (whisper-base has 6)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    ap.add_argument("--student", default="whisper-base", help="offline name, hub name or folder of a Whisper model")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this file (the notebook 12_whisper "
                    "shows benchmarks/results/whisper_step.json)")
    args = ap.parse_args()

    import numpy as np
    import torch
    sys.path.insert(0, str(ROOT))
    from distill_l2s.model import DistillL2S
    from distill_l2s.text import build_vocab, make_processor
    from distill_l2s.whisper import whisper_ctc_from_pretrained, whisper_processor
    if args.threads: torch.set_num_threads(args.threads)

    g = torch.Generator().manual_seed(0)
    waves = [0.1 * torch.randn(int(SECONDS * SR), generator=g).numpy() for _ in range(B)]
    processor = whisper_processor(make_processor(build_vocab(["abcdefghijklmnopqrstuvwxyz '" * 2])).tokenizer)
    labels = torch.randint(3, len(processor.tokenizer), (B, int(12 * SECONDS)), generator=g)
    t_feats, t_lens = torch.randn(B, 20, TEACHER_DIM, generator=g), torch.full((B,), 20)
    t0, c0 = time.perf_counter(), time.process_time()
    x = processor(waves, sampling_rate=SR, return_tensors="pt")
    features = (time.perf_counter() - t0, time.process_time() - c0)

    def model(frozen: int) -> DistillL2S:
        torch.manual_seed(0)
        student = whisper_ctc_from_pretrained(args.student, vocab_size=len(processor.tokenizer),
                                              pad_token_id=processor.tokenizer.pad_token_id, frozen_layers=frozen,
                                              encoder_layerdrop=0.0, mask_time_prob=0.05)
        student.freeze_feature_encoder()
        return DistillL2S(student, TEACHER_DIM, lam=0.5, check_finite=False).train()

    models = {"full": model(0), "frozen": model(args.frozen), "cached": model(args.frozen)}
    layers = models["full"].student.config.encoder_layers
    opts = {m: torch.optim.AdamW([p for p in mod.parameters() if p.requires_grad], lr=1e-5) for m, mod in models.items()}
    t0, c0 = time.perf_counter(), time.process_time()
    states, n = models["cached"].student.frozen_forward(x["input_features"], x["attention_mask"])
    fill = (time.perf_counter() - t0, time.process_time() - c0)
    state_mask = (torch.arange(states.shape[1]) < n[:, None]).long()
    inputs = {"full": dict(input_features=x["input_features"], attention_mask=x["attention_mask"]),
              "frozen": dict(input_features=x["input_features"], attention_mask=x["attention_mask"]),
              "cached": dict(frozen_states=states, attention_mask=state_mask)}

    def step(m: str, r: int):
        torch.manual_seed(r); np.random.seed(r)  # the same SpecAugment masks in every mode
        loss = models[m](**inputs[m], labels=labels, teacher_features=t_feats, teacher_lengths=t_lens).loss
        loss.backward()
        opts[m].step(); opts[m].zero_grad(set_to_none=True)
        return loss.item()

    modes, wall, cpu, losses = list(models), {m: [] for m in models}, {m: [] for m in models}, {m: [] for m in models}
    first = {m: [] for m in models}  # the loss of the very first step: all three models still hold the same weights
    for r in range(args.warmup + args.rounds):
        for m in modes[r % 3:] + modes[:r % 3]:  # rotate the order every round
            t0, c0 = time.perf_counter(), time.process_time()
            loss = step(m, r)
            w, c = time.perf_counter() - t0, time.process_time() - c0
            if r >= args.warmup: wall[m].append(w); cpu[m].append(c); losses[m].append(loss)
            elif r == 0: first[m].append(loss)
        print(f"round {r + 1}/{args.warmup + args.rounds}" + (" (warm-up)" if r < args.warmup else "") + ": "
              + ", ".join(f"{m} {cpu[m][-1] if cpu[m] and r >= args.warmup else c:.2f}s" for m in modes), file=sys.stderr)

    trainable = {m: sum(p.numel() for p in mod.parameters() if p.requires_grad) for m, mod in models.items()}
    print(f"One training step (forward + backward + AdamW) of the {args.student} CTC student with Distill-L2S (λ = 0.5), "
          f"batch {B} x {SECONDS:g} s, CPU")
    print(f"torch {torch.__version__}, {args.threads or torch.get_num_threads()} thread(s), {os.cpu_count()} cores, "
          f"load average at the end {os.getloadavg()[0]:.1f}; {args.rounds} timed rounds after {args.warmup} warm-up, "
          f"modes interleaved; medians\n")
    print("| mode | frozen layers | trainable parameters | CPU s | CPU vs full | wall s | wall vs full |")
    print("|---|---|---|---|---|---|---|")
    base_c, base_w = statistics.median(cpu["full"]), statistics.median(wall["full"])
    for m, k in (("full", 0), ("frozen", args.frozen), ("cached", args.frozen)):
        c, w = statistics.median(cpu[m]), statistics.median(wall[m])
        print(f"| {m} | stem + {k} of {layers} | {trainable[m] / 1e6:.1f} M | {c:.2f} | {c / base_c:.3f}x | {w:.2f} | {w / base_w:.3f}x |")
    print(f"\nlog-mel features of the batch (DataLoader workers, every step): {features[1]:.2f} s CPU, {features[0]:.2f} s wall")
    print(f"frozen bottom's states of the batch (once per clip, then cached): {fill[1]:.2f} s CPU, {fill[0]:.2f} s wall")
    rel = [abs(a - b) / abs(a) for a, b in zip(first["frozen"] + losses["frozen"], first["cached"] + losses["cached"])]
    same = rel[0] <= 1e-5
    print(f"'frozen' and 'cached', same weights and batch: first-step losses {first['frozen'][0]:.6g} and {first['cached'][0]:.6g} "
          f"(relative difference {rel[0]:.1e}); in the timed rounds, after their own updates, at most {max(rel[1:]):.1e} apart")
    if args.json:
        import json
        med = lambda xs: round(statistics.median(xs), 3)
        rec = dict(command="python benchmarks/bench_whisper_step.py " + " ".join(sys.argv[1:]), student=args.student,
                   batch=B, seconds=SECONDS, threads=args.threads, cores=os.cpu_count(), torch=torch.__version__,
                   load_average=round(os.getloadavg()[0], 1), rounds=args.rounds, frozen_layers=args.frozen, layers=layers,
                   modes={m: dict(cpu_s=med(cpu[m]), wall_s=med(wall[m]), trainable=trainable[m]) for m in modes},
                   features_cpu_s=round(features[1], 3), fill_cpu_s=round(fill[1], 3),
                   first_step_relative_difference=rel[0], frozen_and_cached_agree=same)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rec, indent=2) + "\n")


if __name__ == "__main__": main()
