"""Checks that need a CUDA GPU; they run with `pytest --flags gpu` on a machine that has one, and are skipped elsewhere.

- the alignment core (shrink, interpolate, distillation loss, their gradients) on CUDA against the CPU, in float64
  and in float16 against a float32 CPU computation;
- a tiny Distill-L2S run through `train` with fp16 on the GPU;
- a non-finite micro-batch under fp16 with the real CUDA GradScaler: the optimizer step is voided and counted,
  the weights stay as they were, and training goes on.
"""
import json

import pytest
import torch
import torch.nn.functional as F

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


def random_batch(B, T, D, V, gen, dtype=torch.float64):
    "Features, logits whose argmax forms runs of labels (0 = blank), lengths with at least one equal to T."
    sizes = torch.randint(1, 5, (B, T), generator=gen)
    run_label = torch.randint(0, V, (B, T), generator=gen) * (torch.rand(B, T, generator=gen) > 0.4)
    labels = torch.stack([run_label[b].repeat_interleave(sizes[b])[:T] for b in range(B)])
    logits = torch.randn(B, T, V, generator=gen, dtype=torch.float64) + 4 * F.one_hot(labels, V)
    lengths = torch.randint(1, T + 1, (B,), generator=gen); lengths[0] = T
    return torch.randn(B, T, D, generator=gen, dtype=torch.float64).to(dtype), logits.to(dtype), lengths


def bridge(feats, logits, lengths, teacher, t_len, mode, kind):
    from distill_l2s.align import shrink, interpolate, distill_loss
    s, n = shrink(feats, logits, lengths, 0, ignore_ids=(3,))
    t = interpolate(teacher, t_len, n, mode=mode)
    return s, n, t, distill_loss(s, t, n, kind=kind)


