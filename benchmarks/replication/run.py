"""The small-scale replication: train every run of the grid that has no result yet, then write the tables and plots.

    python benchmarks/replication/run.py              # the full grid (72 runs, about 3 h on a 2-core CPU)
    python benchmarks/replication/run.py --reduced    # the reduced grid (18 shorter runs, about a quarter of an hour)
    python benchmarks/replication/run.py --report-only

Runs are resumable: a finished run has a record in the results folder and is skipped, an interrupted one continues
from its newest checkpoint. The grid, the setup and the summaries are documented in `nbs/11_replication.ipynb`
(module `distill_l2s.replication`). Corpus, teacher features, checkpoints and logs go to the work folder
(default `<cache>/replication-full` or `-reduced`, cache = $DISTILL_L2S_CACHE or ~/.cache/distill_l2s); the
result records, tables and plots go into this folder and are committed.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


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


def parser() -> argparse.ArgumentParser:
    "The command line of this script."
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reduced", action="store_true", help="the reduced grid (Swahili alone, 2 seeds, 500 steps: 18 runs)")
    p.add_argument("--jobs", type=int, default=0, help="runs trained at once (default: CPU cores // threads, at least 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--work", type=Path, default=None, help="folder for corpus, teacher features and run folders")
    p.add_argument("--results", type=Path, default=None, help="folder of the result records (default results/full or results/reduced)")
    p.add_argument("--teacher", default=None, help="text teacher folder (default: the offline multilingual-e5-small)")
    p.add_argument("--only", default=None, help="train only runs whose name contains this text, e.g. sw-150 or seed0")
    p.add_argument("--deadline-min", type=float, default=None, help="start no run after this many minutes")
    p.add_argument("--report-only", action="store_true", help="write tables and plots from the records, train nothing")
    return p


def main(argv=None) -> int:
    a = parser().parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from distill_l2s.replication import FULL, REDUCED, run_grid, write_report
    from distill_l2s.e5 import cache_root
    name = "reduced" if a.reduced else "full"
    grid = REDUCED if a.reduced else FULL
    results = a.results or HERE / "results" / name
    work = a.work or cache_root() / f"replication-{name}"
    jobs = a.jobs or max(1, (os.cpu_count() or 1) // max(1, a.threads))
    failed = {}
    if not a.report_only:
        deadline = time.time() + 60 * a.deadline_min if a.deadline_min is not None else None
        summary = run_grid(grid, work, results, jobs=jobs, threads=a.threads, teacher=a.teacher, deadline=deadline,
                           only=a.only)
        failed = summary["failed"]
        print(f"{summary['done']} runs trained, {summary['skipped']} finished before, {len(failed)} failed, "
              f"{summary['postponed']} not started (deadline)")
        for k, v in failed.items(): print(f"  failed: {k}: {v}  (log: {work / 'runs' / k / 'log.txt'})")
    if not any(results.glob("*.json")):
        print(f"no result records in {results}: nothing to report")
        return 1 if failed else 0
    md = HERE / ("README.md" if name == "full" else "reduced.md")
    rows = write_report(results, grid, md, HERE / "plots" / name)
    print(f"{len(rows)} table rows from {results} written to {md}; plots in {HERE / 'plots' / name}")
    check = HERE / "results" / "cpu-check"
    if name == "full" and any(check.glob("*.json")): device_check(results, check, md)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
