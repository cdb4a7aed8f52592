"""The synthesised corpus's sentences ship with the package, and the library works without the demo extra."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_corpus_files_are_package_data():
    tomllib = pytest.importorskip("tomllib")
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = cfg["tool"]["setuptools"]["package-data"]["distill_l2s"]
    shipped = {p for g in globs for p in (ROOT / "distill_l2s").glob(g)}
    corpus = set((ROOT / "distill_l2s" / "corpus").iterdir())
    assert corpus and corpus <= shipped, sorted(p.name for p in corpus - shipped)
    from distill_l2s.synth import LANGUAGES
    assert {p.stem for p in corpus if p.suffix == ".txt"} == set(LANGUAGES)
    assert "CC0-1.0" in (ROOT / "distill_l2s" / "corpus" / "LICENSE").read_text()


def test_works_without_espeakng_loader():
    code = """
import sys
sys.modules["espeakng_loader"] = None  # as if the demo extra were not installed
from distill_l2s.synth import load_sentences, plan_language, speak
assert len(load_sentences("ta")) >= 200 and len(plan_language("ta", 10)) == 90
try: speak("hello")
except ImportError as e: print(e)
else: raise SystemExit("speak worked without espeakng-loader")
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 'pip install "distill-l2s[demo]"' in r.stdout
