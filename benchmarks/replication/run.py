"""Every replication of this project, one runner: train every run of a grid that has no result yet, then write its report.

    python benchmarks/replication/run.py                      # v1: the random student, 72 runs (about 3 h on a 2-core CPU)
    python benchmarks/replication/run.py --grid reduced       # v1's reduced grid (18 shorter runs, about a quarter of an hour)
    python benchmarks/replication/run.py --grid v2 --cells whisper-sw-150,whisper-ru-150 --seeds 0,1,2   # what v2 ran
    python benchmarks/replication/run.py --grid v3            # v3: whisper-base, trained teachers, standardised targets (85 runs)
    python benchmarks/replication/run.py --grid v3 --report-only   # v3.md from the records and the measurements kept beside them

The grids are data in `distill_l2s.replication` (`nbs/11_replication.ipynb`): `FULL` and `REDUCED` (v1: the random
wav2vec2 student over languages, amounts of speech, λ and ablations), `FULL_V2` and `FULL_V3` (cells of the
pretrained whisper-base student with controls, trained teachers and standardised targets). Runs are resumable: a
finished run has a record in the results folder and is skipped, an interrupted one continues from its newest
checkpoint. Corpus, teacher features, stronger models, frozen states, checkpoints and logs go to the work folder
(default `<cache>/replication-<grid>`, cache = $DISTILL_L2S_CACHE or ~/.cache/distill_l2s); the result records
(`results/<grid>/`), the measurements kept beside them (`results/<grid>-*.json`), the report and the plots
(`plots/<grid>/`) go into this folder and are committed.

The report is made in two steps: `measure` computes what the report shows beyond the records (bridge fits, teacher
spreads, transfer probes) for runs whose folders are in the work folder and keeps it beside the records, each run
measured once; `write_report` lays out the records and those measurements. Without a work folder (another machine)
`--report-only` lays out what was kept, computing nothing.

Cost on the 2-core development machine, two runs at a time with one torch thread each: a v1 run takes 3 to 6
minutes; a whisper-base run (240 steps of 8 clips, frozen states cached) 6.5 to 8 minutes.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPORTS = {"full": "README.md", "reduced": "reduced.md", "v2": "v2.md", "v3": "v3.md"}


def device_check(results: Path, check: Path, md: Path):
    "Tables of the runs repeated on another device (`results/cpu-check`) beside the same runs in `results`."
    from distill_l2s.replication import load_records, replace_block
    from distill_l2s.plots import summarise, arm_table
    again = load_records(check)
    names = {r["name"] for r in again}
    first = [r for r in load_records(results) if r["name"] in names]
    devices = lambda recs: ", ".join(sorted({r["device"] for r in recs}))
    body = (f"Runs of the grid repeated on another device: the same specs, corpus, teacher features and seeds.\n\n"
            f"In the grid ({devices(first)}):\n\n{arm_table(summarise(first))}\n"
            f"Repeated ({devices(again)}):\n\n{arm_table(summarise(again))}")
    replace_block(md, body, "<!-- device-check:start -->", "<!-- device-check:end -->")
    print(f"device check: {len(again)} repeated runs written to {md}")


def machine_check(results: Path, earlier: Path, md: Path):
    "v3: the runs first trained on earlier machines (`results/v3-earlier-machines`) beside the same runs retrained here, run by run."
    import numpy as np
    from distill_l2s.replication import CellRun, load_records, markdown_table, paired_table, replace_block
    before = {r["name"]: r for r in load_records(earlier, CellRun)}
    now = {r["name"]: r for r in load_records(results, CellRun)}
    both = sorted(set(before) & set(now))
    test = lambda r: r["results"]["test"]["cer"]
    diffs = [(test(now[n]) - test(before[n])) / test(before[n]) for n in both]
    rows = [[n, f"{test(before[n]):.4f}", f"{test(now[n]):.4f}", f"{100 * d:+.1f}%"] for n, d in zip(both, diffs)]
    devices = lambda recs: ", ".join(sorted({r["device"] for r in recs}))
    summary = (f"{len(both)} runs in both; relative difference of test CER, run by run: median of its size "
               f"{100 * np.median(np.abs(diffs)):.1f}%, largest {100 * np.max(np.abs(diffs)):.1f}%.\n\n" if both else "No run in both yet.\n\n")
    body = (f"The same specs and seeds, trained first on earlier machines ({devices(before.values())}, records in "
            f"`results/{earlier.name}/`) and again on one machine ({devices(now.values()) or 'none yet'}, `results/{results.name}/`).\n\n"
            + summary + (markdown_table(["run", "test CER, earlier", "test CER, here", "difference"], rows) + "\n" if rows else "")
            + "\nPaired changes of test CER within the earlier records (they do not name their CPU; their arms were "
            "trained in different sessions, on machines that may have differed):\n\n" + paired_table(list(before.values())))
    replace_block(md, body, "<!-- machine-check:start -->", "<!-- machine-check:end -->")
    print(f"machine check: {len(both)} runs in both written to {md}")


def parser() -> argparse.ArgumentParser:
    "The command line of this script."
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", choices=tuple(REPORTS), default="full", help="which replication's grid (default: full, v1's)")
    p.add_argument("--reduced", action="store_true", help="the same as --grid reduced")
    p.add_argument("--jobs", type=int, default=0, help="runs trained at once (default: CPU cores // threads, at least 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--work", type=Path, default=None, help="folder for corpus, features, stronger models and run folders")
    p.add_argument("--results", type=Path, default=None, help="folder of the result records (default results/<grid>)")
    p.add_argument("--teacher", default=None, help="text teacher folder (default: the offline multilingual-e5-small)")
    p.add_argument("--cells", default=None, help="v2 and v3: comma-separated cells to prepare and train, e.g. whisper-sw-150,whisper-ru-150 (default: all)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: the grid's)")
    p.add_argument("--only", default=None, help="train only runs whose name contains this text, e.g. sw-150 or seed0")
    p.add_argument("--deadline-min", type=float, default=None, help="start no run after this many minutes")
    p.add_argument("--any-device", action="store_true", help="add runs to a results folder whose records were trained on "
                   "another device (a seed's run differs between CPU kinds: pairs across them compare machines too)")
    p.add_argument("--report-only", action="store_true", help="write the report from the records, train nothing")
    p.add_argument("--train-only", action="store_true", help="train, then stop: no measurements, no report (a later "
                   "--report-only measures what is new; keeps both cores training while a grid runs arm by arm)")
    return p


def select(a, grid):
    "The grid narrowed to `--cells` (v2 and v3) and `--seeds`."
    from dataclasses import replace
    from distill_l2s.replication import CellGrid
    if a.cells and not isinstance(grid, CellGrid): raise SystemExit(f"--cells chooses cells of the v2 and v3 grids; {a.grid!r} has none")
    if a.cells:
        names = [c.strip() for c in a.cells.split(",") if c.strip()]
        known = {c.name: c for c in grid.cells}
        bad = [n for n in names if n not in known]
        if bad: raise SystemExit(f"--cells: unknown cell(s) {bad}; the grid has {', '.join(known)}")
        grid = replace(grid, cells=tuple(known[n] for n in names))
    if a.seeds:
        try: grid = replace(grid, seeds=tuple(int(x) for x in a.seeds.split(",") if x.strip()))
        except ValueError: raise SystemExit(f"--seeds: {a.seeds!r} is not a comma-separated list of integers") from None
    return grid


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    if a.report_only and a.train_only: parser().error("--report-only and --train-only exclude each other")
    if a.reduced: a.grid = "reduced"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from distill_l2s.e5 import cache_root
    from distill_l2s.replication import FULL, FULL_V2, FULL_V3, REDUCED, measure, run_grid, write_report
    full = dict(full=FULL, reduced=REDUCED, v2=FULL_V2, v3=FULL_V3)[a.grid]
    grid = select(a, full)
    results = a.results or HERE / "results" / a.grid
    work = a.work or cache_root() / f"replication-{a.grid}"
    jobs = a.jobs or max(1, (os.cpu_count() or 1) // max(1, a.threads))
    failed = {}
    if not a.report_only:
        deadline = time.time() + 60 * a.deadline_min if a.deadline_min is not None else None
        summary = run_grid(grid, work, results, jobs=jobs, threads=a.threads, teacher=a.teacher, deadline=deadline, only=a.only,
                           any_device=a.any_device)
        failed = summary["failed"]
        print(f"{summary['done']} runs trained, {summary['skipped']} finished before, {len(failed)} failed, "
              f"{summary['postponed']} not started (deadline)")
        for k, v in failed.items(): print(f"  failed: {k}: {v}  (log: {work / 'runs' / k / 'log.txt'})")
    if a.train_only: return 1 if failed else 0
    if not any(results.glob("*.json")):
        print(f"no result records in {results}: nothing to report")
        return 1 if failed else 0
    md, plots = HERE / REPORTS[a.grid], HERE / "plots" / a.grid
    measure(full, results, work if work.is_dir() else None)  # the whole grid's cells: a report covers every record
    rows = write_report(results, full, md, plots)
    print(f"{len(rows)} table rows from {results} written to {md}; plots in {plots}")
    check = HERE / "results" / "cpu-check"
    if a.grid == "full" and any(check.glob("*.json")): device_check(results, check, md)
    earlier = HERE / "results" / "v3-earlier-machines"
    if a.grid == "v3" and results == HERE / "results" / "v3" and any(earlier.glob("*.json")): machine_check(results, earlier, md)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
