#!/usr/bin/env bash
# Learning runs cut at a wall-clock limit, for a lent accelerator (minutes, not hours):
# each argument TASK:DIFFICULTY:NETWORK:SECONDS trains seeds 0-2 vmapped in one process
# (`train.py num_seeds=3`, the defaults) until SECONDS, then the next. metrics.jsonl is
# flushed line by line, so a cut run keeps its curve. Everything lands in $OUT as one
# archive (runs.tar.gz: <task>-<difficulty>-<network>/seed_<s>/metrics.jsonl) and a log.
#   bash scripts/device_runs.sh repeat_previous:medium:ffm:380 autoencode:easy:ffm:170
# OVERRIDES="system.learning_rate=3.5e-4 ..." adds train.py overrides to every run.
# On a machine without the project's dependencies, install the wheels first (README).
set -u
OUT=${OUT:-device_out}; mkdir -p "$OUT"
RUNS=/tmp/device_runs; rm -rf "$RUNS"; mkdir -p "$RUNS"
export RMUZERO_COMPILATION_CACHE=off
{ nvidia-smi -L || true; python3 -c "import jax; print(jax.__version__, jax.devices())"; } | tee "$OUT/device.txt"
for spec in "$@"; do
  IFS=: read -r task difficulty network seconds <<<"$spec"
  name=$task-$difficulty-$network
  echo "== $name, seeds 0-2, cut at $seconds s ${OVERRIDES:-}" | tee -a "$OUT/log.txt"
  timeout "$seconds" python3 -u scripts/train.py env=popgym/$task env.difficulty=$difficulty network=$network \
    num_seeds=3 total_env_steps=1000000 eval_every=20000 checkpoint_every=100000000 iterations_per_call=4 \
    progress=false ${OVERRIDES:-} hydra.run.dir=$RUNS/$name 2>&1 | grep -v -i warn | tail -3 | tee -a "$OUT/log.txt"
  for s in 0 1 2; do
    python3 - "$RUNS/$name/seed_$s/metrics.jsonl" <<'PY' | tee -a "$OUT/log.txt"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
evals = [(l["env_steps"], round(l["eval_return"], 3)) for l in lines if "eval_return" in l]
rate = [l["env_steps_per_second"] for l in lines if l.get("updates")]
print(sys.argv[1].split("/")[-2], "evals:", evals, "median env steps/s:", sorted(rate)[len(rate) // 2] if rate else None)
PY
  done
done
tar -czf "$OUT/runs.tar.gz" -C "$RUNS" --exclude=checkpoints .
