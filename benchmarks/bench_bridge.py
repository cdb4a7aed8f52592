"""Time `DistillL2S`'s bridge over the batch shapes of a real epoch: host reads, eager against `torch.compile`.

    python benchmarks/bench_bridge.py [--device cpu|cuda] [--cpu-time] [--batch-size 8] [--epochs 2]
                                      [--baseline-src OLD_CHECKOUT] [--modes read,sync-free,compiled]

The bridge is what Distill-L2S adds to a CTC step: shrink the student's frames, project them (1024 -> 768, the
paper's XLSR-53 and InfoXLM widths), resize the teacher's tokens, compare; forward and backward (gradients for the
frames and the projection). It runs on the shapes of the synthesised Swahili corpus (150 training clips, built in a
temporary folder unless `--corpus` names one): the batches the length-grouped sampler forms, epoch after epoch, with
the frames the wav2vec2 feature encoder gives each clip, the teacher tokens multilingual-e5's tokenizer gives each
transcript (XLM-R's vocabulary, as InfoXLM's), and greedy CTC paths with one label spike per transcript character,
as a trained student predicts. Values are random; only the shapes and the runs come from the corpus.

Modes, taking turns batch by batch (the order rotates), so that a shared machine's slow phases hit all alike:

- `old`: the bridge as `DistillL2S.forward` ran it before the sync-free change, from the public functions of the
  checkout named by `--baseline-src` (a folder holding an older `distill_l2s`, e.g. from `git archive`);
- `read`: `DistillL2S.bridge` with `sync_free=False` (the CPU default): one host read sizes the shrunk rows;
- `sync-free`: `DistillL2S.bridge` with `sync_free=True` (the CUDA default): rows padded to the frames, no read;
- `compiled`: the sync-free bridge under `torch.compile` (`compile_bridge=True`), dynamic sizes. Its first call
  compiles (a fresh inductor cache unless `--warm-cache`); every later graph compiled counts as a recompile.

For each mode: host reads per call (counted with `HostReads`; on CUDA also by `torch.cuda.set_sync_debug_mode`),
the median time per batch, the total over all batches after the first, and for `compiled` the compile time and the
number of graphs, with the batches after which compilation paid for itself against `sync-free`.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
MODES = ("old", "read", "sync-free", "compiled")


def load_old(src: Path):
    "The `align` module of an older checkout, under another name, for the `old` mode."
    spec = importlib.util.spec_from_file_location("old_align", src / "distill_l2s" / "align.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def epoch_shapes(corpus: Path | None, batch_size: int, epochs: int) -> list[dict]:
    "Per batch of `epochs` epochs of the Swahili corpus: frames, label lengths and teacher tokens of its clips."
    from transformers import AutoTokenizer
    from distill_l2s.data import ctc_frames, length_grouped_sampler, read_split
    from distill_l2s.e5 import offline_teacher_path
    from distill_l2s.synth import synthesize_corpus
    tmp = None
    if corpus is None:
        tmp = tempfile.TemporaryDirectory()
        corpus = Path(tmp.name)
    lang_dir = synthesize_corpus(corpus, ["sw"], progress=False)["sw"]["dir"]
    records, _ = read_split(lang_dir, "train")
    tok = AutoTokenizer.from_pretrained(offline_teacher_path())
    frames = [ctc_frames(round(r.duration * 16000)) for r in records]
    tokens = [len(ids) for ids in tok([r.text for r in records])["input_ids"]]
    chars = [len(r.text) for r in records]
    sampler = length_grouped_sampler([r.duration for r in records], batch_size, seed=0)
    batches = []
    for _ in range(epochs):
        order = list(sampler)
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            batches.append(dict(frames=[frames[j] for j in idx], chars=[chars[j] for j in idx], tokens=[tokens[j] for j in idx]))
    if tmp is not None: tmp.cleanup()
    return batches


def make_batch(shape: dict, d_student: int, d_teacher: int, vocab: int, device: str, seed: int) -> dict:
    "Random features of the batch's shape; logits whose greedy path has one spike (1-2 frames) per character."
    import torch
    g = torch.Generator().manual_seed(seed)
    frames, chars, tokens = shape["frames"], shape["chars"], shape["tokens"]
    B, T, L = len(frames), max(frames), max(tokens)
    paths = torch.zeros(B, T, dtype=torch.long)  # 0 = blank
    for b, (f, c) in enumerate(zip(frames, chars)):  # building the data, not timed
        starts = torch.randperm(max(f - 1, 1), generator=g)[:min(c, f // 2)].sort().values
        for s in starts.tolist(): paths[b, s:s + 1 + int(torch.randint(0, 2, (1,), generator=g))] = int(torch.randint(1, vocab, (1,), generator=g))
    logits = torch.randn(B, T, vocab, generator=g) + 6 * torch.nn.functional.one_hot(paths, vocab)
    batch = dict(feats=torch.randn(B, T, d_student, generator=g), logits=logits, frames=torch.tensor(frames),
                 teacher=torch.randn(B, L, d_teacher, generator=g), t_lens=torch.tensor(tokens))
    return {k: v.to(device) for k, v in batch.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cpu-time", action="store_true", help="one torch thread, timed by its CPU time (steadier on a shared machine)")
    ap.add_argument("--batch-size", type=int, default=8, help="utterances per batch (8: the replication's; the paper's is 24)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--corpus", type=Path, help="folder for the synthesised corpus (default: a temporary one)")
    ap.add_argument("--modes", default="read,sync-free,compiled", help=f"comma-separated, from {', '.join(MODES)}")
    ap.add_argument("--baseline-src", type=Path, help="checkout whose distill_l2s/align.py the `old` mode runs")
    ap.add_argument("--warm-cache", action="store_true", help="keep inductor's on-disk cache (default: a fresh one, cold compile)")
    ap.add_argument("--d-student", type=int, default=1024)
    ap.add_argument("--d-teacher", type=int, default=768)
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if bad := [m for m in modes if m not in MODES]: ap.error(f"--modes: unknown {bad}; choose from {MODES}")
    if "old" in modes and args.baseline_src is None: ap.error("the `old` mode needs --baseline-src")
    if not args.warm_cache: os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")
    warnings.filterwarnings("ignore", message=".*CUDA_HOME.*")

    import torch
    import torch._dynamo.utils
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC
    from distill_l2s.align import HostReads
    from distill_l2s.model import DistillL2S, _compiled

    dev, cuda = args.device, args.device.startswith("cuda")
    clock = time.perf_counter
    if args.cpu_time: torch.set_num_threads(1); clock = time.thread_time
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    V = 40
    shapes = epoch_shapes(args.corpus, args.batch_size, args.epochs)
    # the student is never run: DistillL2S needs one for its settings, and its width sizes the projection
    student = Wav2Vec2ForCTC(Wav2Vec2Config(vocab_size=V, pad_token_id=0, hidden_size=args.d_student, num_hidden_layers=1,
                                            num_attention_heads=1, intermediate_size=8, conv_dim=(8,), conv_kernel=(10,),
                                            conv_stride=(5,), num_conv_pos_embeddings=2, num_conv_pos_embedding_groups=1))
    torch.manual_seed(0)
    model = DistillL2S(student, args.d_teacher).to(dev)
    proj = model.projection
    old = load_old(args.baseline_src) if "old" in modes else None

    def run(mode: str, x: dict):
        "One bridge forward + backward."
        feats = x["feats"].detach().requires_grad_()
        if mode == "old":  # as DistillL2S.forward did before: the public functions, three host reads
            s, n = old.shrink(feats, x["logits"], x["frames"], 0)
            pred = proj(s)
            kd = old.distill_loss(pred, old.interpolate(x["teacher"], x["t_lens"], n, width=pred.shape[1]), n)
        else:
            bridge = _compiled() if mode == "compiled" else DistillL2S.bridge
            kd = bridge(model, feats, x["logits"], x["frames"], x["teacher"], x["t_lens"], mode != "read")[0]
        torch.autograd.grad(kd, [feats, proj.weight])

    first = make_batch(shapes[0], args.d_student, args.d_teacher, V, dev, 0)
    reads, syncs = {}, {}
    for m in modes:
        if m == "compiled": continue  # a dispatch mode cannot run under torch.compile; its graph holds no read (see 04_model)
        with HostReads() as r: run(m, first)
        reads[m] = len(r.reads)
        if cuda:
            torch.cuda.set_sync_debug_mode("warn")
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                run(m, first); sync()
            torch.cuda.set_sync_debug_mode(0)
            syncs[m] = sum("synchroniz" in str(x.message) for x in w)

    times = {m: [] for m in modes}
    graphs = []
    torch._dynamo.reset(); torch._dynamo.utils.counters.clear()
    for i, shape in enumerate(shapes):
        x = make_batch(shape, args.d_student, args.d_teacher, V, dev, i)
        for m in modes[i % len(modes):] + modes[:i % len(modes)]:
            sync(); t0 = clock(); run(m, x); sync()
            times[m].append(clock() - t0)
        if "compiled" in modes: graphs.append(torch._dynamo.utils.counters["stats"]["unique_graphs"])

    n_b = len(shapes)
    sizes = sorted({len(s["frames"]) for s in shapes})
    print(f"bridge forward + backward on {n_b} batches ({args.epochs} epochs of the synthesised Swahili corpus, 150 clips, "
          f"batch size {args.batch_size}; batch sizes {sizes}), frames per batch {min(max(s['frames']) for s in shapes)}.."
          f"{max(max(s['frames']) for s in shapes)}, teacher tokens {min(max(s['tokens']) for s in shapes)}.."
          f"{max(max(s['tokens']) for s in shapes)}; widths {args.d_student} -> {args.d_teacher}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {dev}, {'CPU time of the thread' if args.cpu_time else 'wall time'}, load average {os.getloadavg()[0]:.2f}")
    print()
    print("| mode | host reads per call | median per batch ms | total after batch 1 s | first call s | graphs compiled |")
    print("|---|---|---|---|---|---|")
    for m in modes:
        t = times[m]
        r = "0 (compiled graph)" if m == "compiled" else str(reads[m]) + (f", CUDA syncs {syncs[m]}" if cuda else "")
        print(f"| {m} | {r} | {1e3 * statistics.median(t[1:] or t):.1f} | {sum(t[1:]):.3f} | {t[0]:.2f} | "
              f"{graphs[-1] if m == 'compiled' else '-'} |")
    if "compiled" in modes:
        print(f"\ngraphs compiled after each batch: {graphs} (a rise after the first batch is a recompile)")
        ref = "sync-free" if "sync-free" in modes else next((m for m in modes if m != "compiled"), None)
        if ref:
            steady = statistics.median(times["compiled"][1:]) if n_b > 1 else float("nan")
            compile_s = times["compiled"][0] - steady
            saved = statistics.median(times[ref][1:]) - steady if n_b > 1 else float("nan")
            verdict = (f"pays for its compile time after {compile_s / saved:,.0f} batches" if saved > 0
                       else "never pays for its compile time (it is not faster)")
            print(f"compiled against {ref}: compile time about {compile_s:.1f} s (first call minus the median), "
                  f"{1e3 * saved:+.2f} ms saved per batch -> {verdict}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
