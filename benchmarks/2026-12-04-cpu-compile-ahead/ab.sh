#!/usr/bin/env bash
# The README's training command, timed from process start to exit (imports, compilation, the final
# evaluation and checkpoint included), side by side for two commits checked out in worktrees under
# /tmp: RepeatPrevious Easy, seed 0, FFM with a zero frequency (set explicitly, so both commits train
# the same agent), stopped at STEPS env steps (35,072: where seed 0 first evaluates >= 0.95; the
# final line's eval_return says whether it did). Cold: into an empty compilation cache; warm: the
# same command again from that cache. Run alone on the machine, from the repository root:
#   bash benchmarks/2026-12-04-cpu-compile-ahead/ab.sh <before-commit> <after-commit> [rounds] [steps]
# (OUT=<folder> writes ab.txt there instead)
set -u
BEFORE=$1; AFTER=$2; ROUNDS=${3:-2}; STEPS=${4:-35072}; OUT=${OUT:-$PWD/benchmarks/2026-12-04-cpu-compile-ahead}
for v in before after; do
  commit=$BEFORE; [ $v = after ] && commit=$AFTER
  rm -rf /tmp/ab_$v; git worktree add -f --detach /tmp/ab_$v "$commit" > /dev/null 2>&1
done
for round in $(seq "$ROUNDS"); do
  for v in before after; do
    rm -rf /tmp/ab_cache_$v
    for start in cold warm; do
      rm -rf /tmp/ab_run
      begin=$(date +%s.%N)
      line=$(cd /tmp/ab_$v && PYTHONPATH=/tmp/ab_$v python3 scripts/train.py total_env_steps=$STEPS \
        "network.memory_kwargs={zero_frequency:true}" progress=false compilation_cache=/tmp/ab_cache_$v \
        hydra.run.dir=/tmp/ab_run 2>/dev/null | tail -n 1)
      seconds=$(echo "$(date +%s.%N) - $begin" | bc)
      eval_return=$(echo "$line" | python3 -c "import json, sys; print(round(json.load(sys.stdin)['eval_return'], 3))")
      echo "$v $start round $round: ${seconds%??????} s, eval_return $eval_return at $STEPS" | tee -a "$OUT/ab.txt"
    done
  done
done
git worktree remove --force /tmp/ab_before; git worktree remove --force /tmp/ab_after
