"""One training step at the paper's scale: plain CTC against Distill-L2S, step time and peak GPU memory.

    python benchmarks/bench_paper_step.py                       # on the GPU: fp16 and bf16, plain and Distill-L2S
    python benchmarks/bench_paper_step.py --nproc 2             # the same under torchrun, two processes (needs 2 GPUs)
    python benchmarks/bench_paper_step.py --modes plain,distill,distill-compiled   # also the compiled bridge
    python benchmarks/bench_paper_step.py --student whisper-small                  # a Whisper-small-sized student
    python benchmarks/bench_paper_step.py --tiny --device cpu --steps 2            # a tiny check of the script itself

Needs no hub. The student is built from XLSR-53's configuration (facebook/wav2vec2-large-xlsr-53: wav2vec 2.0 large
in the pre-norm layout, 24 layers, width 1024, 16 heads, 7-layer convolutional feature encoder with layer norm) with
random weights, set up as the paper fine-tunes it: feature encoder frozen, layer drop 0.1, attention and hidden
dropout 0.1, SpecAugment with mask_time_prob 0.05, a character vocabulary of 64. A batch holds 12 clips of 5 to 10 s
(16 kHz, padded to the longest, with an attention mask), about 15 labels a second and a transcript of about 2.5
words a second. Teacher features of width 768 (InfoXLM-base's) come from a `TeacherCache`, filled once by a random
width-768 text encoder: only the width and the token counts reach the step, as with InfoXLM's cached features.
Every step is autocast (fp16 with a gradient scaler, or bf16) with AdamW as the paper's Adam (lr 2e-5, betas 0.9 and
0.98, eps 1e-8).

Modes: `plain` (the student's own CTC loss), `distill` (`DistillL2S`, λ = 0.5, as `DistillTrainer` runs it:
`check_finite=False`, the default `sync_free`), `distill-compiled` (the same with `compile_bridge=True`). All modes live
in one process with the same initial weights and take turns step by step (the order rotates each round), with the
same batch and random state (layer drop, SpecAugment) in each round. A step is: copy the batch to the device, forward
and backward of one batch, an optimizer step. Timed per step (CUDA events on a GPU): forward + backward, optimizer.
Memory per mode on CUDA: what the mode holds between steps (weights, optimizer state; measured as it is created)
plus the most its steps allocate above that, so both modes are measured as if alone although both are resident.

The paper's batch is 24 clips: one process accumulates two batches of 12 per optimizer step, two processes one each.
The projected wall time of the paper's 20,000 steps is 20,000 x (batches per step x forward + backward + optimizer).
Goals: Distill-L2S at most 1.03x the plain step's time and at most +2% of its peak memory.

Host reads per step (an extra, untimed step per mode) are counted with `distill_l2s.align.HostReads` and, on CUDA,
with `torch.cuda.set_sync_debug_mode`, split into the student's own (transformers) and this library's.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
MODES = ("plain", "distill", "distill-compiled")
PAPER_BATCH, PAPER_STEPS = 24, 20_000
VOCAB = 64
XLSR53 = dict(  # facebook/wav2vec2-large-xlsr-53, as its config.json; the fine-tuning settings of the paper
    hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096, hidden_act="gelu",
    conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_bias=True,
    feat_extract_norm="layer", do_stable_layer_norm=True, num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
    feat_proj_dropout=0.1, layer_norm_eps=1e-5)
FINE_TUNE = dict(layerdrop=0.1, attention_dropout=0.1, hidden_dropout=0.1, activation_dropout=0.0, mask_time_prob=0.05,
                 mask_time_length=10, vocab_size=VOCAB, pad_token_id=0, ctc_loss_reduction="mean", ctc_zero_infinity=True)
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16, 16),
            conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2), conv_bias=True, feat_extract_norm="layer",
            do_stable_layer_norm=True, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, mask_time_length=2)
WORDS = ("time people year way day thing man world life hand part child eye woman place work week case point "
         "government company number group problem fact house water room mother area money story night").split()


def whisper_missing() -> str | None:
    "Why a Whisper student cannot be benchmarked here, or None."
    if importlib.util.find_spec("distill_l2s.whisper") is None:
        return ("skipped: `distill_l2s.whisper` is not in this checkout (Whisper CTC students are being added in "
                "nbs/12_whisper.ipynb); the Whisper-small-sized student runs once it exists")
    return ("skipped: `distill_l2s.whisper` exists but this benchmark has no Whisper-small builder yet; "
            "add it beside `build_student`")


def build_student(args):
    "The XLSR-53-sized student (or the tiny one) with random weights and the paper's fine-tuning settings."
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC
    student = Wav2Vec2ForCTC(Wav2Vec2Config(**{**(TINY if args.tiny else XLSR53), **FINE_TUNE}))
    student.freeze_feature_encoder()
    return student


def make_batches(args, rank: int) -> list[dict]:
    "`--batches` batches of `--batch` clips of `--min-s`..`--max-s` seconds, on the CPU (pinned when CUDA is used)."
    import torch
    g = torch.Generator().manual_seed(1000 + rank)
    out = []
    for _ in range(args.batches):
        secs = args.min_s + (args.max_s - args.min_s) * torch.rand(args.batch, generator=g)
        n = (secs * 16000).long()
        S = int(n.max())
        wave = torch.randn(args.batch, S, generator=g)
        mask = (torch.arange(S) < n[:, None]).long()
        wave = wave * mask  # zero-mean unit-variance clips, zero padding, as the collator pads
        u = (secs * 15).long()
        labels = torch.randint(1, VOCAB, (args.batch, int(u.max())), generator=g).masked_fill(torch.arange(int(u.max())) >= u[:, None], -100)
        texts = [" ".join(WORDS[i] for i in torch.randint(0, len(WORDS), (max(1, int(s * 2.5)),), generator=g)) for s in secs.tolist()]
        batch = dict(input_values=wave, attention_mask=mask, labels=labels)
        if args.device.startswith("cuda"): batch = {k: v.pin_memory() for k, v in batch.items()}
        out.append(dict(batch, texts=texts, seconds=secs.tolist()))
    return out


def fill_cache(args, batches: list[dict], tmp: Path):
    "A `TeacherCache` holding width-`--teacher-width` features of every transcript, filled by a random text encoder."
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer
    from distill_l2s.teacher import TeacherCache, TextTeacher
    from transformers.utils import logging
    logging.disable_progress_bar(); logging.set_verbosity_error()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    BertTokenizer(vocab={t: i for i, t in enumerate(vocab)}, model_max_length=512).save_pretrained(tmp / "teacher")
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=args.teacher_width, num_hidden_layers=1, num_attention_heads=12,
                         intermediate_size=args.teacher_width), add_pooling_layer=False).save_pretrained(tmp / "teacher")
    cache = TeacherCache(TextTeacher(str(tmp / "teacher"), device="cpu"), tmp / "cache")
    cache.get([t for b in batches for t in b["texts"]])
    cache.flush()
    return TeacherCache.open(cache.dir)  # read-only, as a run that reads features computed elsewhere


class Mode:
    "One mode's model, optimizer and measurements."
    def __init__(self, name: str, args, device, dist: bool):
        import torch
        from distill_l2s.model import DistillL2S
        self.name, self.device, self.cuda = name, device, device.type == "cuda"
        before = torch.cuda.memory_allocated(device) if self.cuda else 0
        torch.manual_seed(0)
        student = build_student(args)
        self.model = (student if name == "plain" else
                      DistillL2S(student, args.teacher_width, lam=0.5, check_finite=False, compile_bridge=name == "distill-compiled"))
        self.model.to(device).train()
        self.resident = torch.cuda.memory_allocated(device) - before if self.cuda else 0  # weights; the first step adds its state
        if dist:
            from torch.nn.parallel import DistributedDataParallel
            self.model = DistributedDataParallel(self.model, device_ids=[device.index] if self.cuda else None,
                                                 find_unused_parameters=True)  # layer drop leaves layers unused
        self.opt = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=2e-5, betas=(0.9, 0.98), eps=1e-8)
        self.transient, self.fwdbwd, self.optim, self.first = [], [], [], None

    def step(self, batch: dict, feats, dtype, scaler, seed: int, timed: bool):
        "Copy the batch to the device, forward and backward, optimizer step; record the times and memory."
        import numpy as np
        import torch
        cuda, dev = self.cuda, self.device
        if cuda:
            base = torch.cuda.memory_allocated(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            ev = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
            ev[0].record()
        t0 = time.perf_counter()
        torch.manual_seed(seed); np.random.seed(seed)  # the same layer drop and SpecAugment masks in every mode
        x = {k: batch[k].to(dev, non_blocking=True) for k in ("input_values", "attention_mask", "labels")}
        with torch.autocast(dev.type, dtype=dtype):
            if self.name == "plain": loss = self.model(**x).loss
            else: loss = self.model(**x, teacher_features=feats[0].to(dev, non_blocking=True),
                                    teacher_lengths=feats[1].to(dev, non_blocking=True)).loss
        (scaler.scale(loss) if scaler else loss).backward()
        if cuda: ev[1].record()
        t1 = time.perf_counter()
        if scaler: scaler.step(self.opt); scaler.update()
        else: self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        if cuda:
            ev[2].record(); torch.cuda.synchronize(dev)
            fb, op = ev[0].elapsed_time(ev[1]) / 1e3, ev[1].elapsed_time(ev[2]) / 1e3
            if self.first is None: self.resident += torch.cuda.memory_allocated(dev) - base  # optimizer state, DDP buckets
            self.transient.append(torch.cuda.max_memory_allocated(dev) - base)
        else: fb, op = t1 - t0, time.perf_counter() - t1
        if self.first is None: self.first = fb + op
        if timed: self.fwdbwd.append(fb); self.optim.append(op)

    def peak(self) -> float | None:
        "MiB this mode would peak at alone: what it holds between steps plus the most a step allocates above that."
        return None if not self.cuda else (self.resident + max(self.transient)) / 2**20


def host_reads(mode: Mode, batch, feats, dtype, scaler) -> dict:
    "Host reads of one untimed step, by who asked: the student (transformers), this library, anything else."
    import torch
    from distill_l2s.align import HostReads
    out = {}
    if mode.name != "distill-compiled":  # a dispatch mode and a compiled graph do not mix; the graph reads nothing
        with HostReads() as r: mode.step(batch, feats, dtype, scaler, seed=10**6, timed=False)
        out = {"transformers": r.count("/transformers/"), "distill_l2s": r.count("/distill_l2s/")}
        out["elsewhere"] = len(r.reads) - out["transformers"] - out["distill_l2s"]  # charged to this script: backward, optimizer
    if mode.cuda:  # the driver's view: every synchronising call, by the Python file that made it
        torch.cuda.set_sync_debug_mode("warn")
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            mode.step(batch, feats, dtype, scaler, seed=10**6 + 1, timed=False)
        torch.cuda.set_sync_debug_mode(0)
        files = [x.filename for x in w if "synchroniz" in str(x.message)]
        out["cuda_syncs"] = {"transformers": sum("/transformers/" in f for f in files),
                             "distill_l2s": sum("/distill_l2s/" in f for f in files), "all": len(files)}
    return out


def run(args) -> dict | None:
    "Measure every mode and dtype in this process (one rank under torchrun); return the results on rank 0."
    import torch
    dist = "LOCAL_RANK" in os.environ
    rank, world = (int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])) if dist else (0, 1)
    if args.device.startswith("cuda"):
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    else: device = torch.device(args.device)
    if args.threads: torch.set_num_threads(args.threads)
    batches = make_batches(args, rank)
    with tempfile.TemporaryDirectory() as tmp:  # each process its own cache, filled before the process group starts
        cache = fill_cache(args, batches, Path(tmp))
        t0 = time.perf_counter()
        feats = [cache.get(b["texts"]) for b in batches]  # as the collator does in a DataLoader worker
        cache_s = (time.perf_counter() - t0) / len(batches)
    if dist: torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda": feats = [(f.pin_memory(), l.pin_memory()) for f, l in feats]
    accumulate = max(1, PAPER_BATCH // (args.batch * world))
    results = {}
    for dname in args.dtypes.split(","):
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[dname]
        modes = [Mode(m, args, device, dist) for m in args.modes.split(",")]
        scalers = {m.name: torch.amp.GradScaler(device.type) if dtype == torch.float16 else None for m in modes}
        for r in range(args.warmup + args.steps):
            b = r % len(batches)
            for m in modes[r % len(modes):] + modes[:r % len(modes)]:
                m.step(batches[b], feats[b], dtype, scalers[m.name], seed=r, timed=r >= args.warmup)
        reads = {m.name: host_reads(m, batches[0], feats[0], dtype, scalers[m.name]) for m in modes}
        res = {}
        for m in modes:
            fb, op = statistics.median(m.fwdbwd), statistics.median(m.optim)
            res[m.name] = dict(step_s=fb + op, fwd_bwd_s=fb, optimizer_s=op, first_step_s=m.first, peak_mib=m.peak(),
                               resident_mib=m.resident / 2**20 if m.cuda else None,
                               projected_20k_h=PAPER_STEPS * (accumulate * fb + op) / 3600, host_reads=reads[m.name])
        for name, r_ in res.items():
            if name == "plain" or "plain" not in res: continue
            r_["time_vs_plain"] = r_["step_s"] / res["plain"]["step_s"]
            r_["memory_vs_plain"] = None if r_["peak_mib"] is None else r_["peak_mib"] / res["plain"]["peak_mib"]
            r_["goals_met"] = dict(time=r_["time_vs_plain"] <= 1.03,
                                   memory=None if r_["memory_vs_plain"] is None else r_["memory_vs_plain"] <= 1.02)
            if "compiled" in name:  # its first step compiled the bridge: the excess over the eager mode's first step
                r_["compile_s"] = r_["first_step_s"] - res.get("distill", r_)["first_step_s" if "distill" in res else "step_s"]
        results[dname] = res
        del modes
        if device.type == "cuda": torch.cuda.empty_cache()
    if dist: torch.distributed.destroy_process_group()
    if rank: return None
    seconds = [s for b in batches for s in b["seconds"]]
    return dict(student="tiny" if args.tiny else "XLSR-53 layout (random weights)", device=str(device),
                gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None, processes=world,
                batch=args.batch, clip_seconds=[round(min(seconds), 2), round(max(seconds), 2)], accumulate=accumulate,
                steps=args.steps, warmup=args.warmup, teacher_width=args.teacher_width, cache_get_s=cache_s,
                torch=torch.__version__, machine=f"{platform.platform()}, {os.cpu_count()} cores", results=results)


def report(out: dict):
    "Print the results as markdown tables."
    print(f"One training step, {out['student']}, batch {out['batch']} clips of {out['clip_seconds'][0]}-{out['clip_seconds'][1]} s "
          f"per process, {out['processes']} process(es) on {out['gpu'] or out['device']}; torch {out['torch']}; {out['machine']}")
    print(f"medians of {out['steps']} steps after {out['warmup']} warm-up; projected: {PAPER_STEPS:,} steps of {PAPER_BATCH} clips "
          f"({out['accumulate']} batch(es) per process per step); teacher features from the cache: {1e3 * out['cache_get_s']:.1f} ms a batch")
    for dname, res in out["results"].items():
        print(f"\n{dname} autocast\n")
        print("| mode | step s | fwd+bwd s | optimizer s | vs plain | peak MiB | vs plain | projected 20k steps h | host reads: student / distill_l2s / backward+optimizer |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, r in res.items():
            peak = "n/a (CPU)" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"
            vs_t = f"{r['time_vs_plain']:.3f}x" if "time_vs_plain" in r else ""
            vs_m = f"{100 * (r['memory_vs_plain'] - 1):+.2f}%" if r.get("memory_vs_plain") else ""
            hr = r["host_reads"]
            reads = f"{hr['transformers']} / {hr['distill_l2s']} / {hr['elsewhere']}" if "transformers" in hr else "compiled: not counted"
            if "cuda_syncs" in hr: reads += f" (CUDA syncs {hr['cuda_syncs']['transformers']} / {hr['cuda_syncs']['distill_l2s']})"
            extra = f"; compile {r['compile_s']:.1f} s" if "compile_s" in r else ""
            print(f"| {name} | {r['step_s']:.3f} | {r['fwd_bwd_s']:.3f} | {r['optimizer_s']:.3f} | {vs_t} | {peak} | {vs_m} | "
                  f"{r['projected_20k_h']:.2f} | {reads}{extra} |")
        for name, r in res.items():
            if "goals_met" in r:
                g = r["goals_met"]
                print(f"{name}: time {r['time_vs_plain']:.3f}x plain (goal <= 1.03x: {'met' if g['time'] else 'not met'}), memory "
                      + ("not measured on the CPU" if g["memory"] is None else
                         f"{100 * (r['memory_vs_plain'] - 1):+.2f}% (goal <= +2%: {'met' if g['memory'] else 'not met'})"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtypes", default="fp16,bf16", help="autocast dtypes, comma-separated: fp16, bf16")
    ap.add_argument("--modes", default="plain,distill", help=f"comma-separated, from {', '.join(MODES)}")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per mode")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per mode first")
    ap.add_argument("--batch", type=int, default=12, help="clips per batch per process")
    ap.add_argument("--batches", type=int, default=4, help="distinct batches, used in turn")
    ap.add_argument("--min-s", type=float, default=5.0)
    ap.add_argument("--max-s", type=float, default=10.0)
    ap.add_argument("--teacher-width", type=int, default=768)
    ap.add_argument("--student", default="xlsr-53", choices=("xlsr-53", "whisper-small"))
    ap.add_argument("--nproc", type=int, default=1, help="processes under torchrun (one per GPU)")
    ap.add_argument("--tiny", action="store_true", help="a tiny student: checks the script, measures nothing of interest")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if bad := [m for m in args.modes.split(",") if m not in MODES]: ap.error(f"--modes: unknown {bad}; choose from {MODES}")
    if bad := [d for d in args.dtypes.split(",") if d not in ("fp16", "bf16")]: ap.error(f"--dtypes: unknown {bad}")
    if args.student == "whisper-small":
        print(whisper_missing()); return
    import torch
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("no CUDA device: this benchmark measures a GPU step (use --tiny --device cpu to check the script)")
    if args.nproc > 1 and "LOCAL_RANK" not in os.environ:
        if args.device.startswith("cuda") and torch.cuda.device_count() < args.nproc:
            print(f"skipped: --nproc {args.nproc} needs {args.nproc} GPUs, this machine has {torch.cuda.device_count()}"); return
        argv = [a for a in sys.argv[1:]]
        i = argv.index("--nproc"); del argv[i:i + 2]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}", __file__, *argv]
        sys.exit(subprocess.run(cmd).returncode)
    out = run(args)
    if out is None: return  # not rank 0
    report(out)
    if args.json: args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
