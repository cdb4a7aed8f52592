"""The plots read what transformers' Trainer really writes: a tiny run's `trainer_state.json` drives `plot_training_curves`."""
import json

import matplotlib
matplotlib.use("Agg")
import numpy as np
import torch
from torch import nn
from transformers import Trainer, TrainingArguments

from distill_l2s.plots import load_log_history, plot_training_curves


class _Toy(nn.Module):
    "A regression model that returns its loss parts the way `DistillL2S` does."
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 1)
        self.parts = []

    def forward(self, x, labels=None):
        pred = self.lin(x).squeeze(-1)
        ctc, kd = ((pred - labels)**2).mean(), (pred**2).mean()
        self.parts.append((ctc.detach(), kd.detach()))
        return dict(loss=ctc + 0.5*kd, logits=pred)


class _Data(torch.utils.data.Dataset):
    def __init__(self, n): g = torch.Generator().manual_seed(n); self.x = torch.randn(n, 4, generator=g); self.y = self.x.sum(1)
    def __len__(self): return len(self.x)
    def __getitem__(self, i): return dict(x=self.x[i], labels=self.y[i])


class _PartsTrainer(Trainer):
    "Logs `ctc_loss` and `kd_loss` beside `loss`, as the project's trainer does."
    def log(self, logs, start_time=None):
        if "loss" in logs and self.model.parts:
            logs["ctc_loss"], logs["kd_loss"] = torch.stack([torch.stack(p) for p in self.model.parts]).mean(0).tolist()
            self.model.parts.clear()
        super().log(logs, start_time)


def _cer(p):
    "A stand-in metric under the name the real one has (`cer` -> `eval_cer`)."
    return {"cer": float(np.abs(p.predictions - p.label_ids).mean())}


def test_training_curves_from_a_real_trainer_state(tmp_path):
    out = tmp_path/"run"
    args = TrainingArguments(output_dir=str(out), max_steps=12, per_device_train_batch_size=4, per_device_eval_batch_size=8,
                             logging_steps=2, eval_strategy="steps", eval_steps=4, save_strategy="steps", save_steps=6,
                             learning_rate=0.05, report_to=[], use_cpu=True, disable_tqdm=True, seed=0)
    trainer = _PartsTrainer(model=_Toy(), args=args, train_dataset=_Data(64), eval_dataset=_Data(16), compute_metrics=_cer)
    trainer.train()

    # no trainer_state.json in the run folder yet: the latest checkpoint's is read
    hist = load_log_history(out)
    assert json.loads((out/"checkpoint-12"/"trainer_state.json").read_text())["log_history"] == hist
    trainer.save_state()
    hist = load_log_history(out)
    fig = plot_training_curves({"toy": out})
    ctc, kd, total, cer = fig.axes[:4]
    steps = [e["step"] for e in hist if "ctc_loss" in e]
    assert steps == [2, 4, 6, 8, 10, 12]
    np.testing.assert_allclose(ctc.lines[0].get_xdata(), steps)
    np.testing.assert_allclose(kd.lines[0].get_ydata(), [e["kd_loss"] for e in hist if "kd_loss" in e])
    np.testing.assert_allclose(total.lines[0].get_ydata(), [e["loss"] for e in hist if "ctc_loss" in e])
    np.testing.assert_allclose(cer.lines[0].get_xdata(), [4, 8, 12])
    # Trainer's final summary entry (train_loss, ...) is not a curve point
    assert len(total.lines[0].get_xdata()) == 6
    fig.savefig(tmp_path/"c.png")
