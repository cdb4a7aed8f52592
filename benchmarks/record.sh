#!/usr/bin/env bash
# Re-measure every benchmark of benchmarks/README.md in one sitting, one after the other, on this machine.
# Usage, from the repository root:  bash benchmarks/record.sh [LOG]   (default LOG: benchmarks/record.log)
# Needs `pip install -e ".[dev,demo]"`. About 20 minutes on a 2-core CPU. Leave the machine otherwise idle:
# the log notes the load average before and after each benchmark.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG=${1:-benchmarks/record.log}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 MPLBACKEND=Agg
step() {  # step NAME COMMAND...: run one benchmark, its output and wall time into the log
  local name=$1; shift
  echo; echo "## $name"; echo "\$ $*"; echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  local t0=$(date +%s.%N)
  "$@" 2>&1 | grep -v -E '\|[#█ ▏▎▍▌▋▊▉]*\| *[0-9]+/[0-9]+ \[|it/s\]|s/it\]'
  echo "exit status ${PIPESTATUS[0]}; wall $(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')") s; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}
{
  echo "# benchmark record"
  echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- distill_l2s benchmarks || echo ' (with local changes)'), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
  python3 -c "import sys, torch, transformers; print(f'python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}, CUDA available: {torch.cuda.is_available()}')"
  step "alignment core, CPU time, one thread" python3 benchmarks/bench_align.py --cpu-time --repeats 25
  step "alignment core, wall time" python3 benchmarks/bench_align.py --repeats 25
  step "forced segments against the greedy shrink, CPU time, one thread" python3 benchmarks/bench_forced.py --cpu-time --repeats 15
  step "audio throughput" python3 benchmarks/bench_audio.py
  step "training step" python3 benchmarks/bench_step.py --threads 1 --rounds 7
  step "offline teacher conversion" python3 benchmarks/e5_convert.py
  step "synthesised corpus" python3 benchmarks/synth_corpus.py
  DEMO=$(mktemp -d)
  step "demo, empty cache" env DISTILL_L2S_CACHE=$DEMO/cache distill-l2s-demo --out-dir $DEMO/out
  rm -rf "$DEMO"
} 2>&1 | tee "$LOG"
