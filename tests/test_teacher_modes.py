"""Teachers that train with the student (`teacher_mode` joint and as-run) and standardised targets, end to end on the
generated Common Voice folder and tiny teacher of `test_train_cli.py`: the command line trains with
`--set teacher_mode=as-run`; the teacher's weights and optimiser state are in the checkpoints, so a run killed and
resumed ends bit-identical to an uninterrupted one; the saved student folder holds no teacher weight; the teacher's
token-specific variance is logged beside the KD loss; `teacher_lr` gives the teacher its own rate;
`target_norm=standardize` stores the statistics it used; settings that cannot work are refused before anything runs.
"""
import json
import signal

import pytest
from conftest import warm_run
import torch
from safetensors.torch import load_file

from test_train_cli import ENV, KILLER, run, tiny, work  # noqa: F401  (`work` is a fixture)


def test_as_run_through_the_command_line(work):
    out = work["dir"] / "as-run"
    run(work, "distill-l2s-train", *tiny(work, out, 0.5, "--set", "teacher_mode=as-run"))
    res = json.loads((out / "results.json").read_text())
    assert (res["teacher_mode"], res["target_norm"], res["steps"]) == ("as-run", "none", 8)
    assert "mode=as-run" in res["teacher_identity"]
    ckpt = load_file(out / "checkpoint-8" / "model.safetensors")
    teacher_keys = [k for k in ckpt if k.startswith("teacher.")]
    assert teacher_keys and "teacher.model.embeddings.word_embeddings.weight" in ckpt
    # the compact embedding: only the rows the transcripts use (the tiny teacher's vocabulary has 77 tokens)
    assert ckpt["teacher.model.embeddings.word_embeddings.weight"].shape[0] < 77
    assert not any("teacher" in k for k in load_file(out / "model" / "model.safetensors"))  # the student alone
    logs = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "kd_loss" in h]
    assert logs and all(h["teacher_var"] > 0 and h["kd_loss"] > 0 for h in logs)


def test_joint_teacher_resumes_exactly(work):
    from distill_l2s.train import make_config, train
    settings = dict(lang_dir=str(work["lang"]), teacher=str(work["teacher"]), lam=0.5, max_steps=12, teacher_mode="joint")
    ref = train(make_config("tiny", dict(settings, output_dir=str(work["dir"] / "joint-ref"))))
    out = work["dir"] / "joint-killed"
    r = warm_run(["-c", KILLER.format(step=4, cfg=dict(settings, output_dir=str(out)))], ENV, timeout=600)
    assert r.returncode == -signal.SIGKILL, r.stderr[-3000:]
    assert any(k.startswith("teacher.") for k in load_file(out / "checkpoint-4" / "model.safetensors"))
    res = train(make_config("tiny", dict(settings, output_dir=str(out))), resume=True)
    final = [load_file(d / "checkpoint-12" / "model.safetensors") for d in (out, work["dir"] / "joint-ref")]
    assert final[0].keys() == final[1].keys()
    for k in final[0]: assert torch.equal(final[0][k], final[1][k]), k
    assert (res["dev"], res["test"], res["weights_digest"]) == (ref["dev"], ref["test"], ref["weights_digest"])
    # the λ = 0 baseline of the same seed starts from the same student: the teacher is built after it
    base = train(make_config("tiny", dict(settings, lam=0.0, max_steps=4, eval_steps=4, output_dir=str(work["dir"] / "joint-base"))))
    assert base["steps"] == 4


