#!/usr/bin/env bash
# Take every GPU figure benchmarks/README.md still lacks, in one run of at most 8 minutes, into one log.
#
# Usage, from anywhere in the repository (needs `pip install -e ".[dev,demo]"`: the bridge part synthesises speech):
#   bash benchmarks/gpu.sh [LOG]            on a machine with a CUDA GPU (default LOG: benchmarks/gpu.log)
#   bash benchmarks/gpu.sh --tiny [LOG]     self-test on the CPU with tiny sizes (also: TINY=1 bash benchmarks/gpu.sh LOG);
#                                           about 1 minute on 2 cores, its figures mean nothing
# Settings, from the environment:
#   TINY=1       the same as --tiny
#   DEVICE=cuda  the device (default: cuda, or cpu with --tiny; TINY=1 DEVICE=cuda is a quick smoke test on a GPU)
#   COMPILE=1    with --tiny, compile the compiled modes for real (three compiles; one took 66 s on 2 cores); by default the
#                tiny run sets TORCH_COMPILE_DISABLE=1, so those modes run their code path eagerly
#   PYTHON=...   the interpreter (default: python3)
#   CORPUS=DIR   where the bridge part keeps its synthesised Swahili corpus (default: distill_l2s' cache folder,
#                bench-corpus; built on first use, about 20 s, and reused after)
#   TOTAL_S=465  wall-time budget of the whole run in seconds; no part runs past it
#
# Parts, each under its own time cap (`timeout`; a part that fails or runs out of time is logged and the next one runs):
#   header      date, commit, machine, nvidia-smi's line, torch / CUDA / transformers versions, the device's name (30 s)
#   bridge      bench_bridge.py --device cuda --modes read,sync-free,compiled: host reads, time per batch, compile
#               time and recompiles of DistillL2S' bridge over two epochs of real batch shapes (100 s)
#   paper-fp16  bench_paper_step.py --modes plain,distill,distill-compiled --dtypes fp16: the XLSR-53-sized step,
#               batch 12 x 5-10 s, time and peak memory per mode against the goals 1.03x and +2% (140 s)
#   paper-bf16  the same in bf16 (130 s; a process of its own, so that one dtype's failure keeps the other's figures)
#   whisper     bench_paper_step.py --student whisper-small: the Whisper-small-sized CTC student, plain and
#               distill, fp16 and bf16, time and peak memory (60 s)
# Not taken: the two-process step (`bench_paper_step.py --nproc 2`) needs two GPUs.
# Every part ends with `RESULT <part> ...` lines (its figures, peak memory included) and the log ends with a summary,
# one `part <name>: ok|FAILED|TIMEOUT` line each. Exit status: 0 if every part ran and gave figures, 1 otherwise,
# 2 without a CUDA device (outside --tiny).
set -uo pipefail

LOG=
TINY=${TINY:-0}
for a in "$@"; do
  case $a in
    --tiny) TINY=1 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $a (see --help)" >&2; exit 2 ;;
    *) LOG=$a ;;
  esac
done
[ -n "$LOG" ] && LOG=$(realpath -m "$LOG")  # relative to where it was called from
cd "$(dirname "$0")/.."
LOG=${LOG:-benchmarks/gpu.log}
[ "$TINY" = 1 ] && DEVICE=${DEVICE:-cpu} || DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-python3}
# the caps are sized for a GPU; the CPU self-test on a shared 2-core machine gets four times as long (the figures mean nothing)
[ "$TINY" = 1 ] && CAP_SCALE=${CAP_SCALE:-4} || CAP_SCALE=${CAP_SCALE:-1}
TOTAL_S=${TOTAL_S:-$((465 * CAP_SCALE))}
CACHE=${DISTILL_L2S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/distill_l2s}
CORPUS=${CORPUS:-$CACHE/bench-corpus}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 MPLBACKEND=Agg
if [ "$TINY" = 1 ] && [ "${COMPILE:-0}" != 1 ]; then export TORCH_COMPILE_DISABLE=1; fi
mkdir -p "$(dirname "$LOG")" && : > "$LOG" || exit 2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
START=$(date +%s)
SUMMARY=()
FAILED=0

