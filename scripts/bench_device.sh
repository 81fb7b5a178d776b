#!/usr/bin/env bash
# Every accelerator measurement of one session, in one call (the device tool lends a GPU
# for minutes): RepeatPrevious Hard with 3 seeds, the throughput grid, the
# encoder scan timings. Results land in $OUT (default ./device_out).
#   bash scripts/bench_device.sh [hard_seconds]
# On a machine without the project's dependencies, install the wheels first (README).
set -u
OUT=${OUT:-device_out}; mkdir -p "$OUT"
HARD_SECONDS=${1:-300}
export RMUZERO_COMPILATION_CACHE=off
(nvidia-smi -L || true) | tee "$OUT/device.txt"
python3 -c "import jax; print(jax.__version__, jax.devices())" | tee -a "$OUT/device.txt"

# 1. RepeatPrevious Hard, FFM, the defaults, seeds 0-2 vmapped in one process, until
#    HARD_SECONDS (metrics.jsonl is flushed line by line, so a cut run keeps its curve).
rm -rf /tmp/bench_device_hard
timeout "$HARD_SECONDS" python3 -u scripts/train.py env.difficulty=hard num_seeds=3 total_env_steps=1000000 \
  eval_every=20000 checkpoint_every=100000000 iterations_per_call=4 progress=false \
  hydra.run.dir=/tmp/bench_device_hard 2>&1 | grep -v -i warn | tail -5
for s in 0 1 2; do cp /tmp/bench_device_hard/seed_$s/metrics.jsonl "$OUT/hard_seed$s.jsonl" 2>/dev/null; done

# 2. Throughput grid on Easy: the default width (16 envs, 16 sequences per update), 4x and 16x.
timeout 170 python3 -u scripts/bench_throughput.py --num-envs 16 64 256 --batch-sizes 16 64 256 \
  --pairs --repeats 3 --out "$OUT/throughput.json" 2>&1 | grep -v Warning

# 3. Memory scans at T=1024 (B=32, width 128): FFM against LRU and S5.
timeout 60 python3 -u scripts/bench_encoder.py --models gru ffm lru s5 --lengths 1024 \
  --strategies associative --repeats 7 --out "$OUT/encoder.json" 2>&1 | grep -v Warning