def test_teacher_lr_groups(work):
    from distill_l2s.data import read_split
    from distill_l2s.teacher import TrainableTeacher
    from distill_l2s.train import DistillTrainer, build_model, make_config, student_processor, training_args, _student_config
    from distill_l2s.text import build_vocab
    cfg = make_config("tiny", dict(lang_dir=str(work["lang"]), output_dir=str(work["dir"] / "lr"), teacher=str(work["teacher"]),
                                   lam=0.5, teacher_mode="joint", teacher_lr=1e-5))
    texts = [r.text for r in read_split(work["lang"], "train")[0]]
    processor = student_processor(build_vocab(texts), _student_config(cfg))
    teacher = TrainableTeacher(str(work["teacher"]), texts)
    model = build_model(cfg, processor, teacher.dim)
    model.teacher = teacher
    trainer = DistillTrainer(model=model, args=training_args(cfg), eval_dataset=[0], teacher_lr=1e-5)  # no data is read
    opt = trainer.create_optimizer()
    mine = {id(p) for p in teacher.parameters()}
    rates = {(id(p) in mine, g["lr"]) for g in opt.param_groups for p in g["params"]}
    assert rates == {(False, cfg.learning_rate), (True, 1e-5)}
    assert sum(len(g["params"]) for g in opt.param_groups) == sum(p.requires_grad for p in model.parameters())


def test_standardized_targets(work):
    out = work["dir"] / "standardized"
    run(work, "distill-l2s-train", *tiny(work, out, 0.5, "--set", "target_norm=standardize"))
    res = json.loads((out / "results.json").read_text())
    assert res["target_norm"] == "standardize"
    stats = json.loads((out / "target_norm.json").read_text())
    assert stats["tokens"] > 0 and len(stats["mean"]) == len(stats["std"]) == 32  # the tiny teacher's width
    assert list((out / "teacher_cache").rglob("target_norm-*.json")), "the statistics are stored with the cache too"
    logs = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "teacher_var" in h]
    assert logs and all(0.5 < h["teacher_var"] < 1.5 for h in logs)  # standardised: about 1 per dimension


def test_measurements_read_standardised_targets(work):
    "A run trained on standardised targets is measured against them: its bridge fit, and its teacher's spread."
    from distill_l2s.data import read_split
    from distill_l2s.replication import bridge_fit, teacher_spread
    from distill_l2s.train import make_config, train
    first = work["dir"] / "features-from"
    train(make_config("tiny", dict(max_steps=4), lang_dir=str(work["lang"]), output_dir=str(first), teacher=str(work["teacher"]), lam=0.5))
    cache = next(first.rglob("identity.txt")).parent  # the teacher features that run cached
    fits = {}
    for norm in ("none", "standardize"):
        out = work["dir"] / f"from-cache-{norm}"
        train(make_config("tiny", dict(max_steps=4, teacher_features=str(cache), target_norm=norm), lang_dir=str(work["lang"]),
                          output_dir=str(out), lam=0.5))
        fits[norm] = bridge_fit(out)
    assert (fits["none"]["target_norm"], fits["standardize"]["target_norm"]) == ("none", "standardize")
    assert 0.3 < fits["standardize"]["teacher_var"] < 3 < 100 * fits["none"]["teacher_var"] < 300 * fits["standardize"]["teacher_var"], fits
    texts = [r.text for r in read_split(work["lang"], "train")[0]]
    raw, std = (teacher_spread(cache, texts, n) for n in ("none", "standardize"))
    assert std["target_norm"] == "standardize" and abs(std["var_per_dim"] - 1) < 0.05 and std["shared"] < 1e-3, std
    assert raw["var_per_dim"] != std["var_per_dim"]


@pytest.mark.parametrize("sets,message", [
    (["teacher_mode=as-run", "teacher_features=/tmp"], "not teacher_features or a control"),
    (["teacher_mode=joint", "target_norm=standardize"], "use it with teacher_mode=frozen"),
    (["teacher_mode=joint", "segmentation=forced"], "segmentation=forced needs cached teacher features"),
    (["teacher_mode=trained"], "teacher_mode='trained': choose one of frozen, joint, as-run"),
    (["target_norm=whiten"], "target_norm='whiten': choose one of none, standardize"),
])
def test_settings_that_cannot_work(work, sets, message):
    from distill_l2s.train import check_config, make_config, parse_overrides
    cfg = make_config("tiny", parse_overrides(sets), lang_dir=str(work["lang"]), output_dir=str(work["dir"] / "refused"),
                      teacher=str(work["teacher"]), lam=0.5)
    with pytest.raises(ValueError, match="cannot start the run") as e: check_config(cfg)
    assert message in str(e.value)
