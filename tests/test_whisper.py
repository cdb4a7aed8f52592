"""Whisper students end to end, offline: the pretrained whisper-base through the command line (train, eval, transcribe,
transformers' pipeline after `import distill_l2s`), and a tiny random Whisper through `train` (a frozen bottom read from
its cache, SpecAugment on): killed and resumed it ends bit-identical to an uninterrupted run, and its saved student
loads with `AutoModelForCTC`. Uses the generated Common Voice folder and tiny teacher of `test_train_cli.py`.
"""
import json
import signal
import subprocess
import sys

import pytest
from conftest import warm_run

from test_train_cli import ENV, KILLER, run, work  # noqa: F401  (`work` is a fixture)


@pytest.mark.slow  # the real whisper-base through three commands (about 30 s); CI runs it with the slow tests; tiny Whisper students are trained by default (test_tiny_whisper_resume_and_reload, nbs/12_whisper)
def test_whisper_base_offline(work):
    "The issue's check: `--preset tiny --student whisper-base` trains with no network; the student transcribes."
    out = work["dir"] / "whisper-base"
    run(work, "distill-l2s-train", work["lang"], out, "--preset", "tiny", "--student", "whisper-base",
        "--teacher", work["teacher"], "--lam", "0.5")
    res = json.loads((out / "results.json").read_text())
    assert (res["student"], res["steps"], res["lam"]) == ("whisper-base", 8, 0.5)
    assert json.loads((out / "model" / "config.json").read_text())["model_type"] == "whisper_ctc"
    r = run(work, "distill-l2s-eval", out / "model", work["lang"], "--split", "test", "--output", out / "test.json")
    ev = json.loads((out / "test.json").read_text())
    assert (ev["cer"], ev["wer"]) == (res["test"]["cer"], res["test"]["wer"]), (ev, res["test"])
    clip = sorted((work["lang"] / "clips").glob("*.mp3"))[0]
    cli_text = run(work, "distill-l2s-transcribe", out / "model", clip).stdout.rstrip("\n")
    script = f"""
import distill_l2s
from distill_l2s.data import load_audio
from transformers import pipeline
asr = pipeline("automatic-speech-recognition", model={str(out / "model")!r})
print(repr(asr({{"raw": load_audio({str(clip)!r}), "sampling_rate": 16000}})["text"]))
"""
    r = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert eval(r.stdout.strip().splitlines()[-1]) == cli_text


def test_tiny_whisper_resume_and_reload(work):
    "A tiny random Whisper with a cached frozen bottom: resume after SIGKILL is exact; the saved student reloads."
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCTC
    from distill_l2s.train import make_config, train
    from distill_l2s.whisper import WhisperForCTC, save_tiny_whisper
    student = save_tiny_whisper(work["dir"] / "tiny-whisper", layers=2)
    settings = dict(lang_dir=str(work["lang"]), teacher=str(work["teacher"]), student=str(student), lam=0.5, max_steps=12,
                    frozen_layers=1, frozen_cache="auto", mask_time_prob=0.2)
    ref = train(make_config("tiny", dict(settings, output_dir=str(work["dir"] / "tw-ref"))))
    out = work["dir"] / "tw-killed"
    r = warm_run(["-c", KILLER.format(step=4, cfg=dict(settings, output_dir=str(out)))], ENV, timeout=600)
    assert r.returncode == -signal.SIGKILL, r.stderr[-3000:]
    res = train(make_config("tiny", dict(settings, output_dir=str(out))), resume=True)
    final = [load_file(d / "checkpoint-12" / "model.safetensors") for d in (out, work["dir"] / "tw-ref")]
    for k in final[0]: assert torch.equal(final[0][k], final[1][k]), k
    assert (res["dev"], res["test"], res["weights_digest"]) == (ref["dev"], ref["test"], ref["weights_digest"])
    assert (out / "frozen_cache").is_dir()
    model = AutoModelForCTC.from_pretrained(out / "model")
    assert isinstance(model, WhisperForCTC) and model.config.frozen_layers == 1
    r = run(work, "distill-l2s-eval", out / "model", work["lang"], "--split", "dev", "--output", out / "dev.json")
    assert json.loads((out / "dev.json").read_text())["cer"] == res["dev"]["cer"]


def test_whisper_settings_checked(work):
    "Freezing options refuse students they do not apply to, before anything loads."
    from distill_l2s.train import check_config, make_config
    base = dict(lang_dir=str(work["lang"]), output_dir=str(work["dir"] / "never"), teacher=str(work["teacher"]))
    with pytest.raises(ValueError, match="apply to students with a frozen-layer cache"): check_config(make_config("tiny", dict(frozen_layers=1), **base))
    from distill_l2s.whisper import save_tiny_whisper
    student = str(save_tiny_whisper(work["dir"] / "tiny-whisper-2", layers=2))
    with pytest.raises(ValueError, match="must lie in 0..2"):
        check_config(make_config("tiny", dict(frozen_layers=3), student=student, **base))
    with pytest.raises(ValueError, match="needs a frozen bottom"):
        check_config(make_config("tiny", dict(frozen_cache="auto"), student=student, **base))
