"""Replications v2 and v3: train every run of a grid that has no result yet, then write its tables and plots.

    python benchmarks/replication/run_v2.py                 # the v2 grid: 51 runs and 3 stronger models (about 5.5 h on 2 cores)
    python benchmarks/replication/run_v2.py --report-only   # tables and plots from the records already here
    python benchmarks/replication/run_v2.py --cells whisper-sw-150,whisper-ru-150 --seeds 0,1,2   # a part of the grid
    python benchmarks/replication/run_v2.py --grid v3       # the v3 grid (also `run_v3.py`): 85 runs, records in results/v3

v3 (`FULL_V3`) is the same harness with other arms: the e5 teacher standardised, the teacher reset and trained as the
official code ran it (`as-run`), trained from its pretrained weights (`joint`), and standardised controls, five
seeds, on Swahili, Russian and English; the first five baseline seeds also decide whether the recipe's seeds agree.

The grid (the pretrained whisper-base student and v1's random student; the e5 teacher with greedy and forced
segments, a random teacher, a knowledge control and a label control) is defined and tested in
`nbs/14_replication_v2.ipynb` (module `distill_l2s.replication_v2`). Corpus, features, stronger models, frozen states,
checkpoints and logs go to the work folder (default `<cache>/replication-v2`); the result records
(`results/v2/`), the report (`v2.md`) and the plots (`plots/v2/`) go into this folder and are committed.
Finished runs are skipped and interrupted ones resume, as in `run.py`.

Cost measured on the 2-core development machine, two runs at a time with one torch thread each: a whisper-base run
(240 steps of 8 clips, frozen states cached) takes 6.5 to 8 minutes, so the 42 runs of the two Whisper cells take
about 3 hours; the random student's stronger model (1,200 steps on 600 clips) about 1.5 hours by itself.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=0, help="runs trained at once (default: CPU cores // threads, at least 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--work", type=Path, default=None, help="folder for corpus, features, stronger models and run folders")
    p.add_argument("--grid", choices=("v2", "v3"), default="v2", help="which replication's grid (default v2)")
    p.add_argument("--results", type=Path, default=None, help="folder of the result records (default results/<grid>)")
    p.add_argument("--teacher", default=None, help="text teacher folder (default: the offline multilingual-e5-small)")
    p.add_argument("--cells", default=None, help="comma-separated cells of the grid to prepare and train, e.g. "
                   "whisper-sw-150,whisper-ru-150 (default: all: whisper-sw-150, whisper-ru-150, random-sw-150)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: 0,1,2)")
    p.add_argument("--only", default=None, help="train only runs whose name contains this text, e.g. whisper-sw or seed0")
    p.add_argument("--deadline-min", type=float, default=None, help="start no run after this many minutes")
    p.add_argument("--report-only", action="store_true", help="write tables and plots from the records, train nothing")
    return p


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from distill_l2s.e5 import cache_root
    from distill_l2s.replication import run_grid
    from dataclasses import replace
    from distill_l2s.replication_v2 import FULL_V2, FULL_V3, write_report_v2
    full = FULL_V3 if a.grid == "v3" else FULL_V2
    grid = full
    a.results = a.results or HERE / "results" / a.grid
    if a.cells:
        names = [c.strip() for c in a.cells.split(",") if c.strip()]
        known = {c.name: c for c in full.cells}
        bad = [n for n in names if n not in known]
        if bad: raise SystemExit(f"--cells: unknown cell(s) {bad}; the grid has {', '.join(known)}")
        grid = replace(grid, cells=tuple(known[n] for n in names))
    if a.seeds:
        try: grid = replace(grid, seeds=tuple(int(x) for x in a.seeds.split(",") if x.strip()))
        except ValueError: raise SystemExit(f"--seeds: {a.seeds!r} is not a comma-separated list of integers") from None
    work = a.work or cache_root() / f"replication-{a.grid}"
    jobs = a.jobs or max(1, (os.cpu_count() or 1) // max(1, a.threads))
    failed = {}
    if not a.report_only:
        deadline = time.time() + 60 * a.deadline_min if a.deadline_min is not None else None
        summary = run_grid(grid, work, a.results, jobs=jobs, threads=a.threads, teacher=a.teacher, deadline=deadline, only=a.only)
        failed = summary["failed"]
        print(f"{summary['done']} runs trained, {summary['skipped']} finished before, {len(failed)} failed, "
              f"{summary['postponed']} not started (deadline)")
        for k, v in failed.items(): print(f"  failed: {k}: {v}  (log: {work / 'runs' / k / 'log.txt'})")
    if not any(a.results.glob("*.json")):
        print(f"no result records in {a.results}: nothing to report")
        return 1 if failed else 0
    report, plots = HERE / f"{a.grid}.md", HERE / "plots" / a.grid
    # A work folder lets the report compute what the side files lack (bridge fits, teacher spreads); without one it
    # lays out the saved side files (results/<grid>-fits.json, -teachers.json, -prepared.json) and computes nothing.
    rows = write_report_v2(a.results, grid, report, plots, work=work if work.is_dir() else None)
    print(f"{len(rows)} table rows from {a.results} written to {report}; plots in {plots}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
