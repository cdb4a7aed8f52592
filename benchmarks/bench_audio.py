"""Audio throughput on one CPU core: seconds of 48 kHz MP3 audio turned into 16 kHz model input per second of wall time.

Writes Common Voice-like clips (48 kHz mono MP3 at 64 kbit/s constant bitrate, 2-8 s, a voiced-sounding tone with
noise), then times, best of `--repeat` passes over all clips (stages take turns, so they meet the same load):

  decode              soundfile.read alone: the floor
  decode + resample   `load_audio`: decode, mix to mono, resample 48 -> 16 kHz (cached torchaudio Resample)
  dataset item        `SpeechDataset.__getitem__`: the above plus zero-mean unit-variance scaling and labels

Run from the repository root:  python benchmarks/bench_audio.py [--clips 60] [--repeat 7]
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from distill_l2s.data import SpeechDataset, load_audio, read_split, write_cv_fixture  # noqa: E402
from distill_l2s.text import build_vocab, make_processor  # noqa: E402


def best_times(stages: dict, n: int, repeat: int) -> dict:
    "Fastest of `repeat` passes of fn(0) .. fn(n-1) per stage, in seconds; stages alternate so they share the load."
    best = dict.fromkeys(stages, float("inf"))
    for _ in range(repeat):
        for name, fn in stages.items():
            t0 = time.perf_counter()
            for i in range(n): fn(i)
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=60, help="number of clips")
    ap.add_argument("--repeat", type=int, default=7, help="passes per stage; the fastest counts")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    durations = rng.uniform(2, 8, args.clips)
    with tempfile.TemporaryDirectory() as tmp:
        rows = {"train": [dict(sentence=f"clip number {i} of the benchmark", duration=float(d))
                          for i, d in enumerate(durations)]}
        lang_dir = write_cv_fixture(tmp, rows, seed=args.seed)
        for p in sorted((lang_dir / "clips").iterdir()):       # re-encode as Common Voice does: 64 kbit/s CBR
            wave, sr = sf.read(p, dtype="float32")
            sf.write(p, wave, sr, format="MP3", bitrate_mode="CONSTANT", compression_level=0.88)
        records, _ = read_split(lang_dir, "train")
        paths = [r.path for r in records]
        audio_s = sum(sf.info(str(p)).duration for p in paths)
        kbps = sum(p.stat().st_size for p in paths) * 8 / audio_s / 1000
        info = sf.info(str(paths[0]))
        ds = SpeechDataset(records, make_processor(build_vocab(r.text for r in records)))

        stages = {"decode": lambda i: sf.read(str(paths[i]), dtype="float32"),
                  "decode + resample": lambda i: load_audio(paths[i]),
                  "dataset item": lambda i: ds[i]}
        for fn in stages.values(): fn(0)                     # warm up: library loading, resampler kernel
        print(f"{len(paths)} clips, {audio_s:.0f} s of audio, {info.samplerate} Hz, {info.channels} channel(s), "
              f"{kbps:.0f} kbit/s MP3, torch threads {torch.get_num_threads()}, best of {args.repeat}")
        print(f"{'stage':20s} {'wall s':>8s} {'x real time':>12s}")
        for name, t in best_times(stages, len(paths), args.repeat).items():
            print(f"{name:20s} {t:8.3f} {audio_s / t:12.0f}")
        print(f"load average over the last minute: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
