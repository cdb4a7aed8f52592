"""Time forced-alignment segments against the paper's greedy shrink, on the batch of `bench_align.py`, in one run.

    python benchmarks/bench_forced.py [--repeats 15] [--device cpu] [--cpu-time]

Both bridges run forward and backward with the projection and the loss, as `DistillL2S` runs them:

- greedy (the paper): `shrink` (greedy runs of the CTC argmax) + `Projection` + `interpolate` + `distill_loss`;
- forced: `forced_align` (Viterbi path of the reference labels) + `token_means` (mean of the frames of every teacher
  token's characters) + `Projection` + `distill_loss`.

Also timed: each segmentation alone (shrink's forward and backward; the Viterbi, which has no backward, plus
`token_means` forward and backward), and the Viterbi against torchaudio's `forced_align` called once per utterance
(its C++ kernel aligns one utterance at a time), which computes the same path.

The batch: B=24 utterances of up to T=500 frames, student width 1024, teacher width 768, vocabulary 40. The logits
imitate a trained CTC model (mostly blank, label spikes of one to three frames, noise), as in `bench_align.py`; the
reference labels are the labels of each utterance's greedy path (about one every 4.5 frames, some 100 per
utterance), every sixth one a word delimiter that belongs to no token, and the teacher has one token per three
characters plus `<s>` and `</s>` (about 40 tokens). On the CPU the figures are measured twice, as in `bench_align.py`:
with glibc's default allocator, then with freed memory kept for reuse (`mallopt`).
"""
import argparse
import ctypes
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from distill_l2s.align import Projection, distill_loss, forced_align, interpolate, shrink, token_means

B, T, D_STUDENT, D_TEACHER, V, BLANK = 24, 500, 1024, 768, 40, 0
CLOCK = time.perf_counter  # wall time; `--cpu-time` switches to this thread's CPU time


