"""Shared pytest setup: opt-in flags for slow, GPU and hub work.

Notebook cells marked `#| slow`, `#| gpu` or `#| hub` (the `tst_flags` in `pyproject.toml`) and plain
tests marked `@pytest.mark.slow` (or `gpu`, `hub`) are skipped unless their flag is passed:
`pytest --flags slow` or `DISTILL_L2S_TEST_FLAGS=slow pytest`.
"""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))  # test the checkout, also from a git worktree

FLAGS = ("slow", "gpu", "hub")

# The tests and notebooks use tiny models, for which a second OpenMP thread costs more than it saves, and pytest-xdist
# already runs one test per core: one thread a process (inherited by every notebook and command a test starts) cut
# the CPU time of the notebook tests by about a quarter on two cores. An OMP_NUM_THREADS of your own is kept.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_addoption(parser):
    parser.addoption("--flags", default=os.environ.get("DISTILL_L2S_TEST_FLAGS", ""),
                     help=f"comma- or space-separated test flags to run as well: {', '.join(FLAGS)}")


def pytest_configure(config):
    for f in FLAGS: config.addinivalue_line("markers", f"{f}: runs only with `--flags {f}`")
    config.addinivalue_line("markers", "xdist_group(name): pytest-xdist runs the tests of a group in one worker")  # also without xdist


def active_flags(config) -> set[str]:
    return set(config.getoption("--flags").replace(",", " ").split())


@pytest.fixture
def flags(request) -> set[str]:
    "The test flags this run opted into."
    return active_flags(request.config)


# The longest work first. pytest-xdist hands out work (a module's group, or one notebook) in collection order, so a long
# item collected late leaves the other worker idle at the end. Measured with `python -m pytest --durations=25` on a
# quiet 2-core machine, seconds: test_train_cli.py about 170 in all, 11_replication 95, 07_synth 63, 10_demo 62,
# tutorial 03 58, tutorial 01 41, tutorial 02 37, 08_e5 34, 12_whisper 33, 09_plots 32. The rest keeps its order.
# Only the wall time depends on this list; a stale one costs seconds, never a test.
LONGEST_FIRST = ("test_train_cli.py", "11_replication.ipynb", "07_synth.ipynb", "10_demo.ipynb", "tutorials/03_your_language_and_models.ipynb",
                 "tutorials/01_method_in_one_batch.ipynb", "tutorials/02_reproduce_paper.ipynb", "08_e5.ipynb", "12_whisper.ipynb",
                 "09_plots.ipynb")


def _rank(item) -> int:
    "Where an item's work goes in `LONGEST_FIRST`: a notebook by its name, any other test by its module."
    key = item.callspec.id if item.path.name == "test_notebooks.py" and hasattr(item, "callspec") else item.path.name
    return LONGEST_FIRST.index(key) if key in LONGEST_FIRST else len(LONGEST_FIRST)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    items[:] = sorted(items, key=_rank)  # a stable sort: a module's tests stay together, in order
    on = active_flags(config)
    for item in items:
        for f in FLAGS:
            if f in item.keywords and f not in on:
                item.add_marker(pytest.mark.skip(reason=f"needs `--flags {f}`"))
        # With pytest-xdist (`-n`, `--dist loadgroup`), the tests of a module run in one worker, in order, as written
        # (they share module fixtures, and some reuse what an earlier test made); notebooks are spread one by one.
        if item.path.name != "test_notebooks.py": item.add_marker(pytest.mark.xdist_group(item.path.stem))
