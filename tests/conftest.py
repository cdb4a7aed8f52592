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


def _load_warm():
    import importlib.util
    spec = importlib.util.spec_from_file_location("warm_tool", ROOT / "tools" / "warm.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

warm_tool = _load_warm()
_RUNNERS: dict = {}


def warm_run(argv: list, env: dict, cwd=None, timeout: float|None = None):
    """`subprocess.run([sys.executable, *argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)`, but
    forked from a server (one per `env`, per test worker) that imported torch and transformers once: each command or
    notebook a test starts saves their ~10 s of CPU. Tests of what a freshly started interpreter does (imports, hub
    variables read at import) use a real subprocess."""
    key = tuple(sorted(env.items()))
    if key not in _RUNNERS: _RUNNERS[key] = warm_tool.WarmRunner(env=dict(env))
    return _RUNNERS[key].run(argv, cwd=cwd, timeout=timeout)


def pytest_unconfigure(config):
    for r in _RUNNERS.values(): r.close()


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


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    on = active_flags(config)
    for item in items:
        for f in FLAGS:
            if f in item.keywords and f not in on:
                item.add_marker(pytest.mark.skip(reason=f"needs `--flags {f}`"))
        # With pytest-xdist (`-n`, `--dist loadgroup`), the tests of a module run in one worker, in order, as written
        # (they share module fixtures, and some reuse what an earlier test made); notebooks are spread one by one.
        if item.path.name != "test_notebooks.py": item.add_marker(pytest.mark.xdist_group(item.path.stem))
