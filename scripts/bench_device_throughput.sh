#!/usr/bin/env bash
# Issue 9's accelerator measurements in one call (a lent GPU is minutes, not hours), most
# important first, each step under its own timeout; results land in $OUT (default ./device_out).
# About 8 minutes on one H200.   bash scripts/bench_device_throughput.sh
#  1. RepeatPrevious Easy, FFM, seed 0, the defaults, evaluations every 2k env steps: seconds to
#     eval >= 0.95, once compiling into an empty persistent cache ("cold") and once from it
#     ("warm": the seconds are training after compilation; the target is 15 s on an H200).
#  2. The same with system.sample_ahead=16 (an iteration's 16 batches and their reanalysis in one
#     call): a short run fills its cache, then the timed run.
#  3. The throughput grid on Easy (bench_throughput.py): 16 / 64 / 256 envs with 16 / 64 / 256
#     sequences per update, medians of 3, compilation apart.
#  4. FFM's scan at T=1024 (B=32, width 128): the library's complex-exponential combine against a
#     factorised candidate (benchmarks/2026-12-04-ffm-scan/ffm_combine.py), then FFM / LRU / S5.
#  5. What a 16x wider run learns per env step: Easy with 256 envs and 256 sequences per update.
# QUICK=1 shrinks every budget (a smoke test of the script on a CPU).
# On a machine without the project's dependencies, install the wheels first (README).
set -u
OUT=${OUT:-device_out}; mkdir -p "$OUT"
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then EASY=2048; PRIME=1024; WIDE=8192; LENGTH=64; else EASY=40000; PRIME=2048; WIDE=300000; LENGTH=1024; fi
(nvidia-smi -L || true) | tee "$OUT/device.txt"
python3 -c "import jax; print(jax.__version__, jax.devices())" | tee -a "$OUT/device.txt"
quiet() { grep -v -i -E "warn|^\s*$" | tail -"$1"; }
stamp() { echo "## $(date +%T) $*" | tee -a "$OUT/log.txt"; }

stamp "1. Easy, defaults, cold then warm"
export RMUZERO_COMPILATION_CACHE=/tmp/bench_cache_1; rm -rf "$RMUZERO_COMPILATION_CACHE"
for run in cold warm; do
  rm -rf /tmp/bench_easy_1_$run
  timeout 150 python3 -u scripts/bench_learning.py --networks ffm --seeds 0 --set total_env_steps=$EASY \
    --set eval_every=2000 --runs /tmp/bench_easy_1_$run --out "$OUT/easy_ahead1_$run.json" 2>&1 | quiet 2 | tee -a "$OUT/log.txt"
  cp /tmp/bench_easy_1_$run/ffm_seed0/metrics.jsonl "$OUT/easy_ahead1_$run.jsonl" 2>/dev/null
done

stamp "2. Easy, sample_ahead=16, cache filled, then timed"
export RMUZERO_COMPILATION_CACHE=/tmp/bench_cache_ahead; rm -rf "$RMUZERO_COMPILATION_CACHE" /tmp/bench_easy_ahead_*
timeout 100 python3 -u scripts/bench_learning.py --networks ffm --seeds 0 --set total_env_steps=$PRIME \
  --set eval_every=2000 --set system.sample_ahead=16 --runs /tmp/bench_easy_ahead_prime --out /tmp/prime.json 2>&1 | quiet 1
timeout 100 python3 -u scripts/bench_learning.py --networks ffm --seeds 0 --set total_env_steps=$EASY \
  --set eval_every=2000 --set system.sample_ahead=16 --runs /tmp/bench_easy_ahead_warm --out "$OUT/easy_ahead16_warm.json" 2>&1 | quiet 2 | tee -a "$OUT/log.txt"
cp /tmp/bench_easy_ahead_warm/ffm_seed0/metrics.jsonl "$OUT/easy_ahead16_warm.jsonl" 2>/dev/null

stamp "3. throughput grid"
export RMUZERO_COMPILATION_CACHE=off
timeout 200 python3 -u scripts/bench_throughput.py --num-envs 16 64 256 --batch-sizes 16 64 256 --pairs \
  --repeats 3 --out "$OUT/throughput.json" 2>&1 | quiet 8 | tee -a "$OUT/log.txt"

stamp "4. FFM combine, then FFM / LRU / S5"
timeout 60 python3 -u benchmarks/2026-12-04-ffm-scan/ffm_combine.py --lengths $LENGTH --strategies associative \
  --out "$OUT/ffm_combine.json" 2>&1 | quiet 5 | tee -a "$OUT/log.txt"
timeout 60 python3 -u scripts/bench_encoder.py --models ffm lru s5 --lengths $LENGTH --strategies associative \
  --repeats 7 --out "$OUT/encoder.json" 2>&1 | quiet 8 | tee -a "$OUT/log.txt"

stamp "5. Easy 16x wider"
export RMUZERO_COMPILATION_CACHE=/tmp/bench_cache_wide
timeout 100 python3 -u scripts/bench_learning.py --networks ffm --seeds 0 --set total_env_steps=$WIDE \
  --set eval_every=16384 --set system.num_envs=256 --set system.batch_size=256 --runs /tmp/bench_easy_wide \
  --out "$OUT/easy_wide.json" 2>&1 | quiet 2 | tee -a "$OUT/log.txt"
cp /tmp/bench_easy_wide/ffm_seed0/metrics.jsonl "$OUT/easy_wide.jsonl" 2>/dev/null
stamp "done"
