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


def pytest_addoption(parser):
    parser.addoption("--flags", default=os.environ.get("DISTILL_L2S_TEST_FLAGS", ""),
                     help=f"comma- or space-separated test flags to run as well: {', '.join(FLAGS)}")


def pytest_configure(config):
    for f in FLAGS: config.addinivalue_line("markers", f"{f}: runs only with `--flags {f}`")


def active_flags(config) -> set[str]:
    return set(config.getoption("--flags").replace(",", " ").split())


@pytest.fixture
def flags(request) -> set[str]:
    "The test flags this run opted into."
    return active_flags(request.config)


def pytest_collection_modifyitems(config, items):
    on = active_flags(config)
    for item in items:
        for f in FLAGS:
            if f in item.keywords and f not in on:
                item.add_marker(pytest.mark.skip(reason=f"needs `--flags {f}`"))
