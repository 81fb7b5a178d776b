"""One checkpoint's greedy evaluation under other search settings, at evaluation only (the weights
as trained with 16 simulations): 4 and 64 simulations, no Gumbel noise. Evaluation keys 0, 1, 2,
32 episodes each.

    PYTHONPATH=. RMUZERO_COMPILATION_CACHE=off python3 benchmarks/2026-12-04-cpu-batch-16-defaults/search_settings.py <checkpoint dir>
"""
import dataclasses
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import jax, numpy as np
from evaluate import load_checkpoint
from rmuzero.agent.agent import make_agent
from rmuzero.agent.train import evaluation_summary
path = sys.argv[1]
agent, params, _ = load_checkpoint(path, eval_envs=32)
for label, changes in [("sims16 (trained)", {}), ("sims4", {"num_simulations": 4}), ("sims64", {"num_simulations": 64}), ("gumbel0", {"gumbel_scale": 0.0})]:
    cfg = dataclasses.replace(agent.config, search=dataclasses.replace(agent.config.search, **changes))
    a = make_agent(cfg, eval_envs=32)
    f = jax.jit(a.evaluate)
    r = [round(evaluation_summary(*jax.tree.map(np.asarray, f(params, jax.random.PRNGKey(s))))["eval_return"], 3) for s in range(3)]
    print(label, r, flush=True)
