"""End-to-end checks of training, evaluation and transcription through the command line, on a generated
Common Voice-style folder, a tiny random wav2vec 2.0 student and a tiny random BERT teacher (all offline, CPU).

Covered: the three commands and their argument errors, distillation and the λ = 0 baseline, forced-alignment segments, seeded
reproducibility, resume after a SIGKILL (final weights identical to an uninterrupted run), two-process DDP
with gloo (both ranks end with the same weights, also when one rank sees a non-finite loss), and the
`[project.scripts]` entries. Everything runs by default (about a minute and a half on 2 CPU cores).
"""
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import warm_run

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
       "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
SCRIPTS = {"distill-l2s-train": "train_cli", "distill-l2s-eval": "eval_cli", "distill-l2s-transcribe": "transcribe_cli"}


def sentences():
    words = "the cat sat on a mat dog ran far away red sun".split()
    return [" ".join(words[(i * 3 + k) % len(words)] for k in range(2 + i % 3)).capitalize() + "." for i in range(12)]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    "A Common Voice-style folder, a tiny teacher, and command wrappers that import this checkout."
    import torch
    from distill_l2s.data import write_cv_fixture
    from distill_l2s.train import save_tiny_teacher
    torch.set_num_threads(1)  # as in the subprocesses (OMP_NUM_THREADS=1): the same float summation order everywhere
    d = tmp_path_factory.mktemp("train_cli")
    s = sentences()
    rows = {"train": [dict(sentence=t, duration=1.0 + 0.1 * i) for i, t in enumerate(s[:8])],
            "dev": [dict(sentence=t, duration=1.2) for t in s[8:10]],
            "test": [dict(sentence=t, duration=1.1) for t in s[10:12]]}
    lang = write_cv_fixture(d / "cv", rows, lang="en")
    teacher = save_tiny_teacher(d / "teacher")
    bins = d / "bin"; bins.mkdir()
    for name, fn in SCRIPTS.items():  # what a console-script wrapper does, against this checkout
        (bins / name).write_text(f"import sys\nfrom distill_l2s.cli import {fn}\nsys.exit({fn}())\n")
    return dict(dir=d, lang=lang, teacher=teacher, bins=bins)


def run(work, name, *args, check=True, launcher=()):
    argv = [str(work["bins"] / name), *map(str, args)]
    r = (subprocess.run([*launcher, *argv], env=ENV, capture_output=True, text=True, timeout=600) if launcher else
         warm_run(argv, ENV, timeout=600))  # as `python <script>` would, without its imports' 10 s (tests/conftest.py)
    if check and r.returncode != 0:
        raise AssertionError(f"{name} {args} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}")
    return r


def tiny(work, out, lam, *extra):
    return [work["lang"], out, "--preset", "tiny", "--teacher", work["teacher"], "--lam", lam, *extra]


def test_scripts_registered():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the package supports 3.10
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name, fn in SCRIPTS.items(): assert scripts[name] == f"distill_l2s.cli:{fn}"


