"""Time the alignment core (`distill_l2s.align`) on a batch shaped like the paper's, forward and backward.

    python benchmarks/bench_align.py [--repeats 15] [--device cpu] [--cpu-time]

Two ratios, each from the median of several timed repeats after warm-up, with torch's default threads:

1. `shrink` + `interpolate` + `distill_loss`, vectorised, against the per-utterance reference
   (`_ref_shrink`, `_ref_interpolate`, `_ref_distill_loss`, which loop over utterances and runs).
   This part measures the three functions alone, so the student frames are given in the teacher's
   width (as if projected before shrinking: the projection is linear and commutes with the run means);
   the projection's own cost is the subject of part 2. Goal: at least 20x faster.
2. The whole bridge (`shrink`, `Projection`, `interpolate`, `distill_loss`) against the projection's
   matrix product alone on the shrunk rows, the part no implementation can avoid. Goal: at most 1.3x.
   Beside it, the same bridge as `DistillL2S` runs it with `sync_free` (the CUDA default): the unchecked cores
   with the output padded to the T frames, which needs no host read but projects and compares T rows.

The batch: B=24 utterances of up to T=500 frames (10 s at 50 frames a second), student width 1024,
teacher width 768, vocabulary 40, teacher sequences of about 40 tokens. Lengths are close together,
as in length-grouped batches.

The logits imitate a trained CTC model rather than i.i.d. noise. With random logits two neighbouring
frames agree with probability 1/40, so almost every frame would be a run of its own: neither what
shrinking sees in training nor a fair load for a loop over runs. A trained CTC model's greedy path is mostly blank, with
each character a spike of one to three frames; at about 12 characters a second that is one label
every four frames or so, e.g. `ε ε a ε ε ε c c ε ε a ...`. `ctc_like_logits` draws such paths: blank
gaps of 1 to 5 frames, spikes of 1 to 3 frames, random non-blank labels, plus Gaussian noise.

Both parts are measured twice. First with glibc's default allocator, which returns large blocks to
the system when they are freed, so every large tensor of every step lands on fresh pages and pays
their page faults; then with glibc told to keep freed memory for reuse (`mallopt`), which is what
PyTorch's caching allocator does on a GPU and what jemalloc or tcmalloc do on a CPU. The first run
is what a plain CPU process sees; the second shows the cost of the computation itself.
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
from distill_l2s.align import Projection, _ref_distill_loss, _ref_interpolate, _ref_shrink, distill_loss, interpolate, shrink
from distill_l2s.align import _distill_loss, _interpolate, _shrink_means, _shrink_rows  # the cores, without host reads

B, T, D_STUDENT, D_TEACHER, V, BLANK = 24, 500, 1024, 768, 40, 0


def ctc_like_logits(gen: torch.Generator) -> torch.Tensor:
    "(B, T, V) logits whose greedy path looks like a trained CTC model's: mostly blank, short label spikes."
    paths = torch.full((B, T), BLANK)
    for b in range(B):  # building the data, not timed
        t = 0
        while t < T:
            t += int(torch.randint(1, 6, (1,), generator=gen))            # blank gap
            spike = int(torch.randint(1, 4, (1,), generator=gen))        # frames of one character
            paths[b, t:t + spike] = int(torch.randint(1, V, (1,), generator=gen))
            t += spike
    return torch.randn(B, T, V, generator=gen) + 6 * F.one_hot(paths, V)


def make_batch(device: str, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(int(0.8 * T), T + 1, (B,), generator=gen); lengths[0] = T
    t_len = torch.randint(30, 51, (B,), generator=gen)
    batch = dict(feats=torch.randn(B, T, D_STUDENT, generator=gen), logits=ctc_like_logits(gen), lengths=lengths,
                 teacher=torch.randn(B, int(t_len.max()), D_TEACHER, generator=gen), t_len=t_len)
    return {k: v.to(device) for k, v in batch.items()}


CLOCK = time.perf_counter  # wall time; `--cpu-time` switches to this thread's CPU time


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


def measure(x: dict, proj: Projection, dev: str, warmup: int, repeats: int) -> dict:
    "Median times (s) of the four workloads."
    feats = x["feats"].detach().requires_grad_()
    narrow = x["feats"][..., :D_TEACHER].detach().clone().requires_grad_()  # part 1: frames in the teacher's width
    n = shrink(x["feats"], x["logits"], x["lengths"], BLANK)[1]
    rows = torch.randn(B, int(n.max()), D_STUDENT, device=dev, requires_grad=True)  # shaped like the shrunk rows
    grad_out = torch.randn(B, int(n.max()), D_TEACHER, device=dev)

    def core(f):
        s, n = shrink(f, x["logits"], x["lengths"], BLANK)
        return distill_loss(s, interpolate(x["teacher"], x["t_len"], n), n)

    def core_ref(f):
        s = _ref_shrink(f, x["logits"], x["lengths"], BLANK)
        t = _ref_interpolate([t[:l] for t, l in zip(x["teacher"], x["t_len"].tolist())], [len(r) for r in s])
        return _ref_distill_loss(s, t)

    def bridge():
        s, n = shrink(feats, x["logits"], x["lengths"], BLANK)
        loss = distill_loss(proj(s), interpolate(x["teacher"], x["t_len"], n), n)
        torch.autograd.grad(loss, [feats, proj.weight])

    def bridge_sync_free():  # the cores at width T, as DistillL2S with sync_free: no host read
        row, n, _ = _shrink_rows(x["logits"], x["lengths"], (BLANK,))
        loss = _distill_loss(proj(_shrink_means(feats, row, T)), _interpolate(x["teacher"], x["t_len"], n, "nearest", T), n, "mse")
        torch.autograd.grad(loss, [feats, proj.weight])

    torch.testing.assert_close(core(narrow), core_ref(narrow))  # the two compute the same loss
    run = lambda fn: median_seconds(fn, dev, warmup, repeats)
    return dict(copy=run(lambda: narrow.detach().clone()),
                vec=run(lambda: torch.autograd.grad(core(narrow), narrow)),
                ref=run(lambda: torch.autograd.grad(core_ref(narrow), narrow)),
                bridge=run(bridge),
                bridge_sync_free=run(bridge_sync_free),
                matmul=run(lambda: torch.autograd.grad(proj(rows), [rows, proj.weight], grad_out)))


def report(t: dict):
    print(f"  1. shrink+interpolate+distill_loss: vectorised {t['vec'] * 1e3:.1f} ms, per-utterance reference "
          f"{t['ref'] * 1e3:.1f} ms -> {t['ref'] / t['vec']:.1f}x faster (goal >= 20x); one copy of the frames "
          f"(the floor: shrinking reads them once, its backward writes their gradient once) {t['copy'] * 1e3:.1f} ms")
    print(f"  2. whole bridge with Projection {t['bridge'] * 1e3:.1f} ms, projection matmul alone {t['matmul'] * 1e3:.1f} ms "
          f"-> {t['bridge'] / t['matmul']:.2f}x (goal <= 1.3x)")
    print(f"     the same without a host read (rows padded to T, as DistillL2S with sync_free) {t['bridge_sync_free'] * 1e3:.1f} ms "
          f"-> {t['bridge_sync_free'] / t['matmul']:.2f}x the matmul on the shrunk rows")


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
    n = shrink(x["feats"], x["logits"], x["lengths"], BLANK)[1]
    print(f"batch: B={B} T={T} D_student={D_STUDENT} D_teacher={D_TEACHER} V={V}; "
          f"frames {x['lengths'].min().item()}..{x['lengths'].max().item()}, "
          f"shrunk rows {n.min().item()}..{n.max().item()} (mean {n.float().mean().item():.0f}), "
          f"teacher tokens {x['t_len'].min().item()}..{x['t_len'].max().item()}")
    labels, valid = x["logits"].argmax(-1), torch.arange(T, device=dev) < x["lengths"][:, None]
    starts = torch.ones_like(valid); starts[:, 1:] = labels[:, 1:] != labels[:, :-1]
    print(f"runs of equal labels in the valid frames: {int((starts & valid).sum())}, of them not blank: "
          f"{int((starts & valid & (labels != BLANK)).sum())}")
    print(f"machine: {platform.platform()}, {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {dev}, load average {os.getloadavg()[0]:.2f}")
    clock = "CPU time of the one thread" if args.cpu_time else "wall time"
    print(f"median {clock} of {args.repeats} repeats after {args.warmup} warm-up, forward + backward:")
    print("glibc's default allocator (large tensors are fresh pages every time):")
    report(measure(x, proj, dev, args.warmup, args.repeats))
    if dev == "cpu" and keep_freed_memory():
        print("freed memory kept for reuse (mallopt), as PyTorch's caching allocator does on a GPU:")
        report(measure(x, proj, dev, args.warmup, args.repeats))
    print(f"load average at the end {os.getloadavg()[0]:.2f} (other jobs on the machine slow the wall times)")


if __name__ == "__main__":
    main()
