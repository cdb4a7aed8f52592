"""Time one training step of a wav2vec2-base-sized student on the CPU, three ways.

1. plain CTC fine-tuning of the student (its own `loss`),
2. Distill-L2S with cached teacher features (tensors computed beforehand, as `TeacherCache.get` returns them),
3. Distill-L2S with a live teacher: a 12-layer, width-768 `BertModel` encodes the transcripts inside the step.

A step is forward + backward + AdamW step on a batch of 4 clips of 5 s. The student is randomly initialised
(wav2vec2-base layout: 12 layers, width 768, CNN feature encoder frozen as in the paper); weights, batch and the
random state of every step (layer drop, SpecAugment) are the same in all three modes.

Each mode runs in its own worker process, so that its peak memory (`ru_maxrss`) is its own. The parent asks the
workers for one step at a time, rotating their order every round, so that slow phases of a shared machine hit all
modes alike; the first `--warmup` rounds are not counted. Every step is timed in wall-clock time and in the worker's
CPU time (`time.process_time`, all its threads); on a machine shared with other jobs, CPU time with `--threads 1` is
the steadier measure of the work a step does.

Run from the repository root:

    python benchmarks/bench_step.py            # 1 warm-up round + 5 timed rounds
    python benchmarks/bench_step.py --rounds 9 --threads 1
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = ("plain", "cached", "live")
LABELS = {"plain": "plain CTC", "cached": "Distill-L2S, cached teacher", "live": "Distill-L2S, live teacher"}
B, SECONDS, SR, VOCAB = 4, 5.0, 16000, 40
WORDS = ("time people year way day thing man world life hand part child eye woman place work week case point "
         "government company number group problem fact house water room mother area money story night").split()


def rss_mib() -> float:
    "Current resident memory of this process in MiB."
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024


def batch():
    "The benchmark batch: 4 clips of 5 s, character labels (~15 per second) and 12-16-word transcripts."
    import torch
    g = torch.Generator().manual_seed(0)
    n = int(SECONDS * SR)
    input_values = torch.randn(B, n, generator=g)
    attention_mask = torch.ones(B, n, dtype=torch.long)
    labels = torch.randint(1, VOCAB, (B, int(15 * SECONDS)), generator=g)
    texts = [" ".join(WORDS[i] for i in torch.randint(0, len(WORDS), (int(k),), generator=g))
             for k in torch.randint(12, 17, (B,), generator=g)]
    return input_values, attention_mask, labels, texts


def prepare(tmp: Path):
    "Save a random BERT-base teacher (12 layers, width 768) with a word-level tokenizer; cache its batch features."
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel, BertTokenizer
    sys.path.insert(0, str(ROOT))
    from distill_l2s.teacher import TextTeacher
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    BertTokenizer(vocab={t: i for i, t in enumerate(vocab)}, model_max_length=512).save_pretrained(tmp / "teacher")
    torch.manual_seed(0)
    BertModel(BertConfig(), add_pooling_layer=False).save_pretrained(tmp / "teacher")  # BERT-base: 12 x 768, vocab 30522
    feats, lengths = TextTeacher(tmp / "teacher", device="cpu").encode(batch()[3])
    save_file({"feats": feats, "lengths": lengths}, tmp / "features.safetensors")


def worker(mode: str, tmp: Path, threads: int):
    "Build the student (and teacher) for `mode`, then run one training step per 'step' line read from stdin."
    import numpy as np
    import torch
    from safetensors.torch import load_file
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC
    if threads: torch.set_num_threads(threads)
    sys.path.insert(0, str(ROOT))
    from distill_l2s.model import DistillL2S
    from distill_l2s.teacher import TextTeacher
    rss_imports = rss_mib()

    torch.manual_seed(0)
    student = Wav2Vec2ForCTC(Wav2Vec2Config(vocab_size=VOCAB, pad_token_id=0, ctc_loss_reduction="mean",
                                            ctc_zero_infinity=True))  # wav2vec2-base layout; layerdrop 0.1, SpecAugment on
    student.freeze_feature_encoder()
    student.train()
    input_values, attention_mask, labels, texts = batch()
    if mode == "live": teacher = TextTeacher(tmp / "teacher", device="cpu")
    if mode == "cached":  # precomputed features; no teacher in this process
        cached = load_file(tmp / "features.safetensors")
        feats, lens = cached["feats"], cached["lengths"]
    model = DistillL2S(student, 768, lam=0.5).train() if mode != "plain" else student
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    rss_setup = rss_mib()

    def step(r: int):
        torch.manual_seed(r); np.random.seed(r)  # same layer drop and SpecAugment masks in every mode
        if mode == "plain": loss = student(input_values, attention_mask=attention_mask, labels=labels).loss
        else:
            t_feats, t_lens = teacher.encode(texts) if mode == "live" else (feats, lens)
            loss = model(input_values, attention_mask, labels, t_feats, t_lens).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def timed(fn, reps: int) -> list[float]:
        "Median wall and CPU seconds of `fn` over `reps` calls, after two untimed ones."
        for _ in range(2): fn()
        ts = []
        for _ in range(reps):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            ts.append((time.perf_counter() - t0, time.process_time() - c0))
        return [statistics.median(t[i] for t in ts) for i in (0, 1)]

    def parts(reps: int) -> dict:
        "The work Distill-L2S adds to a CTC step, each part timed alone: the KD path, and the live teacher."
        if mode == "plain": return {}
        t_feats, t_lens = teacher.encode(texts) if mode == "live" else (feats, lens)
        with torch.no_grad(): out, hidden = model.student_forward(input_values, attention_mask)  # real activations
        frames = model.frame_lengths(attention_mask, input_values)
        proj_opt = torch.optim.AdamW(model.projection.parameters(), lr=1e-5)
        def kd(sync_free: bool):  # the model's bridge: shrink, project, resize the teacher, loss; backward; projection update
            h = hidden.detach().requires_grad_()
            DistillL2S.bridge(model, h, out.logits, frames, t_feats, t_lens, sync_free)[0].backward()
            proj_opt.step(); proj_opt.zero_grad(set_to_none=True)
        res = {"kd path": timed(lambda: kd(False), reps)}  # as on a CPU: one host read sizes the shrunk rows
        if mode == "cached": res["kd path, sync-free"] = timed(lambda: kd(True), reps)  # the CUDA default, here on the CPU
        if mode == "live":
            with torch.no_grad(): res["teacher encode"] = timed(lambda: teacher.encode(texts), reps)
        return res

    print("ready", flush=True)
    for line in sys.stdin:
        cmd, *arg = line.split()
        if cmd == "parts": print(json.dumps(parts(int(arg[0]))), flush=True); continue
        if cmd != "step": break
        t0, c0 = time.perf_counter(), time.process_time()
        step(int(arg[0]))
        print(f"{time.perf_counter() - t0:.6f} {time.process_time() - c0:.6f}", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps(dict(rss_imports=rss_imports, rss_setup=rss_setup, peak=peak)), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (one step of every mode each)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    ap.add_argument("--threads", type=int, default=0, help="torch threads per worker (0: torch's default)")
    ap.add_argument("--part-reps", type=int, default=30, help="repetitions when timing the added parts alone")
    ap.add_argument("--worker", choices=MODES + ("prepare",), help=argparse.SUPPRESS)
    ap.add_argument("--tmp", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker == "prepare": return prepare(args.tmp)
    if args.worker: return worker(args.worker, args.tmp, args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false"}
        subprocess.run([sys.executable, __file__, "--worker", "prepare", "--tmp", tmp], check=True, env=env,
                       stderr=subprocess.DEVNULL)
        procs = {m: subprocess.Popen([sys.executable, __file__, "--worker", m, "--tmp", tmp,
                                      "--threads", str(args.threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1, env=env) for m in MODES}
        for m, p in procs.items():
            if p.stdout.readline().strip() != "ready": sys.exit(f"worker {m} failed to start")
        wall, cpu = {m: [] for m in MODES}, {m: [] for m in MODES}
        for r in range(args.warmup + args.rounds):
            got = {}
            for m in MODES[r % 3:] + MODES[:r % 3]:  # rotate the order every round
                procs[m].stdin.write(f"step {r}\n"); procs[m].stdin.flush()
                got[m] = [float(x) for x in procs[m].stdout.readline().split()]
            if r >= args.warmup:
                for m in MODES: wall[m].append(got[m][0]); cpu[m].append(got[m][1])
            print(f"round {r + 1}/{args.warmup + args.rounds}" + (" (warm-up)" if r < args.warmup else "") + ": "
                  + ", ".join(f"{m} {got[m][0]:.2f}s wall {got[m][1]:.2f}s cpu" for m in MODES), file=sys.stderr)
        extra = {}
        for m, p in procs.items():
            p.stdin.write(f"parts {args.part_reps}\n"); p.stdin.flush()
            extra.update({f"{k} ({m})": v for k, v in json.loads(p.stdout.readline()).items()})
        mem = {}
        for m, p in procs.items():
            p.stdin.write("quit\n"); p.stdin.flush()
            mem[m] = json.loads(p.stdout.readline())
            p.wait()

    import torch
    threads = args.threads or torch.get_num_threads()
    print(f"One training step (fwd + bwd + AdamW) of a wav2vec2-base-sized student, batch {B} x {SECONDS:g} s, CPU")
    print(f"torch {torch.__version__}, {threads} thread(s) per worker, {os.cpu_count()} cores, "
          f"load average at the end {os.getloadavg()[0]:.1f}")
    print(f"{args.rounds} timed rounds after {args.warmup} warm-up, modes interleaved; medians over rounds; "
          f"'paired' = median over rounds of the per-round ratio to plain CTC\n")
    print("| mode | wall s | wall vs plain | wall paired | CPU s | CPU vs plain | CPU paired | peak RSS MiB | peak - after imports MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m in MODES:
        cells = []
        for t in (wall, cpu):
            med = statistics.median(t[m])
            cells += [f"{med:.2f}", f"{med / statistics.median(t['plain']):.3f}x",
                      f"{statistics.median(a / b for a, b in zip(t[m], t['plain'])):.3f}x"]
        print(f"| {LABELS[m]} | " + " | ".join(cells) + f" | {mem[m]['peak']:.0f} | {mem[m]['peak'] - mem[m]['rss_imports']:.0f} |")
    print(f"\nWork Distill-L2S adds, each part timed alone (median of {args.part_reps}), against the median plain CTC step:\n")
    print("| part | wall ms | CPU ms | share of a plain step (CPU) |")
    print("|---|---|---|---|")
    base_cpu = statistics.median(cpu["plain"])
    for k, (w, c) in extra.items(): print(f"| {k} | {1e3 * w:.1f} | {1e3 * c:.1f} | {100 * c / base_cpu:.2f}% |")


if __name__ == "__main__": main()