def test_help_and_bad_arguments(work):
    from fastcore.script import CliError
    from distill_l2s.cli import train_cli, transcribe_cli
    h = run(work, "distill-l2s-train", "--help").stdout
    for flag in ("lang_dir", "output_dir", "--preset", "--student", "--teacher", "--lam", "--student-layer",
                 "--teacher-layer", "--no-shrinking", "--interp-mode", "--loss-kind", "--set", "--seed", "--resume"):
        assert flag in h, flag
    # as a command: exit status 1 and a message on stderr, no traceback, nothing written
    r = run(work, "distill-l2s-train", work["dir"] / "missing", work["dir"] / "r0", "--preset", "tiny", "--lam", "-1",
            "--set", "interp_mode=cubic", check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    for part in ("missing' is not a folder", "lam=-1", "interp_mode='cubic'"): assert part in r.stderr, (part, r.stderr)
    assert not (work["dir"] / "r0").exists()
    # the same checks from Python
    (work["dir"] / "empty-teacher").mkdir(exist_ok=True)
    for kw, msg in [(dict(set=["max_step=3"]), "did you mean max_steps"), (dict(preset="huge"), "unknown preset 'huge'"),
                    (dict(teacher=str(work["dir"] / "no-teacher")), "no-teacher' is not a folder"),
                    (dict(teacher=str(work["dir"] / "empty-teacher")), "empty-teacher' does not load"),
                    (dict(student=str(work["dir"] / "empty-teacher")), "student"),
                    (dict(set=["batch_size=3"]), "not a multiple of per_device_batch_size")]:
        kw = {"preset": "tiny", "teacher": str(work["teacher"]), **kw}  # local: hub names are in test_hub_names_fail_fast_offline
        with pytest.raises(CliError, match=msg): train_cli(str(work["lang"]), str(work["dir"] / "r0"), **kw)
    with pytest.raises(CliError, match="no such audio file"): transcribe_cli(str(work["dir"]), str(work["dir"] / "nothing.wav"))


def test_distill_eval_transcribe(work):
    out = work["dir"] / "kd"
    r = run(work, "distill-l2s-train", *tiny(work, out, 0.5))
    res = json.loads((out / "results.json").read_text())
    assert json.loads(r.stdout.strip().splitlines()[-1])["test"] == res["test"]
    assert (res["language"], res["lam"], res["steps"], res["world_size"]) == ("en", 0.5, 8, 1)
    assert res["teacher"] == str(work["teacher"]) and res["train_utterances"] == 8 and res["train_hours"] > 0
    for split in ("dev", "test"): assert 0 <= res[split]["cer"] and 0 <= res[split]["wer"] and res[split]["utterances"] == 2
    cfg = json.loads((out / "train_config.json").read_text())
    assert (cfg["lam"], cfg["max_steps"], cfg["student"]) == (0.5, 8, "random")
    logs = json.loads((out / "checkpoint-8" / "trainer_state.json").read_text())["log_history"]
    steps = [h for h in logs if "loss" in h]
    assert steps and all(h["kd_loss"] > 0 and h["ctc_loss"] > 0 for h in steps)
    assert any("eval_cer" in h for h in logs)
    # the command leaves the whole log and its training-curve plot in the run folder
    full = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert max(h.get("step", 0) for h in full) == 8 and any("eval_cer" in h for h in full)
    assert (out / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    # the final model is a plain transformers checkpoint
    assert (out / "model" / "config.json").is_file() and (out / "model" / "tokenizer.json").is_file()
    r = run(work, "distill-l2s-eval", out / "model", work["lang"], "--split", "test", "--output", out / "test.json")
    ev = json.loads((out / "test.json").read_text())
    assert (ev["cer"], ev["wer"]) == (res["test"]["cer"], res["test"]["wer"]) and "CER" in r.stdout
    clips = sorted((work["lang"] / "clips").glob("*.mp3"))[:2]
    r = run(work, "distill-l2s-transcribe", out, *clips)
    assert r.stdout.count("\n") == 2  # one line per file (an 8-step model may well print empty lines)


def _tiny_cfg(work, out, lam=0.0, **kw):
    from distill_l2s.train import make_config
    return make_config("tiny", dict(kw), lang_dir=str(work["lang"]), output_dir=str(out), teacher=str(work["teacher"]), lam=lam)


def test_baseline_is_reproducible(work):
    from distill_l2s.train import train
    a = train(_tiny_cfg(work, work["dir"] / "base_a"))
    b = train(_tiny_cfg(work, work["dir"] / "base_b"))
    assert a["teacher"] is None and not (work["dir"] / "base_a" / "teacher_cache").exists()  # λ = 0: no teacher at all
    for k in ("dev", "test", "weights_digest", "steps"): assert a[k] == b[k], k
    c = train(_tiny_cfg(work, work["dir"] / "base_c", seed=1))
    assert c["weights_digest"] != a["weights_digest"]


KILLER = """
import os, signal, sys
from transformers import TrainerCallback
from distill_l2s.train import make_config, train
class Kill(TrainerCallback):
    "SIGKILL this process right after the checkpoint of step {step} is written."
    def on_save(self, args, state, control, **kw):
        if state.global_step == {step}: os.kill(os.getpid(), signal.SIGKILL)
cfg = make_config("tiny", {cfg!r})
train(cfg, callbacks=[Kill()])
"""


def test_resume_after_kill(work):
    import torch
    from safetensors.torch import load_file
    from distill_l2s.train import train
    ref = train(_tiny_cfg(work, work["dir"] / "uninterrupted", lam=0.5, max_steps=12))
    out = work["dir"] / "killed"
    cfg = dict(lang_dir=str(work["lang"]), output_dir=str(out), teacher=str(work["teacher"]), lam=0.5, max_steps=12)
    r = warm_run(["-c", KILLER.format(step=4, cfg=cfg)], ENV, timeout=600)
    assert r.returncode == -signal.SIGKILL, r.stderr[-3000:]
    assert (out / "checkpoint-4").is_dir() and not (out / "results.json").exists()
    from fastcore.script import CliError
    from distill_l2s.cli import train_cli
    with pytest.raises(CliError, match="--resume"):  # an existing run is never overwritten by accident
        train_cli(*map(str, tiny(work, out, 0.5)[:2]), preset="tiny", teacher=str(work["teacher"]), lam=0.5, set=["max_steps=12"])
    run(work, "distill-l2s-train", *tiny(work, out, 0.5, "--set", "max_steps=12", "--resume"))
    res = json.loads((out / "results.json").read_text())
    assert res["steps"] == 12 and (res["dev"], res["test"]) == (ref["dev"], ref["test"])
    final = [load_file(d / "checkpoint-12" / "model.safetensors") for d in (out, work["dir"] / "uninterrupted")]
    for k in final[0]: assert torch.equal(final[0][k], final[1][k]), k  # bit-identical on the CPU
    assert res["weights_digest"] == ref["weights_digest"]  # the best checkpoint too


def test_resume_after_ctrl_c(work):
    "Ctrl-C saves the last completed step; the resumed run ends where an uninterrupted one does."
    import torch
    from safetensors.torch import load_file
    from transformers import TrainerCallback
    from distill_l2s.train import train
    ref = work["dir"] / "uninterrupted"
    if not (ref / "results.json").exists(): train(_tiny_cfg(work, ref, lam=0.5, max_steps=12))  # as test_resume_after_kill trains it
    out = work["dir"] / "ctrl_c"
    cfg = _tiny_cfg(work, out, lam=0.5, max_steps=12)
    class CtrlC(TrainerCallback):
        "Interrupt training like Ctrl-C right after optimizer step 6."
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 6: raise KeyboardInterrupt
    with pytest.warns(UserWarning, match="interrupted at step 6"), pytest.raises(KeyboardInterrupt):
        train(cfg, callbacks=[CtrlC()])
    assert (out / "checkpoint-6").is_dir()
    res = train(cfg, resume=True)
    final = [load_file(d / "checkpoint-12" / "model.safetensors") for d in (out, ref)]
    for k in final[0]: assert torch.equal(final[0][k], final[1][k]), k
    assert res["steps"] == 12 and res["weights_digest"] == json.loads((ref / "results.json").read_text())["weights_digest"]


def test_ddp_two_processes(work):
    out = work["dir"] / "ddp"
    run(work, "distill-l2s-train", *tiny(work, out, 0.5, "--set", "max_steps=4", "per_device_batch_size=1"),
        launcher=("torchrun", "--nproc_per_node", "2", "--master_port", "29517"))
    res = json.loads((out / "results.json").read_text())
    assert res["world_size"] == 2 and res["steps"] == 4  # `train` checked that both ranks hold the same weights
    assert (out / "training_curves.png").is_file()  # drawn once, by rank 0


DDP_NONFINITE = """
import json, os, sys, torch
from dataclasses import dataclass
from pathlib import Path
from transformers import TrainingArguments, TrainerCallback
from transformers.utils import ModelOutput
from distill_l2s.train import DistillTrainer

@dataclass
class Out(ModelOutput):
    loss: torch.Tensor = None; ctc_loss: torch.Tensor = None; kd_loss: torch.Tensor = None; logits: torch.Tensor = None

class Toy(torch.nn.Module):
    "Regression of the sum of 4 numbers; a NaN input gives a NaN loss."
    def __init__(self): super().__init__(); self.lin = torch.nn.Linear(4, 1)
    def forward(self, input_values, labels, **kw):
        loss = ((self.lin(input_values).squeeze(-1) - labels) ** 2).mean()
        return Out(loss=loss, ctc_loss=loss, kd_loss=loss * 0, logits=None)

class Data(torch.utils.data.Dataset):
    def __len__(self): return 64
    def __getitem__(self, i):
        x = torch.randn(4, generator=torch.Generator().manual_seed(i))
        return {"input_values": x * float("nan") if i in POISON else x, "labels": x.sum()}

def run(poison, max_nonfinite):
    "Train 8 steps with NaN inputs at the indices `poison`; return the weights after each step, the skip count, the error."
    global POISON; POISON, WEIGHTS = set(poison), []
    class Record(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kw): WEIGHTS.append(model.lin.weight.detach().flatten().tolist())
    args = TrainingArguments(output_dir=sys.argv[1], max_steps=8, per_device_train_batch_size=2, gradient_accumulation_steps=2,
                             learning_rate=0.05, report_to="none", save_strategy="no", use_cpu=True, seed=0, logging_steps=4,
                             ddp_find_unused_parameters=True)
    torch.manual_seed(0)
    trainer = DistillTrainer(model=Toy(), args=args, train_dataset=Data(), max_nonfinite=max_nonfinite, callbacks=[Record()],
                             data_collator=lambda b: {k: torch.stack([x[k] for x in b]) for k in b[0]})
    try: trainer.train(); error = None
    except Exception as e: error = f"{type(e).__name__}: {e}"
    return dict(weights=WEIGHTS, skipped=trainer.nonfinite_skipped, error=error)

# a NaN now and then (64 items, one epoch: each poisoned item is met once), then a NaN in every batch
out = dict(some=run([9, 25, 41, 57], 10), every=run(range(64), 3))
Path(sys.argv[1], f"rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(out))
"""


@pytest.mark.slow  # two processes on the CPU (about 15 s); CI runs it with the slow tests; test_ddp_two_processes runs DDP by default
def test_ddp_nonfinite_skip(work):
    "Two DDP ranks: a NaN loss on one rank voids that optimizer step on both, and both keep identical weights."
    script, out = work["dir"] / "ddp_nonfinite.py", work["dir"] / "nonfinite"
    script.write_text(DDP_NONFINITE); out.mkdir()
    r = subprocess.run(["torchrun", "--nproc_per_node", "2", "--master_port", "29518", str(script), str(out)],
                       env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    ranks = [json.loads((out / f"rank{k}.json").read_text()) for k in (0, 1)]
    some = [r["some"] for r in ranks]
    assert some[0]["weights"] == some[1]["weights"] and some[0]["error"] is None and len(some[0]["weights"]) == 8
    assert some[0]["skipped"] == some[1]["skipped"] >= 1
    w = some[0]["weights"]
    assert any(a == b for a, b in zip(w, w[1:]))  # a voided step leaves the weights exactly as they were
    for r in ranks: assert r["every"]["error"].startswith("NonFiniteLossError: 3 batches in a row"), r["every"]["error"]


def test_precomputed_teacher_features(work):
    "A run reading a filled teacher cache, with no teacher on disk, ends with the weights of a run that loads the teacher."
    import dataclasses
    from distill_l2s.teacher import TeacherCache, TextTeacher
    from distill_l2s.train import train
    live = train(_tiny_cfg(work, work["dir"] / "live", lam=0.5))
    folder = next((work["dir"] / "live" / "teacher_cache").iterdir())  # the one teacher's subfolder
    cfg = _tiny_cfg(work, work["dir"] / "pre", lam=0.5, teacher_features=str(folder))
    pre = train(dataclasses.replace(cfg, teacher=str(work["dir"] / "no-such-teacher")))  # a label only: nothing loads from it
    assert not (work["dir"] / "pre" / "teacher_cache").exists()
    for k in ("weights_digest", "dev", "test", "teacher_identity"): assert pre[k] == live[k], k
    # a cache that lacks a training transcript stops the run before step 1 and says so; a wrong folder is named
    partial = TeacherCache(TextTeacher(str(work["teacher"]), device="cpu"), work["dir"] / "partial")
    partial.fill(sentences()[:3], progress=False)
    with pytest.raises(ValueError, match="train/dev transcript"):
        train(_tiny_cfg(work, work["dir"] / "pre_bad", lam=0.5, teacher_features=str(partial.dir)))
    with pytest.raises(ValueError, match="not a teacher-cache folder"):
        train(_tiny_cfg(work, work["dir"] / "pre_bad2", lam=0.5, teacher_features=str(work["dir"] / "partial")))


def damaged_release(root, good=8):
    "A Common Voice-style folder with several rows per kind of damage, a duplicate and a train/dev leak."
    from distill_l2s.data import write_cv_fixture
    s = sentences()
    train = [dict(sentence=s[i % 8], duration=1.0 + 0.05 * i, path=f"good{i}.mp3") for i in range(good)]
    train += [dict(sentence="Not audio at all.", audio="junk", path="junk1.mp3"), dict(sentence="Noise.", audio="junk", path="junk2.mp3"),
              dict(sentence="Gone.", audio="missing"), dict(sentence="Gone too.", audio="missing"),
              dict(sentence="Empty.", audio="empty"), dict(sentence="Empty too.", audio="empty"),
              dict(sentence=s[0], path="good0.mp3"), dict(sentence=s[1], path="good1.mp3"),  # listed twice
              dict(sentence=s[8], path="dev0.mp3")]                                             # also in dev
    dev = [dict(sentence=s[8 + i], duration=1.2, path=f"dev{i}.mp3") for i in range(2)] + [
           dict(sentence=s[10], duration=1.2, path="dev2.mp3"), dict(sentence="Broken.", audio="junk", path="junk3.mp3")]
    test = [dict(sentence=t, duration=1.1) for t in s[10:12]] + [dict(sentence="Lost.", audio="missing"), dict(sentence="Lost too.", audio="missing")]
    return write_cv_fixture(root, {"train": train, "dev": dev, "test": test}, lang="en")


def reported(text):
    "The (split, rows, reason) lines of a printed skip report, each with its example."
    return {(split, int(n), reason.strip()) for split, n, reason in
            re.findall(r"^ +(\w+) +(\d+)  (.+?) +e\.g\. \S", text, re.M)}


def test_damaged_release(work):
    "Broken clips met by DataLoader workers are counted once each, exactly per split and reason, and the run goes on."
    lang = damaged_release(work["dir"] / "damaged")
    out = work["dir"] / "damaged_run"
    r = run(work, "distill-l2s-train", lang, out, "--preset", "tiny", "--lam", "0",
            "--set", "num_workers=2", "max_steps=10", "eval_steps=5", "max_bad_share=0.5")
    res = json.loads((out / "results.json").read_text())
    sk = {s: res["skipped"][s] for s in ("train", "dev", "test")}
    assert sk["train"]["reasons"] == {"missing clip": 2, "empty clip": 2, "duplicate clip": 2, "also in dev": 1,
                                      "undecodable clip": 2}, sk["train"]
    assert (sk["train"]["rows"], sk["train"]["kept"], sk["train"]["bad"]) == (17, 8, 6)
    assert sk["dev"]["reasons"] == {"undecodable clip": 1} and (sk["dev"]["rows"], sk["dev"]["kept"]) == (4, 3)
    assert sk["test"]["reasons"] == {"missing clip": 2} and (sk["test"]["rows"], sk["test"]["kept"]) == (4, 2)
    assert (res["train_utterances"], res["dev"]["utterances"], res["test"]["utterances"]) == (8, 3, 2)
    assert set(sk["train"]["examples"]["undecodable clip"]) == {"junk1.mp3", "junk2.mp3"}
    # visible while it runs: per split and reason with an example at the start, a warning per broken clip, no mpg123 noise
    start, after = r.stdout.split("after training")
    assert reported(start) == {("train", 2, "missing clip"), ("train", 2, "empty clip"), ("train", 2, "duplicate clip"),
                               ("train", 1, "also in dev"), ("test", 2, "missing clip")}, start
    assert "train           2  missing clip                 e.g. line 12: common_voice_en_00000011.mp3" in start, start
    assert {("train", 2, "undecodable clip"), ("dev", 1, "undecodable clip")} <= reported(after), after
    assert r.stderr.count("junk1.mp3: cannot be decoded as audio") == 1, r.stderr[-3000:]
    assert "Illegal Audio-MPEG-Header" not in r.stderr and "Note:" not in r.stderr
    # the eval command says the same about the split it scores, and writes the same exact counts
    r = run(work, "distill-l2s-eval", out / "model", lang, "--split", "dev", "--output", out / "dev.json", "--max-bad-share", "0.5")
    ev = json.loads((out / "dev.json").read_text())
    assert ev["skipped"]["reasons"] == {"undecodable clip": 1} and ev["utterances"] == 3 and (ev["cer"], ev["wer"]) == (res["dev"]["cer"], res["dev"]["wer"])
    assert reported(r.stdout) == {("dev", 1, "undecodable clip")} and "Illegal Audio-MPEG-Header" not in r.stderr
    # with the default share (5%) the same release stops before training, with a message and no traceback
    r = run(work, "distill-l2s-train", lang, work["dir"] / "damaged_default", "--preset", "tiny", "--lam", "0", check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "train.tsv: 4 of 17 rows (23.5%) are damaged, more than max_bad_share=0.05" in r.stderr, r.stderr[-3000:]


def test_one_broken_clip_with_the_default_share(work):
    "One clip in 21 that is not audio: the default run counts it and finishes; a stricter share stops at the clip."
    from distill_l2s.data import BadDataError, write_cv_fixture
    from distill_l2s.train import make_config, train
    s = sentences()
    rows = {"train": [dict(sentence=s[i % 8], duration=1.0) for i in range(20)] + [dict(sentence="Not audio.", audio="junk")],
            "dev": [dict(sentence=t, duration=1.2) for t in s[8:10]], "test": [dict(sentence=t, duration=1.1) for t in s[10:12]]}
    lang = write_cv_fixture(work["dir"] / "one_junk", rows, lang="en")
    cfg = lambda out, **kw: make_config("tiny", dict(max_steps=11, **kw), lang_dir=str(lang), output_dir=str(out), lam=0.0)
    with pytest.warns(UserWarning, match="common_voice_en_00000021.mp3: cannot be decoded as audio"):
        res = train(cfg(work["dir"] / "one_junk_run"))          # 11 steps of 2: every training clip is met
    assert res["steps"] == 11 and res["skipped"]["train"]["reasons"] == {"undecodable clip": 1}
    assert res["train_utterances"] == 20
    with pytest.raises(BadDataError, match=r"1 of 21 rows \(4.8%\) are damaged, more than max_bad_share=0.04"):
        train(cfg(work["dir"] / "one_junk_strict", max_bad_share=0.04))


def test_hub_names_fail_fast_offline(work):
    "Hub names with no hub: the clear error comes without huggingface_hub's minute of retries."
    env = {k: v for k, v in ENV.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    for extra in ({"HF_ENDPOINT": "http://127.0.0.1:9"}, {"HF_HUB_OFFLINE": "1"}):  # nothing listens there; offline mode
        r = subprocess.run([sys.executable, str(work["bins"] / "distill-l2s-train"), str(work["lang"]), str(work["dir"] / "hub"),
                            "--student", "facebook/wav2vec2-large-xlsr-53", "--teacher", "microsoft/infoxlm-base"],
                           env={**env, **extra}, capture_output=True, text=True, timeout=600)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
        for part in ("cannot start the run", "student 'facebook/wav2vec2-large-xlsr-53' does not load",
                     "teacher 'microsoft/infoxlm-base' does not load"):
            assert part in r.stderr, (part, r.stderr[-3000:])
        assert "Retrying" not in r.stderr, r.stderr[-3000:]


def test_transcripts_have_single_spaces(work):
    "A saved student whose greedy path holds `| [PAD] |` transcribes with one space per word break."
    import itertools
    import torch
    from distill_l2s.cli import transcribe_cli
    from distill_l2s.data import load_audio
    from distill_l2s.train import load_student
    src = work["dir"] / "kd" / "model"
    if not src.is_dir(): run(work, "distill-l2s-train", *tiny(work, work["dir"] / "kd", 0.5))  # as test_distill_eval_transcribe trains it
    student, proc = load_student(src)
    vocab = proc.tokenizer.get_vocab()
    clips = sorted((work["lang"] / "clips").glob("*.mp3"))[:4]
    inputs = [proc(load_audio(c), sampling_rate=16000, return_tensors="pt") for c in clips]
    keep = [vocab[t] for t in ("|", "[PAD]", "a", "t")]  # only these compete, each about as likely as the others
    with torch.no_grad():
        mean = torch.cat([student(**x).logits[0] for x in inputs]).mean(0)
        student.lm_head.bias -= 1e3
        student.lm_head.bias[keep] += 1e3 - mean[keep]
    student.save_pretrained(work["dir"] / "spaces"); proc.save_pretrained(work["dir"] / "spaces")
    texts = transcribe_cli(str(work["dir"] / "spaces"), *map(str, clips))
    with torch.no_grad(): paths = [proc.tokenizer.convert_ids_to_tokens(student(**x).logits.argmax(-1)[0].tolist()) for x in inputs]
    assert any(("|", "[PAD]", "|") in set(zip(p, p[1:], p[2:])) for p in paths)  # a double space before the fix
    for t, p in zip(texts, paths):
        merged = "".join(k for k, _ in itertools.groupby(p) if k != "[PAD]")
        assert t == " ".join(merged.replace("|", " ").split()), (t, merged)


def test_forced_segmentation(work):
    """`--set segmentation=forced` trains end to end; a run reading the filled cache without the teacher ends with the same
    weights; a control teacher written with `TeacherCache.write` (positions = characters) trains too."""
    import dataclasses
    import torch
    from distill_l2s.data import read_split
    from distill_l2s.teacher import ALIGNMENT_FILE, TeacherCache, read_alignment
    from distill_l2s.train import train
    out = work["dir"] / "forced"
    run(work, "distill-l2s-train", *tiny(work, out, 0.5, "--set", "segmentation=forced"))
    live = json.loads((out / "results.json").read_text())
    assert json.loads((out / "train_config.json").read_text())["segmentation"] == "forced"
    steps = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    assert steps and all(h["kd_loss"] > 0 and h["forced_fallback"] == 0 and 0 <= h["shrink_fallback"] <= 1 for h in steps)
    # the rows compared are the teacher's word pieces that cover characters: fewer than the labels (spaces cover none)
    assert all(0 < h["kd_rows_per_label"] < 1 for h in steps)
    assert json.loads((out / "model" / "distill_l2s_projection.json").read_text())["segmentation"] == "forced"
    # the same run from the read-only cache: the teacher's tokenizer travels in the cache folder
    folder = next((out / "teacher_cache").iterdir())
    assert read_alignment(folder)["kind"] == "tokenizer" and (folder / "tokenizer" / "tokenizer.json").is_file()
    cfg = _tiny_cfg(work, work["dir"] / "forced_pre", lam=0.5, teacher_features=str(folder), segmentation="forced")
    pre = train(dataclasses.replace(cfg, teacher=str(work["dir"] / "no-such-teacher")))
    for k in ("weights_digest", "dev", "test"): assert pre[k] == live[k], k
    # a control teacher whose positions are the characters (one fixed random vector per character), written from a dict
    texts = sorted({r.text for s in ("train", "dev") for r in read_split(work["lang"], s)[0]})
    g = torch.Generator().manual_seed(0)
    unit = {c: torch.nn.functional.normalize(torch.randn(16, generator=g), dim=0) for c in sorted(set("".join(texts)))}
    oracle = TeacherCache.write(work["dir"] / "oracle", {t: torch.stack([unit[c] for c in t]) for t in texts}, identity="oracle seed 0")
    res = train(_tiny_cfg(work, work["dir"] / "forced_oracle", lam=0.5, teacher_features=str(oracle.dir), segmentation="forced"))
    logs = [h for h in json.loads((work["dir"] / "forced_oracle" / "trainer_state.json").read_text())["log_history"] if "loss" in h]
    assert res["teacher_identity"] == "oracle seed 0" and all(h["kd_loss"] > 0 for h in logs)
    # position i is character i, the space included: every label is compared with its own vector
    assert all(abs(h["kd_rows_per_label"] - 1) < 1e-6 for h in logs)
    # a cache folder without a declaration is refused before anything loads
    (work["dir"] / "legacy").mkdir()
    for f in folder.glob("*"):
        if f.is_file() and f.name != ALIGNMENT_FILE: (work["dir"] / "legacy" / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ValueError, match="alignment.json"):
        train(_tiny_cfg(work, work["dir"] / "forced_bad", lam=0.5, teacher_features=str(work["dir"] / "legacy"), segmentation="forced"))
