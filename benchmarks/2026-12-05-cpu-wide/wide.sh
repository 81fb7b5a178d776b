# Run from the repository root (with the project installed); 2026-12-05, one after the other.
W="--set system.num_envs=128 --set system.batch_size=128 --set total_env_steps=61440 --set eval_every=4096"
python3 scripts/bench_learning.py --networks ffm --seeds 0 $W --set system.learning_rate=0.002 --set system.target_update_period=6 --runs runs/wide/lr2e-3 --out runs/wide/lr2e-3.json > runs/wide/lr2e-3.log 2>&1
python3 scripts/bench_learning.py --networks ffm --seeds 0 $W --runs runs/wide/lr1e-3 --out runs/wide/lr1e-3.json > runs/wide/lr1e-3.log 2>&1
python3 scripts/bench_learning.py --networks ffm --seeds 0 $W --set system.learning_rate=0.004 --set system.target_update_period=6 --runs runs/wide/lr4e-3 --out runs/wide/lr4e-3.json > runs/wide/lr4e-3.log 2>&1
