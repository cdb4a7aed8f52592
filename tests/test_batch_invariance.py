"""A clip's output does not depend on its batch, for every student family: a wav2vec 2.0 whose convolutions use layer
norm (it masks padding), one that uses group norm (it cannot, so its clips are scored one by one), and a Whisper
student. For a trained tiny student of each: the logits of every clip alone and padded among longer clips agree within
1e-4 through the scoring path (`StudentFamily.logits`) and, where the family can mask, through the training collator
straight into the model; dev/test scoring gives the same transcripts at any batch size; `distill-l2s-transcribe`
(batched) prints what transformers' `pipeline` (one clip at a time) gives.
"""
import json

import numpy as np
import pytest
import torch

from test_train_cli import run, work  # noqa: F401  (`work` is a fixture)

STUDENTS = {
    "wav2vec2-layer": {},
    "wav2vec2-group": {"student_config": {"feat_extract_norm": "group"}},
    "whisper": {"student": "tiny-whisper"},
}


@pytest.fixture(scope="module")
def trained(work):
    "A tiny student of each family trained for 8 steps (λ = 0): family -> its model/ folder."
    from distill_l2s.train import make_config, train
    from distill_l2s.whisper import save_tiny_whisper
    out = {}
    for name, extra in STUDENTS.items():
        extra = dict(extra)
        if extra.get("student") == "tiny-whisper": extra["student"] = str(save_tiny_whisper(work["dir"] / "bi-whisper", layers=2))
        cfg = make_config("tiny", dict(lang_dir=str(work["lang"]), output_dir=str(work["dir"] / f"bi-{name}"),
                                       teacher=str(work["teacher"]), lam=0.0, **extra))
        train(cfg)
        out[name] = work["dir"] / f"bi-{name}" / "model"
    return out


def clips(work):
    "The fixture's clips (1.0 to 1.7 s of speech) cut to lengths that are not whole log-mel frames, as 16 kHz WAV files."
    import soundfile as sf
    from distill_l2s.data import load_audio
    folder = work["dir"] / "odd-lengths"
    if not folder.is_dir():
        folder.mkdir()
        for i, p in enumerate(sorted((work["lang"] / "clips").glob("*.mp3"))):
            wave = load_audio(p)
            sf.write(folder / f"{p.stem}.wav", wave[:len(wave) - 37 * (i + 1)], 16000)
    return sorted(folder.glob("*.wav"))


@pytest.mark.parametrize("name", list(STUDENTS))
def test_logits_alone_and_padded_agree(work, trained, name):
    from distill_l2s.data import load_audio
    from distill_l2s.students import student_family
    from distill_l2s.train import load_student
    student, processor = load_student(trained[name])
    family = student_family(student.config)
    assert family.name == name.split("-")[0] and family.can_mask() == (name != "wav2vec2-group")
    waves = [load_audio(p) for p in clips(work)]
    assert len({len(w) % 160 for w in waves}) > 1  # lengths that round differently to frames
    collate = family.collator(processor)
    items = [dict(input_values=w, labels=[1], text="a") for w in waves]
    key = student.main_input_name
    with torch.no_grad():
        alone = [family.logits(student, b[key], b.get("attention_mask"))[0][0] for b in (collate([it]) for it in items)]
        batch = collate(items)
        scored, n = family.logits(student, batch[key], batch.get("attention_mask"))
        direct = student(**{key: batch[key]}, attention_mask=batch.get("attention_mask")).logits
    assert n.tolist() == [len(a) for a in alone]
    worst = max(float((scored[i, :len(a)] - a).abs().max()) for i, a in enumerate(alone))
    assert worst < 1e-4, f"{name}: a clip's logits in a batch differ from its own by {worst:.2e}"
    gap = max(float((direct[i, :len(a)] - a).abs().max()) for i, a in enumerate(alone))
    if family.can_mask(): assert gap < 1e-4, f"{name}: through the training collator, padding changes a clip's logits by {gap:.2e}"
    else: assert gap > 1e-3  # group norm sees the padding: the reason its clips are scored one by one


@pytest.mark.parametrize("name", list(STUDENTS))
def test_scores_and_transcripts_do_not_depend_on_the_batch(work, trained, name):
    from transformers import pipeline
    from distill_l2s.data import load_audio, read_split
    from distill_l2s.train import load_student, transcribe
    student, processor = load_student(trained[name])
    paths = clips(work)
    one_by_one = transcribe(student, processor, paths, batch_size=1)
    assert transcribe(student, processor, paths, batch_size=len(paths)) == one_by_one
    assert any(one_by_one), "an untrained-looking student: every transcript empty, the comparison would prove nothing"
    cli = run(work, "distill-l2s-transcribe", trained[name], *paths).stdout.split("\n")[:len(paths)]
    assert cli == one_by_one
    asr = pipeline("automatic-speech-recognition", model=str(trained[name]))
    assert [asr({"raw": load_audio(p), "sampling_rate": 16000})["text"] for p in paths] == one_by_one
    from distill_l2s.train import evaluate_records
    records = read_split(work["lang"], "test", max_duration=None)[0] + read_split(work["lang"], "dev", max_duration=None)[0]
    assert evaluate_records(student, processor, records, batch_size=1) == evaluate_records(student, processor, records, batch_size=4)
