"""Replication v3: `run_v2.py --grid v3` (the same runner, records and report writer; see its docstring).

    python benchmarks/replication/run_v3.py                 # every v3 run without a record (85 runs), then v3.md
    python benchmarks/replication/run_v3.py --report-only   # v3.md's tables and plots from the records alone
    python benchmarks/replication/run_v3.py --cells whisper-sw-150 --only baseline   # a part of the grid
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_v2 import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["--grid", "v3", *sys.argv[1:]]))
