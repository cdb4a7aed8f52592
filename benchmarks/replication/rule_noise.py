"""How often v3's rule says "helps" when no arm has any effect: a simulation of paired changes that are pure noise.

    python benchmarks/replication/rule_noise.py              # spread 7.1%: v3's 30 pairs of seeds 0-4 on one machine
    python benchmarks/replication/rule_noise.py --spread 0.05 --arms 3 --cells 2
    python benchmarks/replication/rule_noise.py --arms 6,6,2     # the whole v3 grid: 6 arms on Swahili and Russian, 2 on English

An arm "helps" when its mean paired change of test CER is -5% or better and it is better on at least 4 of 5 seeds.
Each run's CER is drawn with noise of spread/sqrt(2), so a paired change (arm minus baseline) has the given spread;
the arms of a cell share its baseline seeds, as in the grid, which makes their verdicts correlated.
"""
import argparse

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spread", type=float, default=0.071, help="standard deviation of a paired change (default 0.071)")
    p.add_argument("--arms", default="3", help="arms judged per cell: one number for every cell, or one per cell, e.g. 6,6,2 (default 3)")
    p.add_argument("--cells", type=int, default=2, help="cells, where --arms is one number (default 2)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--trials", type=int, default=200_000)
    a = p.parse_args(argv)
    try: arms = [int(n) for n in a.arms.split(",")]
    except ValueError: p.error(f"--arms {a.arms!r}: give a number of arms, or one per cell such as 6,6,2")
    if len(arms) == 1: arms *= a.cells
    if min(arms) < 1: p.error(f"--arms {a.arms!r}: every cell judges at least one arm")
    rng = np.random.default_rng(0)
    run = a.spread / np.sqrt(2)
    helps = lambda d: (d.mean(1) <= -0.05) & ((d < 0).sum(1) >= 4)
    any_cell = np.zeros(a.trials, bool)
    one = []
    for n in arms:
        base = rng.normal(0, run, (a.trials, a.seeds))
        for _ in range(n):
            h = helps(rng.normal(0, run, (a.trials, a.seeds)) - base)
            one.append(h.mean()); any_cell |= h
    print(f"paired spread {a.spread:.3f}, {a.seeds} seeds: one arm 'helps' by noise in {100 * np.mean(one):.1f}% of trials; "
          f"at least one of {sum(arms)} arms ({'/'.join(map(str, arms))} in {len(arms)} cells, each cell's sharing its baseline) in {100 * any_cell.mean():.1f}%")


if __name__ == "__main__":
    main()
