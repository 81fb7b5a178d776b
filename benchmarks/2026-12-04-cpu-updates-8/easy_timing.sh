#!/usr/bin/env bash
# Easy, side by side: 32 against 8 updates per iteration, each cold (fresh cache) then warm.
# Ran on 2026-12-04 on the 2-core x86-64 CPU, nothing else running; the 8-update runs then used the
# defaults, which have 8 since (written out here). Outputs: the four JSON files beside this script.
set -x
cd $(git rev-parse --show-toplevel); : "${RUNS:=runs}"
B=benchmarks/2026-12-04-cpu-updates-8
rm -rf $RUNS/cache32 $RUNS/cache8
RMUZERO_COMPILATION_CACHE=$RUNS/cache32 python3 scripts/bench_learning.py --networks ffm --seeds 0 --set total_env_steps=16000 --set system.updates_per_iteration=32 --runs $RUNS/et32c --out $B/easy_32_cold_seed_0.json
RMUZERO_COMPILATION_CACHE=$RUNS/cache32 python3 scripts/bench_learning.py --networks ffm --seeds 0 --set total_env_steps=16000 --set system.updates_per_iteration=32 --runs $RUNS/et32w --out $B/easy_32_warm_seed_0.json
RMUZERO_COMPILATION_CACHE=$RUNS/cache8 python3 scripts/bench_learning.py --networks ffm --seeds 0 --set total_env_steps=40000 --set system.updates_per_iteration=8 --runs $RUNS/et8c --out $B/easy_8_cold_seed_0.json
RMUZERO_COMPILATION_CACHE=$RUNS/cache8 python3 scripts/bench_learning.py --networks ffm --seeds 0 1 2 --set total_env_steps=40000 --set system.updates_per_iteration=8 --runs $RUNS/et8w --out $B/easy_8_warm_seeds_0_1_2.json
