#!/usr/bin/env bash
# Cold start side by side: RepeatPrevious Easy, seed 0, the defaults, each run compiling into an
# empty cache, alternating the committed train.py ("before", from git HEAD~N given as $1) and the
# working tree's ("after"). Run alone on the machine, from the repository root.
#   bash benchmarks/2026-12-04-cpu-cold-start/ab.sh <before-commit> [rounds]
set -u
BEFORE=$1; ROUNDS=${2:-2}; OUT=benchmarks/2026-12-04-cpu-cold-start
cp rmuzero/agent/train.py /tmp/train_after.py
for round in $(seq "$ROUNDS"); do
  for v in before after; do
    if [ $v = before ]; then git show "$BEFORE":rmuzero/agent/train.py > rmuzero/agent/train.py; else cp /tmp/train_after.py rmuzero/agent/train.py; fi
    rm -rf /tmp/ab_cache /tmp/ab_runs
    RMUZERO_COMPILATION_CACHE=/tmp/ab_cache python3 scripts/bench_learning.py --networks ffm --seeds 0 \
      --set total_env_steps=40000 --runs /tmp/ab_runs --out "$OUT/easy_cold_${v}_round$round.json" 2>&1 \
      | grep -E "^ffm" | sed "s/^/$v round $round: /"
  done
done
cp /tmp/train_after.py rmuzero/agent/train.py
