"""DelayedMatch (tests/agent/test_learns_delayed_match.py) with prediction_gradient_scale set:
eval every 60 iterations to 240, seeds 0 and 1. From the repository root (the test module, which
holds the task and its config, found through PYTHONPATH):
``PYTHONPATH=tests/agent python3 benchmarks/2026-12-04-cpu-delayed-match/delayed_match_gradient_scale.py 0.1``."""
import copy, sys, time
import jax, jax.numpy as jnp, numpy as np
import test_learns_delayed_match as t
from rmuzero.agent.agent import make_agent
from rmuzero.agent.config import config_from_dict
for pgs in [float(x) for x in sys.argv[1:]]:
    cfg = copy.deepcopy(t.CONFIG); cfg["system"]["prediction_gradient_scale"] = pgs
    for seed in [0, 1]:
        t0 = time.time()
        config = config_from_dict(cfg)
        agent = make_agent(config, environment=t.DelayedMatch())
        state = agent.init(jax.random.PRNGKey(seed))
        collect, iteration = jax.jit(agent.collect), jax.jit(agent.train_iteration)
        evaluate = jax.jit(agent.evaluate)
        while not bool(agent.replay.can_sample(state.replay)):
            state, _ = collect(state)
        curve = []
        for i in range(240):
            state, metrics = iteration(state)
            if (i + 1) % 60 == 0:
                curve.append(round(float(jnp.mean(evaluate(state.params, jax.random.PRNGKey(1)).returns)), 2))
        print(f"pgs {pgs} seed {seed}: {curve} ({time.time()-t0:.0f} s)", flush=True)
