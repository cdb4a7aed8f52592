"""Every notebook in `nbs/` is one test item, run in its own process with nbdev's notebook runner."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
NOTEBOOKS = sorted(p for p in NBS.rglob("*.ipynb")
                   if not any(part.startswith(("_", ".")) for part in p.relative_to(NBS).parts))

_RUNNER = """
import sys
from nbdev.test import test_nb
nb, skip, force, root = sys.argv[1:5]
ok, secs = test_nb(nb, skip_flags=skip.split(), force_flags=force.split(), basepath=root)
print(f"{nb}: {secs:.1f}s")
sys.exit(0 if ok else 1)
"""


def _tst_flags() -> list[str]:
    from nbdev.config import get_config
    return str(get_config(ROOT).tst_flags).split()


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[str(p.relative_to(NBS)) for p in NOTEBOOKS])
def test_notebook(nb: Path, flags: set[str]):
    skip = [f for f in _tst_flags() if f not in flags]
    force = sorted(flags)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "MPLBACKEND": "Agg", "TOKENIZERS_PARALLELISM": "false"}
    r = subprocess.run([sys.executable, "-c", _RUNNER, str(nb), " ".join(skip), " ".join(force), str(ROOT)],
                       cwd=nb.parent, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"{nb.relative_to(ROOT)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-12000:]}", pytrace=False)