log() { echo "$*" | tee -a "$LOG"; }

part() {  # part NAME CAP_S COMMAND...: run one part under `timeout`, its output into the log, its outcome into SUMMARY
  local name=$1 cap=$(($2 * CAP_SCALE)); shift 2
  local left=$((START + TOTAL_S - $(date +%s)))
  (( cap > left )) && cap=$left
  log ""; log "## $name"; log "\$ $*"; log "time cap ${cap} s; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  if (( cap < 5 )); then
    log "not run: the budget of ${TOTAL_S} s is spent"; SUMMARY+=("part $name: TIMEOUT (not run, budget spent)"); FAILED=1; return
  fi
  local t0; t0=$(date +%s.%N)
  # a fresh bash runs the part (timeout cannot run a shell function); timeout signals its whole process group
  timeout -k 10 "$cap" bash -c '"$@"' "$name" "$@" 2>&1 \
    | grep --line-buffered -v -E '\|[#█ ▏▎▍▌▋▊▉]*\| *[0-9]+/[0-9]+ \[|it/s\]|s/it\]' | tee -a "$LOG" "$TMP/$name.out"
  local rc=${PIPESTATUS[0]}
  local wall; wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')
  log "exit status $rc; wall $wall s"
  local status
  if (( rc == 124 || rc == 137 )); then status="TIMEOUT after $wall s (cap $cap s)"
  elif (( rc != 0 )); then status="FAILED (exit $rc, $wall s)"
  elif ! grep -q "^RESULT $name" "$TMP/$name.out"; then status="FAILED (exit 0 but no figures, $wall s)"
  else status="ok, $wall s"; fi
  [[ $status == ok* ]] || FAILED=1
  SUMMARY+=("part $name: $status")
}

header() {  # the machine and versions; RESULT header when torch imports
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- distill_l2s benchmarks 2>/dev/null || echo ' (with local changes, or no git)')"
  echo "machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
  if command -v nvidia-smi >/dev/null; then
    echo "nvidia-smi: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | paste -sd ';')"
  else echo "nvidia-smi: not found"; fi
  "$PYTHON" - "$DEVICE" "$TINY" <<'EOF'
import sys, platform
import torch, transformers
dev, tiny = sys.argv[1], sys.argv[2] == "1"
cuda = torch.cuda.is_available()
name = torch.cuda.get_device_name(0) if cuda else "none"
cap = ".".join(map(str, torch.cuda.get_device_capability(0))) if cuda else "-"
print(f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}), transformers {transformers.__version__}")
print(f"RESULT header: device {dev}; CUDA available {cuda}, {torch.cuda.device_count()} GPU(s); torch.cuda device 0: {name}, capability {cap}")
if dev.startswith("cuda") and not cuda: sys.exit("no CUDA device: the GPU figures need one (bash benchmarks/gpu.sh --tiny checks the script on the CPU)")
EOF
}

paper_results() {  # paper_results PART JSON: the figures of bench_paper_step.py's JSON, one RESULT line per dtype and mode
  "$PYTHON" - "$1" "$2" <<'EOF'
import json, sys
part, out = sys.argv[1], json.load(open(sys.argv[2]))
print(f"RESULT {part}: {out['student']}, batch {out['batch']} x {out['clip_seconds'][0]}-{out['clip_seconds'][1]} s, "
      f"on {out['gpu'] or out['device']}, medians of {out['steps']} steps after {out['warmup']}")
for dtype, res in out["results"].items():
    for mode, r in res.items():
        peak = "n/a (CPU)" if r["peak_mib"] is None else f"{r['peak_mib']:.0f} MiB (resident {r['resident_mib']:.0f})"
        line = f"RESULT {part} {dtype} {mode}: step {r['step_s']:.4f} s (fwd+bwd {r['fwd_bwd_s']:.4f}, optimizer {r['optimizer_s']:.4f})"
        if "time_vs_plain" in r:
            g = r["goals_met"]
            line += f", {r['time_vs_plain']:.3f}x plain (goal <= 1.03x {'met' if g['time'] else 'not met'})"
        line += f"; peak {peak}"
        if r.get("memory_vs_plain"):
            line += f", {100 * (r['memory_vs_plain'] - 1):+.2f}% plain (goal <= +2% {'met' if r['goals_met']['memory'] else 'not met'})"
        hr = r["host_reads"]
        if "student" in hr: line += f"; host reads student/bridge/rest {hr['student']}/{hr['bridge']}/{hr['elsewhere']}"
        if "cuda_syncs" in hr: line += f", CUDA syncs {hr['cuda_syncs']['all']} (bridge {hr['cuda_syncs']['bridge']})"
        if "compile_s" in r: line += f"; compile {r['compile_s']:.1f} s"
        print(line)
EOF
}

