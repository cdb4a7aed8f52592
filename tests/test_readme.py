"""The README's Python example runs as written: the transformers pipeline on a saved student, fed audio that soundfile
decoded, in a process where this library cannot be imported and (on machines without it) without ffmpeg."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S | re.M)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    "A folder holding what the README's example names: a saved student at runs/ta-distill/model and clip1.mp3."
    import soundfile as sf
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC
    from distill_l2s.text import build_vocab, make_processor
    from distill_l2s.train import TINY_STUDENT
    d = tmp_path_factory.mktemp("readme")
    model = d / "runs" / "ta-distill" / "model"
    proc = make_processor(build_vocab(["habari ya asubuhi", "lala salama"]), save_dir=model)
    cfg = Wav2Vec2Config(**TINY_STUDENT, vocab_size=len(proc.tokenizer), pad_token_id=proc.tokenizer.pad_token_id)
    Wav2Vec2ForCTC(cfg).save_pretrained(model)
    t = np.arange(int(1.5 * 44100)) / 44100
    wave = 0.3 * np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], 1)  # stereo, 44.1 kHz: both paths run
    sf.write(d / "clip1.mp3", wave.astype("float32"), 44100, format="MP3")
    return d


def _run(code: str, cwd: Path, library: bool = False):
    "Run `code` in a fresh Python in which `distill_l2s` cannot be imported (unless `library`)."
    guard = "" if library else "import sys; sys.modules['distill_l2s'] = None  # the README says: without this library\n"
    env = {**os.environ, "PYTHONPATH": "", "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", guard + code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_pipeline_example_runs(folder):
    (block,) = [b for b in readme_python_blocks() if "pipeline(" in b and "import distill_l2s" not in b]
    assert '"raw"' in block and "sampling_rate" in block, "the example must pass decoded audio, which needs no ffmpeg"
    r = _run(block, folder)
    assert r.returncode == 0, r.stderr[-3000:]
    (line,) = r.stdout.splitlines() or [""]  # one transcript (a random student writes anything, maybe nothing)
    # the same text as the library's own transcription of that clip
    from distill_l2s.train import load_student, transcribe
    student, processor = load_student(folder / "runs" / "ta-distill" / "model")
    assert line == transcribe(student, processor, [folder / "clip1.mp3"])[0]


@pytest.mark.skipif(shutil.which("ffmpeg") is not None, reason="ffmpeg is installed here: a file name works")
def test_a_file_name_needs_ffmpeg(folder):
    "What the README says happens on a machine without ffmpeg."
    r = _run("from transformers import pipeline\n"
             "pipeline('automatic-speech-recognition', model='runs/ta-distill/model')('clip1.mp3')\n", folder)
    msg = "ValueError: ffmpeg was not found but is required to load audio files from filename"
    assert r.returncode != 0 and msg in r.stderr, r.stderr[-2000:]
    assert msg in (ROOT / "README.md").read_text(encoding="utf-8")


def test_whisper_student_loads_after_import(folder):
    "The README's Whisper lines: a saved whisper_ctc student transcribes through the pipeline after `import distill_l2s`, not before."
    from distill_l2s.text import build_vocab, make_processor
    from distill_l2s.train import load_student, transcribe
    from distill_l2s.whisper import save_tiny_whisper, whisper_ctc_from_pretrained, whisper_processor
    model = folder / "runs" / "ta-whisper" / "model"
    tok = make_processor(build_vocab(["habari ya asubuhi", "lala salama"])).tokenizer
    student = whisper_ctc_from_pretrained(str(save_tiny_whisper(folder / "tiny-whisper")), vocab_size=len(tok),
                                          pad_token_id=tok.pad_token_id)
    student.save_pretrained(model); whisper_processor(tok, student.config.num_mel_bins, save_dir=model)
    (plain,) = [b for b in readme_python_blocks() if "pipeline(" in b and "import distill_l2s" not in b]
    (block,) = [b for b in readme_python_blocks() if "import distill_l2s" in b]
    assert 'model="runs/ta-whisper/model"' in block
    rest = plain.split("asr = ", 1)[1].split("\n", 1)[1]  # the README's lines after the pipeline is made
    code = "import soundfile as sf\nfrom transformers import pipeline\n" + block + rest
    r = _run(code, folder, library=True)
    assert r.returncode == 0, r.stderr[-3000:]
    (line,) = r.stdout.splitlines() or [""]
    student, processor = load_student(model)
    assert line == transcribe(student, processor, [folder / "clip1.mp3"])[0]
    r = _run(code.replace("import distill_l2s", "pass"), folder, library=True)  # without the import: transformers alone
    assert r.returncode != 0 and "whisper_ctc" in r.stderr, r.stderr[-2000:]
