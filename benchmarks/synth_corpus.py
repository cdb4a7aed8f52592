"""Time the synthesised corpus: espeak-ng per utterance, and the default corpus end to end.

Usage (from the repository root): PYTHONPATH=. python benchmarks/synth_corpus.py [--workers N] [--scale S] [--out DIR]
Prints a Markdown table of clips and minutes per language and split, and the synthesis speed.
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from distill_l2s.synth import (LANGUAGES, espeak_sample_rate, espeak_version, load_sentences, speak, spoken_form,
                               synthesize_corpus)


def time_speak(n=50):
    "Milliseconds per utterance of espeak-ng alone, and seconds of speech per utterance, per language."
    out = {}
    for lang, spec in LANGUAGES.items():
        ss = [spoken_form(s, lang) for s in load_sentences(lang)[:n]]
        speak(ss[0], spec.voice)  # load the voice
        t0 = time.perf_counter()
        samples = sum(len(speak(s, spec.voice)) for s in ss)
        out[lang] = (1000 * (time.perf_counter() - t0) / n, samples / espeak_sample_rate() / n)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--out", type=Path, default=None, help="corpus folder (default: a temporary one)")
    a = p.parse_args()
    print(f"espeak-ng {espeak_version()}, {espeak_sample_rate()} Hz")
    sp = time_speak()
    print(f"espeak-ng alone: {np.mean([v[0] for v in sp.values()]):.1f} ms an utterance on average "
          f"({min(v[0] for v in sp.values()):.1f} to {max(v[0] for v in sp.values()):.1f} across languages)")
    with tempfile.TemporaryDirectory() as d:
        out = a.out or Path(d)
        t0 = time.perf_counter()
        info = synthesize_corpus(out, scale=a.scale, workers=a.workers)
        secs = time.perf_counter() - t0
        n = sum(s["clips"] for i in info.values() for s in i["stats"].values())
        mins = sum(s["minutes"] for i in info.values() for s in i["stats"].values())
        mb = sum(f.stat().st_size for f in out.rglob("*.mp3")) / 2**20
        print(f"\n{n} clips, {mins:.1f} min of speech, {mb:.0f} MiB of MP3 in {secs:.0f} s "
              f"({n / secs:.0f} clips/s, {60 * mins / secs:.0f}x real time)\n")
        print("| lang | train clips | train min | dev min | test min | mean clip s | speakers (train/dev/test) |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for lang, i in info.items():
            st = i["stats"]
            mean = 60 * sum(s["minutes"] for s in st.values()) / sum(s["clips"] for s in st.values())
            print(f"| {lang} | {st['train']['clips']} | {st['train']['minutes']:.1f} | {st['dev']['minutes']:.1f} | "
                  f"{st['test']['minutes']:.1f} | {mean:.2f} | {st['train']['speakers']}/{st['dev']['speakers']}/{st['test']['speakers']} |")


if __name__ == "__main__":
    main()