@pytest.mark.parametrize("mode,kind", [("nearest", "mse"), ("linear", "cosine"), ("nearest", "l1")])
def test_align_cuda_matches_cpu(mode, kind):
    gen = torch.Generator().manual_seed(0)
    for B, T in [(1, 1), (3, 17), (8, 200)]:
        feats, logits, lengths = random_batch(B, T, 16, 6, gen)
        teacher, t_len = torch.randn(B, 11, 16, generator=gen, dtype=torch.float64), torch.randint(1, 12, (B,), generator=gen)
        cpu_in = [feats.clone().requires_grad_(), logits, lengths, teacher.clone().requires_grad_(), t_len]
        gpu_in = [cpu_in[0].detach().cuda().requires_grad_(), logits.cuda(), lengths.cuda(),
                  cpu_in[3].detach().cuda().requires_grad_(), t_len.cuda()]
        c, g = bridge(*cpu_in, mode, kind), bridge(*gpu_in, mode, kind)
        for a, b in zip(c, g): torch.testing.assert_close(b.cpu(), a, rtol=1e-10, atol=1e-10)
        c[-1].backward(); g[-1].backward()
        torch.testing.assert_close(gpu_in[0].grad.cpu(), cpu_in[0].grad, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(gpu_in[3].grad.cpu(), cpu_in[3].grad, rtol=1e-10, atol=1e-10)


def test_align_half_on_cuda():
    "float16 inputs on the GPU: shrunk lengths identical, loss within half precision of the float32 CPU result."
    gen = torch.Generator().manual_seed(1)
    feats, logits, lengths = random_batch(8, 300, 64, 30, gen, torch.float32)
    teacher, t_len = torch.randn(8, 25, 64, generator=gen), torch.randint(1, 26, (8,), generator=gen)
    c = bridge(feats, logits, lengths, teacher, t_len, "nearest", "mse")
    g = bridge(feats.half().cuda(), logits.half().cuda(), lengths.cuda(), teacher.half().cuda(), t_len.cuda(), "nearest", "mse")
    assert torch.equal(g[1].cpu(), c[1])
    assert g[3].dtype == torch.float32  # the loss is reduced in float32 whatever the input dtype
    torch.testing.assert_close(g[3].cpu(), c[3], rtol=5e-3, atol=5e-3)


def test_train_fp16_on_gpu(tmp_path):
    "A tiny Distill-L2S run with fp16 on the GPU trains, saves and scores."
    from distill_l2s.data import write_cv_fixture
    from distill_l2s.train import make_config, save_tiny_teacher, train
    words = "the cat sat on a mat dog ran far away red sun".split()
    s = [" ".join(words[(i * 3 + k) % len(words)] for k in range(2 + i % 3)) for i in range(12)]
    rows = {"train": [dict(sentence=t, duration=1.0 + 0.1 * i) for i, t in enumerate(s[:8])],
            "dev": [dict(sentence=t, duration=1.2) for t in s[8:10]], "test": [dict(sentence=t, duration=1.1) for t in s[10:12]]}
    lang = write_cv_fixture(tmp_path / "cv", rows, lang="en")
    cfg = make_config("tiny", dict(fp16=True, max_steps=12, eval_steps=6), lang_dir=str(lang), output_dir=str(tmp_path / "run"),
                      teacher=str(save_tiny_teacher(tmp_path / "teacher")), lam=0.5)
    res = train(cfg)
    assert res["steps"] == 12 and res["nonfinite_skipped"] == 0
    assert all(0 <= res[s]["cer"] for s in ("dev", "test"))
    logs = json.loads((tmp_path / "run" / "trainer_state.json").read_text())["log_history"]
    kd = [h["kd_loss"] for h in logs if "kd_loss" in h]
    assert kd and all(torch.isfinite(torch.tensor(v)) for v in kd)


def test_nonfinite_fp16_grad_scaler(tmp_path):
    "Under fp16 with CUDA's GradScaler, a NaN micro-batch voids its optimizer step; the others train."
    from dataclasses import dataclass
    from transformers import TrainingArguments, TrainerCallback
    from transformers.utils import ModelOutput
    from distill_l2s.train import DistillTrainer

    @dataclass
    class Out(ModelOutput):
        loss: torch.Tensor = None; ctc_loss: torch.Tensor = None; kd_loss: torch.Tensor = None; logits: torch.Tensor = None

    class Toy(torch.nn.Module):
        "Regression of the sum of 4 numbers; the 5th micro-batch (the third step's first) gets a NaN loss."
        def __init__(self): super().__init__(); self.lin = torch.nn.Linear(4, 1); self.calls = 0
        def forward(self, input_values, labels, **kw):
            self.calls += 1
            loss = ((self.lin(input_values).squeeze(-1) - labels) ** 2).mean()
            if self.calls == 5: loss = loss * float("nan")
            return Out(loss=loss, ctc_loss=loss, kd_loss=loss * 0, logits=None)

    class Data(torch.utils.data.Dataset):
        def __len__(self): return 64
        def __getitem__(self, i):
            x = torch.randn(4, generator=torch.Generator().manual_seed(i))
            return {"input_values": x, "labels": x.sum()}

    weights = []
    class Record(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kw): weights.append(model.lin.weight.detach().float().cpu().clone())

    args = TrainingArguments(output_dir=str(tmp_path), max_steps=8, per_device_train_batch_size=2, gradient_accumulation_steps=2,
                             learning_rate=0.05, report_to="none", save_strategy="no", seed=0, logging_steps=4, fp16=True)
    torch.manual_seed(0)
    trainer = DistillTrainer(model=Toy(), args=args, train_dataset=Data(), max_nonfinite=3, callbacks=[Record()],
                             data_collator=lambda b: {k: torch.stack([x[k] for x in b]) for k in b[0]})
    trainer.train()
    assert trainer.nonfinite_skipped == 1
    assert all(torch.isfinite(w).all() for w in weights)
    assert any(torch.equal(a, b) for a, b in zip(weights, weights[1:]))  # a voided step leaves the weights as they were
    assert not torch.equal(weights[0], weights[-1])  # the other steps trained


def test_distill_step_without_host_reads_on_cuda():
    "On CUDA (sync_free by default) with check_finite=False, DistillL2S adds no host read and no synchronisation to a step."
    import warnings
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC
    from distill_l2s.align import HostReads
    from distill_l2s.model import DistillL2S
    torch.manual_seed(0)
    student = Wav2Vec2ForCTC(Wav2Vec2Config(vocab_size=12, pad_token_id=0, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                            intermediate_size=64, conv_dim=(16, 16, 16), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2),
                                            num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, mask_time_prob=0.0))
    model = DistillL2S(student, 24, check_finite=False).cuda().train()
    x = torch.randn(3, 3200, device="cuda")
    mask = (torch.arange(3200, device="cuda") < torch.tensor([3200, 2600, 1800], device="cuda")[:, None]).long()
    labels = torch.randint(1, 12, (3, 8), device="cuda")
    tf, tl = torch.randn(3, 7, 24, device="cuda"), torch.tensor([7, 5, 3], device="cuda")
    step = lambda: model(x, mask, labels, tf, tl).loss.backward()
    step()  # warm-up
    with HostReads() as reads: step()
    assert [r for r in reads.reads if "/transformers/" not in r[1]] == []  # the student's own reads aside
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            step(); torch.cuda.current_stream().synchronize()
    finally: torch.cuda.set_sync_debug_mode(0)
    assert not [str(m.message) for m in w if "synchroniz" in str(m.message) and "/distill_l2s/" in m.filename]
