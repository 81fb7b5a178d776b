#!/usr/bin/env bash
# Issue 9's accelerator measurements in one call (a lent GPU is minutes, not hours); results
# land in $OUT (default ./device_out). About 6 minutes on one H100.
#   bash scripts/bench_device_throughput.sh
#  1. RepeatPrevious Easy, FFM, seed 0, the defaults, evaluations every 1k env steps: seconds to
#     eval >= 0.95. Each configuration runs twice with JAX's persistent compilation cache in a
#     fresh directory, so the second run's seconds are training after compilation (the target:
#     15 s on one H200-class GPU).
#  2. The same with system.sample_ahead=8 (every update's batch and reanalysis prepared in one
#     call per iteration: the default 8 updates per iteration).
#  3. Training iteration on RepeatPrevious Hard (bench_throughput.py), sample_ahead 1 / 4 / 8.
# On a machine without the project's dependencies, install the wheels first (README).
set -u
OUT=${OUT:-device_out}; mkdir -p "$OUT"
(nvidia-smi -L || true) | tee "$OUT/device.txt"
python3 -c "import jax; print(jax.__version__, jax.devices())" | tee -a "$OUT/device.txt"

for ahead in 1 8; do
  export RMUZERO_COMPILATION_CACHE=/tmp/bench_cache_$ahead; rm -rf "$RMUZERO_COMPILATION_CACHE"
  for run in cold warm; do
    rm -rf /tmp/bench_easy_${ahead}_$run
    timeout 150 python3 -u scripts/bench_learning.py --networks ffm --seeds 0 --set total_env_steps=40000 \
      --set eval_every=1000 --set system.sample_ahead=$ahead --runs /tmp/bench_easy_${ahead}_$run \
      --out "$OUT/easy_ahead${ahead}_$run.json" 2>&1 | grep -v -i warn | tail -2
  done
done

export RMUZERO_COMPILATION_CACHE=off
for ahead in 1 4 8; do
  timeout 120 python3 -u scripts/bench_throughput.py --difficulty hard --repeats 3 --set system.sample_ahead=$ahead \
    --out "$OUT/throughput_hard_ahead$ahead.json" 2>&1 | grep -v -i warn | tail -1
done
