#!/usr/bin/env bash
# Every accelerator measurement in one call (a lent GPU is minutes, not hours), each step under
# its own timeout, in the order given; results land in $OUT (default ./device_out).
#   bash scripts/bench_device.sh                    # easy ahead grid scan wide: about 8 minutes on one H200
#   bash scripts/bench_device.sh hard grid encoder  # RepeatPrevious Hard, the grid, the memory scans
#   bash scripts/bench_device.sh 300                # the same three, Hard cut at 300 s (the old form)
# Steps:
#   easy     RepeatPrevious Easy, FFM, seed 0, the defaults, evaluations every 2k env steps: seconds to
#            eval >= 0.95, once compiling into an empty persistent cache ("cold") and once from it ("warm")
#   ahead    the same with system.sample_ahead=16 (a short run fills its cache, then the timed run)
#   grid     the throughput grid on Easy (bench_throughput.py): 16 / 64 / 256 envs with 16 / 64 / 256
#            sequences per update, medians of 3, compilation apart
#   scan     FFM's scan at T=1024 (B=32, width 128): the library's combine against a factorised one
#            (benchmarks/2026-12-04-ffm-scan/ffm_combine.py), then FFM / LRU / S5 (bench_encoder.py)
#   encoder  GRU / FFM / LRU / S5 at T=1024 (bench_encoder.py)
#   wide     what a 16x wider run learns per env step: Easy with 256 envs and 256 sequences per update
#   hard     RepeatPrevious Hard, FFM, the defaults, seeds 0-2 vmapped, cut at $HARD_SECONDS (default 300;
#            metrics.jsonl is flushed line by line, so a cut run keeps its curve)
# QUICK=1 shrinks every budget (a smoke test of the script on a CPU).
# On a machine without the project's dependencies, install the wheels first (README).
set -u
OUT=${OUT:-device_out}; mkdir -p "$OUT"
QUICK=${QUICK:-0}
HARD_SECONDS=${HARD_SECONDS:-300}
if [ $# -eq 1 ] && [[ $1 =~ ^[0-9]+$ ]]; then HARD_SECONDS=$1; set -- hard grid encoder; fi
[ $# -eq 0 ] && set -- easy ahead grid scan wide
for step in "$@"; do
  case $step in easy|ahead|grid|scan|encoder|wide|hard) ;;
  *) echo "error: unknown step '$step'; valid: easy, ahead, grid, scan, encoder, wide, hard, or a number (Hard's seconds)" >&2
     exit 2 ;;
  esac
done
if [ "$QUICK" = 1 ]; then EASY=2048; PRIME=1024; WIDE=8192; LENGTH=64; HARD=4096
else EASY=40000; PRIME=2048; WIDE=300000; LENGTH=1024; HARD=1000000; fi
(nvidia-smi -L || true) | tee "$OUT/device.txt"
python3 -c "import jax; print(jax.__version__, jax.devices())" | tee -a "$OUT/device.txt"
git rev-parse HEAD 2>/dev/null | tee -a "$OUT/device.txt"
quiet() { grep -v -i -E "warn|^\s*$" | tail -"$1"; }
stamp() { echo "## $(date +%T) $*" | tee -a "$OUT/log.txt"; }

# learning NAME SECONDS OVERRIDES...: bench_learning.py, FFM seed 0, its metrics.jsonl kept as $OUT/NAME.jsonl
learning() {
  local name=$1 seconds=$2; shift 2
  rm -rf "/tmp/bench_$name"
  timeout "$seconds" python3 -u scripts/bench_learning.py networks=ffm seeds=0 runs="/tmp/bench_$name" \
    out="$OUT/$name.json" "$@" 2>&1 | quiet 2 | tee -a "$OUT/log.txt"
  cp "/tmp/bench_$name/ffm_seed0/metrics.jsonl" "$OUT/$name.jsonl" 2>/dev/null
}

for step in "$@"; do
  case $step in
  easy)
    stamp "easy: Easy, defaults, cold then warm"
    export RMUZERO_COMPILATION_CACHE=/tmp/bench_cache_1; rm -rf "$RMUZERO_COMPILATION_CACHE"
    for run in cold warm; do learning "easy_ahead1_$run" 150 total_env_steps=$EASY eval_every=2000; done ;;
  ahead)
    stamp "ahead: Easy, sample_ahead=16, cache filled, then timed"
    export RMUZERO_COMPILATION_CACHE=/tmp/bench_cache_ahead; rm -rf "$RMUZERO_COMPILATION_CACHE"
    learning easy_ahead16_prime 100 total_env_steps=$PRIME eval_every=2000 system.sample_ahead=16 >/dev/null
    learning easy_ahead16_warm 100 total_env_steps=$EASY eval_every=2000 system.sample_ahead=16 ;;
  grid)
    stamp "grid: throughput on Easy"
    RMUZERO_COMPILATION_CACHE=off timeout 200 python3 -u scripts/bench_throughput.py num_envs=[16,64,256] \
      batch_sizes=[16,64,256] pairs=true repeats=3 out="$OUT/throughput.json" 2>&1 | quiet 8 | tee -a "$OUT/log.txt" ;;
  scan)
    stamp "scan: FFM combine, then FFM / LRU / S5"
    RMUZERO_COMPILATION_CACHE=off timeout 60 python3 -u benchmarks/2026-12-04-ffm-scan/ffm_combine.py \
      --lengths $LENGTH --strategies associative --out "$OUT/ffm_combine.json" 2>&1 | quiet 5 | tee -a "$OUT/log.txt"
    RMUZERO_COMPILATION_CACHE=off timeout 60 python3 -u scripts/bench_encoder.py models=[ffm,lru,s5] \
      lengths=[$LENGTH] strategies=[associative] repeats=7 out="$OUT/encoder.json" 2>&1 | quiet 8 | tee -a "$OUT/log.txt" ;;
  encoder)
    stamp "encoder: GRU / FFM / LRU / S5"
    RMUZERO_COMPILATION_CACHE=off timeout 60 python3 -u scripts/bench_encoder.py models=[gru,ffm,lru,s5] \
      lengths=[$LENGTH] strategies=[associative] repeats=7 out="$OUT/encoder.json" 2>&1 | quiet 12 | tee -a "$OUT/log.txt" ;;
  wide)
    stamp "wide: Easy 16x wider"
    export RMUZERO_COMPILATION_CACHE=/tmp/bench_cache_wide
    learning easy_wide 100 total_env_steps=$WIDE eval_every=16384 system.num_envs=256 system.batch_size=256 ;;
  hard)
    stamp "hard: Hard, seeds 0-2 vmapped, cut at $HARD_SECONDS s"
    rm -rf /tmp/bench_device_hard
    RMUZERO_COMPILATION_CACHE=off timeout "$HARD_SECONDS" python3 -u scripts/train.py env.difficulty=hard num_seeds=3 \
      total_env_steps=$HARD eval_every=20000 checkpoint_every=100000000 iterations_per_call=4 progress=false \
      hydra.run.dir=/tmp/bench_device_hard 2>&1 | quiet 5 | tee -a "$OUT/log.txt"
    for s in 0 1 2; do cp /tmp/bench_device_hard/seed_$s/metrics.jsonl "$OUT/hard_seed$s.jsonl" 2>/dev/null; done ;;
  esac
done
stamp "done"
