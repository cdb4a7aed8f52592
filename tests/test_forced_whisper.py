"""Forced-alignment segments with a Whisper CTC student: nothing in `DistillL2S(segmentation="forced")` assumes wav2vec 2.0.

A tiny random Whisper student (log-mel input, its own frame lengths) and the tiny BERT teacher of `save_tiny_teacher`:
the forced bridge's loss and gradients equal the public functions of `distill_l2s.align` on the same hidden states
and logits. A few seconds on a CPU.
"""
import numpy as np
import torch


def test_forced_segmentation_with_a_whisper_student(tmp_path):
    from distill_l2s.align import distill_loss, forced_align, token_means
    from distill_l2s.model import DistillL2S
    from distill_l2s.teacher import TeacherCache, TextTeacher
    from distill_l2s.text import build_vocab, make_processor
    from distill_l2s.train import TeacherCollator, save_tiny_teacher
    from distill_l2s.whisper import LogMelCollator, WhisperCTCConfig, WhisperForCTC, save_tiny_whisper, whisper_processor
    from transformers import WhisperForConditionalGeneration
    torch.manual_seed(0)
    texts = ["the cat sat", "a dog ran far", "red sun"]
    processor = whisper_processor(make_processor(build_vocab(texts)).tokenizer)
    tok = processor.tokenizer
    full = WhisperForConditionalGeneration.from_pretrained(save_tiny_whisper(tmp_path / "whisper"))
    student = WhisperForCTC(WhisperCTCConfig.from_whisper(full.config, vocab_size=len(tok), pad_token_id=tok.pad_token_id)).eval()
    teacher = TextTeacher(str(save_tiny_teacher(tmp_path / "teacher")), device="cpu")
    cache = TeacherCache(teacher, tmp_path / "cache")
    cache.fill(texts, progress=False)
    rng = np.random.default_rng(0)
    items = [dict(input_values=rng.standard_normal(16000 * (1 + i)).astype("float32"), labels=tok(t).input_ids, text=t)
             for i, t in enumerate(texts)]
    batch = TeacherCollator(LogMelCollator(processor), cache, segmentation="forced")(items)
    model = DistillL2S(student, teacher.dim, segmentation="forced", blank_id=tok.pad_token_id).eval()
    keys = ("input_features", "attention_mask", "labels", "teacher_features", "teacher_lengths", "label_tokens")
    out = model(**{k: batch[k] for k in keys})
    assert torch.isfinite(out.kd_loss) and out.forced_fallbacks == 0
    first = student.encoder.conv1.weight
    got = [out.kd_loss, *torch.autograd.grad(out.kd_loss, [model.projection.weight, first])]
    o, h = model.student_forward(None, batch["attention_mask"], batch["labels"], input_features=batch["input_features"])
    frames = o.frame_lengths  # the Whisper student reports its own frames
    assert torch.equal(frames, out.frame_lengths)
    seg, ok = forced_align(o.logits, frames, batch["labels"], tok.pad_token_id)
    m, target, n, _ = token_means(h, frames, seg, ok, batch["label_tokens"], batch["teacher_features"], batch["teacher_lengths"])
    ref = distill_loss(model.projection(m), target, n)
    want = [ref, *torch.autograd.grad(ref, [model.projection.weight, first])]
    for a, b in zip(got, want): torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert torch.equal(out.kd_lengths, n)