paper() {  # paper PART ARGS...: bench_paper_step.py with a JSON, then its RESULT lines
  local name=$1; shift
  "$PYTHON" benchmarks/bench_paper_step.py "$@" --json "$TMP/$name.json" || return
  paper_results "$name" "$TMP/$name.json"
}

bridge() {  # bench_bridge.py, then one RESULT line per mode from its table
  "$PYTHON" benchmarks/bench_bridge.py "$@" | tee "$TMP/bridge.txt"
  local rc=${PIPESTATUS[0]}
  (( rc == 0 )) || return "$rc"
  awk -F'|' '$2 ~ /^ (old|read|sync-free|compiled) $/ {for (i = 2; i <= 8; i++) gsub(/^ +| +$/, "", $i)
      printf "RESULT bridge %s: median %s ms per batch, total after batch 1 %s s, first call %s s (wall %s s); host reads %s; graphs %s\n", $2, $4, $5, $6, $7, $3, $8}' "$TMP/bridge.txt"
  grep -E '^(graphs compiled after|compiled against)' "$TMP/bridge.txt" | sed 's/^/RESULT bridge: /'
}

export -f header paper paper_results bridge
export PYTHON TMP DEVICE TINY

if [ "$TINY" = 1 ]; then
  log "# GPU figures: TINY self-test on $DEVICE (tiny sizes; the figures mean nothing)$([ -n "${TORCH_COMPILE_DISABLE:-}" ] && echo '; TORCH_COMPILE_DISABLE=1: the compiled modes run eagerly')"
  BRIDGE_ARGS=(--device "$DEVICE" --epochs 1 --d-student 64 --d-teacher 48)
  PAPER_ARGS=(--tiny --device "$DEVICE" --steps 1 --warmup 1 --batches 1 --batch 2 --min-s 0.5 --max-s 0.8 --teacher-width 48)
  if [ "$DEVICE" = cpu ]; then BRIDGE_ARGS+=(--cpu-time); PAPER_ARGS+=(--threads 1); fi
else
  log "# GPU figures (bash benchmarks/gpu.sh), budget ${TOTAL_S} s"
  BRIDGE_ARGS=(--device "$DEVICE")
  PAPER_ARGS=(--device "$DEVICE")
fi

part header 30 header
if grep -q '^no CUDA device' "$LOG"; then
  log ""; log "## summary"; for s in "${SUMMARY[@]}"; do log "$s"; done
  exit 2
fi
part bridge 100 bridge "${BRIDGE_ARGS[@]}" --corpus "$CORPUS" --modes read,sync-free,compiled
part paper-fp16 140 paper paper-fp16 "${PAPER_ARGS[@]}" --modes plain,distill,distill-compiled --dtypes fp16
part paper-bf16 130 paper paper-bf16 "${PAPER_ARGS[@]}" --modes plain,distill,distill-compiled --dtypes bf16
part whisper 60 paper whisper "${PAPER_ARGS[@]}" --student whisper-small --modes plain,distill --dtypes fp16,bf16

log ""; log "## summary"
log "total wall $(( $(date +%s) - START )) s (budget ${TOTAL_S} s)"
for s in "${SUMMARY[@]}"; do log "$s"; done
exit "$FAILED"
