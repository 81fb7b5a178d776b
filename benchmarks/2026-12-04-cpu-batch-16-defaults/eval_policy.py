"""Eval policy vs acting policy on one checkpoint: argmax(action_weights) against the search's own action."""
import sys, json
sys.path.insert(0, "/work/main/scripts")
import jax, numpy as np
from evaluate import load_checkpoint
import rmuzero.agent.evaluation as ev
from rmuzero.agent.train import evaluation_summary
path = sys.argv[1]
agent, params, step_dir = load_checkpoint(path, eval_envs=32)
original = ev.select_action
res = {}
for name in ("argmax_weights", "search_action"):
    if name == "search_action":
        ev.select_action = lambda key, out, temperature: out.action.astype(jax.numpy.int32)
    agent2, params2, _ = load_checkpoint(path, eval_envs=32)
    f = jax.jit(agent2.evaluate)
    res[name] = [round(evaluation_summary(*jax.tree.map(np.asarray, f(params2, jax.random.PRNGKey(s))))["eval_return"], 3) for s in range(3)]
print(step_dir, json.dumps(res))
