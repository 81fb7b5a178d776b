"""One checkpoint's greedy evaluation under other search settings, at evaluation only (the weights
as trained with 16 simulations): 4 and 64 simulations, no Gumbel noise. Evaluation keys 0, 1, 2,
32 episodes each (eval_policy.returns).

    PYTHONPATH=. RMUZERO_COMPILATION_CACHE=off python3 benchmarks/2026-12-04-cpu-batch-16-defaults/search_settings.py <checkpoint dir>
"""

import dataclasses
import sys

from eval_policy import load_checkpoint, returns

from rmuzero.agent.agent import make_agent

SETTINGS = [("sims16 (trained)", {}), ("sims4", {"num_simulations": 4}), ("sims64", {"num_simulations": 64}),
            ("gumbel0", {"gumbel_scale": 0.0})]

if __name__ == "__main__":
    agent, params, _ = load_checkpoint(sys.argv[1], eval_envs=32)
    for label, changes in SETTINGS:
        config = dataclasses.replace(agent.config, search=dataclasses.replace(agent.config.search, **changes))
        print(label, returns(make_agent(config, eval_envs=32), params), flush=True)