def make_batch(device: str, seed: int = 0) -> dict:
    "Features, CTC-like logits, lengths, reference labels, label -> token maps and teacher features."
    gen = torch.Generator().manual_seed(seed)
    paths = torch.full((B, T), BLANK)
    for b in range(B):  # building the data, not timed
        t = 0
        while t < T:
            t += int(torch.randint(1, 6, (1,), generator=gen))            # blank gap
            spike = int(torch.randint(1, 4, (1,), generator=gen))        # frames of one character
            paths[b, t:t + spike] = int(torch.randint(1, V, (1,), generator=gen))
            t += spike
    logits = torch.randn(B, T, V, generator=gen) + 6 * F.one_hot(paths, V)
    lengths = torch.randint(int(0.8 * T), T + 1, (B,), generator=gen); lengths[0] = T
    rows, maps, t_len = [], [], []
    for b in range(B):
        ids, counts = torch.unique_consecutive(logits[b, :lengths[b]].argmax(-1), return_counts=True)
        lab = ids[ids != BLANK]
        u = torch.arange(len(lab))
        rows.append(lab)
        maps.append(torch.where(u % 6 == 5, -1, 1 + u // 3))             # a space every sixth label; 3 characters a token
        t_len.append(2 + (len(lab) + 2) // 3)
    labels = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=-100)
    label_tokens = torch.nn.utils.rnn.pad_sequence(maps, batch_first=True, padding_value=-1)
    t_len = torch.tensor(t_len)
    batch = dict(feats=torch.randn(B, T, D_STUDENT, generator=gen), logits=logits, lengths=lengths, labels=labels,
                 label_tokens=label_tokens, teacher=torch.randn(B, int(t_len.max()), D_TEACHER, generator=gen), t_len=t_len)
    return {k: v.to(device) for k, v in batch.items()}


def median_seconds(fn, device: str, warmup: int, repeats: int) -> float:
    "Median time of `fn()` over `repeats` calls after `warmup` calls."
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(warmup): fn()
    times = []
    for _ in range(repeats):
        sync(); t0 = CLOCK(); fn(); sync()
        times.append(CLOCK() - t0)
    return statistics.median(times)


def keep_freed_memory() -> bool:
    "Ask glibc to serve every allocation from its heap and never hand freed memory back (as a caching allocator does)."
    try: libc = ctypes.CDLL("libc.so.6")
    except OSError: return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


def torchaudio_align(x: dict) -> list:
    "torchaudio's forced_align, one utterance at a time (it takes a batch of one)."
    import torchaudio.functional as TAF
    logp = x["logits"].log_softmax(-1)
    out = []
    for b in range(B):
        lab = x["labels"][b][x["labels"][b] >= 0][None].int()
        out.append(TAF.forced_align(logp[b:b + 1, :x["lengths"][b]], lab, blank=BLANK)[0])
    return out


def measure(x: dict, proj: Projection, dev: str, warmup: int, repeats: int) -> dict:
    "Median times (s) of the workloads."
    feats = x["feats"].detach().requires_grad_()

    def greedy():
        s, n = shrink(feats, x["logits"], x["lengths"], BLANK)
        loss = distill_loss(proj(s), interpolate(x["teacher"], x["t_len"], n), n)
        torch.autograd.grad(loss, [feats, proj.weight])

    def forced():
        seg, ok = forced_align(x["logits"], x["lengths"], x["labels"], BLANK)
        m, target, n, _ = token_means(feats, x["lengths"], seg, ok, x["label_tokens"], x["teacher"], x["t_len"])
        torch.autograd.grad(distill_loss(proj(m), target, n), [feats, proj.weight])

    def shrink_only():
        s, _ = shrink(feats, x["logits"], x["lengths"], BLANK)
        torch.autograd.grad(s, feats, torch.ones_like(s))

    def means_only(seg, ok):
        m, _, _, _ = token_means(feats, x["lengths"], seg, ok, x["label_tokens"], x["teacher"], x["t_len"])
        torch.autograd.grad(m, feats, torch.ones_like(m))

    seg, ok = forced_align(x["logits"], x["lengths"], x["labels"], BLANK)
    run = lambda fn: median_seconds(fn, dev, warmup, repeats)
    t = dict(greedy=run(greedy), forced=run(forced), shrink=run(shrink_only),
             viterbi=run(lambda: forced_align(x["logits"], x["lengths"], x["labels"], BLANK)),
             means=run(lambda: means_only(seg, ok)))
    if dev == "cpu": t["torchaudio"] = run(lambda: torchaudio_align(x))  # its kernels are per utterance; on a GPU each waits
    return t


def report(t: dict):
    print(f"  whole bridge, forward + backward: greedy {t['greedy'] * 1e3:.1f} ms, forced {t['forced'] * 1e3:.1f} ms "
          f"-> forced/greedy {t['forced'] / t['greedy']:.2f}x")
    print(f"  segmentation alone: shrink {t['shrink'] * 1e3:.1f} ms; forced_align {t['viterbi'] * 1e3:.1f} ms + "
          f"token_means {t['means'] * 1e3:.1f} ms")
    if "torchaudio" in t:
        print(f"  forced_align (batched Viterbi) {t['viterbi'] * 1e3:.1f} ms against torchaudio's forced_align, one utterance "
              f"at a time, {t['torchaudio'] * 1e3:.1f} ms -> {t['torchaudio'] / t['viterbi']:.2f}x")


def cpu_name() -> str:
    try: return next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration): return platform.processor() or platform.machine()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cpu-time", action="store_true",
                    help="one torch thread, timed by this thread's CPU time: steadier on a machine shared with other jobs")
    args = ap.parse_args()
    dev = args.device
    if args.cpu_time:
        global CLOCK
        torch.set_num_threads(1); CLOCK = time.thread_time
    torch.manual_seed(0)
    x = make_batch(dev)
    proj = Projection(D_STUDENT, D_TEACHER, device=dev)
    n_shrunk = shrink(x["feats"], x["logits"], x["lengths"], BLANK)[1]
    seg, ok = forced_align(x["logits"], x["lengths"], x["labels"], BLANK)
    n_forced = token_means(x["feats"], x["lengths"], seg, ok, x["label_tokens"], x["teacher"], x["t_len"])[2]
    u = (x["labels"] >= 0).sum(1)
    print(f"batch: B={B} T={T} D_student={D_STUDENT} D_teacher={D_TEACHER} V={V}; frames "
          f"{x['lengths'].min().item()}..{x['lengths'].max().item()}, labels {u.min().item()}..{u.max().item()}, "
          f"teacher tokens {x['t_len'].min().item()}..{x['t_len'].max().item()}")
    print(f"rows compared: greedy shrink {n_shrunk.min().item()}..{n_shrunk.max().item()} (mean {n_shrunk.float().mean().item():.0f}), "
          f"forced {n_forced.min().item()}..{n_forced.max().item()} (mean {n_forced.float().mean().item():.0f}); "
          f"aligned {int(ok.sum())} of {B}")
    print(f"machine: {platform.platform()}, {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {dev}, load average {os.getloadavg()[0]:.2f}")
    clock = "CPU time of the one thread" if args.cpu_time else "wall time"
    print(f"median {clock} of {args.repeats} repeats after {args.warmup} warm-up:")
    print("glibc's default allocator (large tensors are fresh pages every time):")
    report(measure(x, proj, dev, args.warmup, args.repeats))
    if dev == "cpu" and keep_freed_memory():
        print("freed memory kept for reuse (mallopt), as PyTorch's caching allocator does on a GPU:")
        report(measure(x, proj, dev, args.warmup, args.repeats))
    print(f"load average at the end {os.getloadavg()[0]:.2f} (other jobs on the machine slow the wall times)")


if __name__ == "__main__":
    main()
