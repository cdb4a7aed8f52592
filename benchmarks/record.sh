#!/usr/bin/env bash
# Re-measure every benchmark of benchmarks/README.md in one sitting, one after the other, on this machine.
# Usage, from the repository root:  bash benchmarks/record.sh [LOG]   (default LOG: benchmarks/record.log)
#   ONLY="align bridge step" bash benchmarks/record.sh LOG   runs only the named benchmarks
#     (names: align, forced, audio, step, bridge, e5, synth, demo, paper-step; paper-step runs only where CUDA is present)
#   BASELINE=<commit> ...   also runs the alignment core, bridge and step benchmarks of <commit> (its distill_l2s and
#     benchmarks, from `git archive`) beside the current ones, taking turns, for an old-against-new comparison
# Needs `pip install -e ".[dev,demo]"`. About 20 minutes on a 2-core CPU. Leave the machine otherwise idle:
# the log notes the load average before and after each benchmark.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG=${1:-benchmarks/record.log}
ONLY=${ONLY:-}
BASELINE=${BASELINE:-}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 MPLBACKEND=Agg
want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
step() {  # step NAME COMMAND...: run one benchmark, its output and wall time into the log
  local name=$1; shift
  echo; echo "## $name"; echo "\$ $*"; echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  local t0=$(date +%s.%N)
  "$@" 2>&1 | grep -v -E '\|[#█ ▏▎▍▌▋▊▉]*\| *[0-9]+/[0-9]+ \[|it/s\]|s/it\]'
  echo "exit status ${PIPESTATUS[0]}; wall $(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')") s; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}
OLD=
if [ -n "$BASELINE" ]; then OLD=$(mktemp -d); git archive "$BASELINE" distill_l2s benchmarks | tar -x -C "$OLD"; fi
{
  echo "# benchmark record"
  echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- distill_l2s benchmarks || echo ' (with local changes)'), $(date -u '+%Y-%m-%d %H:%M UTC')${BASELINE:+; baseline $BASELINE}"
  echo "machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
  python3 -c "import sys, torch, transformers; print(f'python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}, CUDA available: {torch.cuda.is_available()}')"
  if want align; then
    step "alignment core, CPU time, one thread" python3 benchmarks/bench_align.py --cpu-time --repeats 25
    [ -n "$OLD" ] && step "alignment core at $BASELINE, CPU time, one thread" python3 "$OLD/benchmarks/bench_align.py" --cpu-time --repeats 25
    [ -n "$OLD" ] && step "alignment core, CPU time, one thread (again)" python3 benchmarks/bench_align.py --cpu-time --repeats 25
    [ -n "$OLD" ] && step "alignment core at $BASELINE, CPU time, one thread (again)" python3 "$OLD/benchmarks/bench_align.py" --cpu-time --repeats 25
    [ -z "$ONLY" ] && step "alignment core, wall time" python3 benchmarks/bench_align.py --repeats 25
  fi
  want forced && step "forced segments against the greedy shrink, CPU time, one thread" python3 benchmarks/bench_forced.py --cpu-time --repeats 15
  want audio && step "audio throughput" python3 benchmarks/bench_audio.py
  want step && step "training step" python3 benchmarks/bench_step.py --threads 1 --rounds 7
  want step && [ -n "$OLD" ] && step "training step at $BASELINE" python3 "$OLD/benchmarks/bench_step.py" --threads 1 --rounds 7
  if want bridge; then
    step "bridge over a real epoch's batch shapes, eager and compiled, CPU time, one thread" \
      python3 benchmarks/bench_bridge.py --cpu-time --epochs 2 ${OLD:+--baseline-src "$OLD"} \
      --modes "${OLD:+old,}read,sync-free,compiled"
  fi
  want e5 && step "offline teacher conversion" python3 benchmarks/e5_convert.py
  want synth && step "synthesised corpus" python3 benchmarks/synth_corpus.py
  if want demo; then
    DEMO=$(mktemp -d)
    step "demo, empty cache" env DISTILL_L2S_CACHE=$DEMO/cache distill-l2s-demo --out-dir $DEMO/out
    rm -rf "$DEMO"
  fi
  if want paper-step && python3 -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    step "paper-scale step, GPU" python3 benchmarks/bench_paper_step.py --modes plain,distill,distill-compiled
    step "paper-scale step, GPU, two processes" python3 benchmarks/bench_paper_step.py --nproc 2
  fi
} 2>&1 | tee "$LOG"
if [ -n "$OLD" ]; then rm -rf "$OLD"; fi
