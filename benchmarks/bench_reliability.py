"""What two reliability fixes cost and save, measured side by side in one run.

1. `quiet_decoding` (distill_l2s.data): decoding a clip with fd 2 captured (what `load_audio` does) against the same
   decode without the capture, on Common Voice-like clips (48 kHz mono MP3, 2-8 s), best of `--repeat` passes;
   and the redirect alone, per call.
2. Hub names with no hub: `check_config` with `--student facebook/wav2vec2-large-xlsr-53` and
   `--teacher microsoft/infoxlm-base` on a machine that cannot reach the hub, each in a fresh process, with
   `check_hub` (the fix) and with it bypassed (as before the fix: huggingface_hub retries every request).
   The hub address is the default one (no network here: name resolution fails), or `--endpoint`.

Run from the repository root:  python benchmarks/bench_reliability.py [--clips 40] [--repeat 5] [--endpoint URL]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from distill_l2s.data import quiet_decoding, write_cv_fixture  # noqa: E402

HUB_CHECK = """
import sys, time
from distill_l2s import teacher
from distill_l2s.train import check_config, make_config
if sys.argv[1] == "bypassed": teacher._HUB["online"] = True  # the code path before the fix: no reachability check
cfg = make_config("paper", lang_dir=sys.argv[2], output_dir=sys.argv[3],
                  student="facebook/wav2vec2-large-xlsr-53", teacher="microsoft/infoxlm-base")
start = time.perf_counter()
try: check_config(cfg)
except ValueError as e: ok = "does not load" in str(e)
print(f"{time.perf_counter() - start:.2f} {ok}")
"""


def best(fn, n, repeat):
    "Fastest of `repeat` passes of fn(0) .. fn(n-1), in seconds per call."
    out = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for i in range(n): fn(i)
        out = min(out, (time.perf_counter() - start) / n)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--endpoint", default=None, help="hub address to try (default: huggingface_hub's)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [dict(sentence="a clip", duration=2 + 6 * i / max(a.clips - 1, 1)) for i in range(a.clips)]
        clips = sorted((write_cv_fixture(tmp, {"train": rows}) / "clips").iterdir())
        seconds = sum(sf.info(str(c)).duration for c in clips)

        def plain(i): sf.read(str(clips[i]), dtype="float32", always_2d=True)
        def quiet(i):
            with quiet_decoding(): sf.read(str(clips[i]), dtype="float32", always_2d=True)
        def redirect(i):
            with quiet_decoding(): pass
        times = {}
        for _ in range(2):  # alternate, so that both meet the same load
            for name, fn in (("plain", plain), ("quiet", quiet)): times[name] = min(times.get(name, 1e9), best(fn, len(clips), a.repeat))
        alone = best(redirect, 2000, a.repeat)
        print(f"decode, {len(clips)} clips, {seconds / len(clips):.1f} s of audio each on average:")
        print(f"  without capture {times['plain'] * 1e3:.3f} ms a clip, with quiet_decoding {times['quiet'] * 1e3:.3f} ms "
              f"(ratio {times['quiet'] / times['plain']:.3f}); the redirect alone {alone * 1e6:.1f} us a call")

        lang = write_cv_fixture(Path(tmp) / "cv", {s: [dict(sentence="a clip")] for s in ("train", "dev", "test")})
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
        if a.endpoint: env["HF_ENDPOINT"] = a.endpoint
        print(f"check_config with two hub names, no hub reachable ({a.endpoint or 'default hub address'}), fresh process each:")
        for mode in ("bypassed", "check_hub"):
            r = subprocess.run([sys.executable, "-c", HUB_CHECK, mode, str(lang), str(Path(tmp) / "run")],
                               env=env, capture_output=True, text=True, timeout=900)
            took, ok = r.stdout.split()[-2:] if r.returncode == 0 else ("nan", "False")
            retries = r.stderr.count("Retrying in")
            label = "before the fix (no reachability check)" if mode == "bypassed" else "with check_hub"
            print(f"  {label:40s} {float(took):6.2f} s, {retries} retries logged, clear error: {ok}")


if __name__ == "__main__":
    main()
