"""One checkpoint, two evaluation policies: the library's greedy choice (argmax of the search's
improved policy, ``action_weights``) against the action the search itself selects (Gumbel
MuZero's sequential-halving winner, what the agent plays while training). 32 episodes per
evaluation, evaluation keys 0, 1, 2; the same search and memory resets otherwise.

    RMUZERO_COMPILATION_CACHE=off python3 benchmarks/2026-12-04-cpu-batch-16-defaults/eval_policy.py <checkpoint dir>

Prints the checkpoint and one JSON object: the three returns under each policy (eval_policy.txt).
"""

import json
import sys

import jax
import numpy as np

import rmuzero.agent.evaluation as evaluation
from rmuzero.agent.agent import make_agent
from rmuzero.agent.train import evaluation_summary
from rmuzero.cli import load_checkpoint


def search_action(key, out, temperature):
    """The search's own selection, ignoring the greedy choice's key and temperature."""
    return out.action.astype(jax.numpy.int32)


def returns(agent, params) -> list[float]:
    """eval_return of ``agent.evaluate`` (traced here) under evaluation keys 0, 1, 2."""
    evaluate = jax.jit(agent.evaluate)
    return [round(evaluation_summary(*jax.tree.map(np.asarray, evaluate(params, jax.random.PRNGKey(seed))))["eval_return"], 3)
            for seed in range(3)]


if __name__ == "__main__":
    path = sys.argv[1]
    agent, params, _ = load_checkpoint(path, eval_envs=32)
    result = {"argmax_weights": returns(agent, params)}
    evaluation.select_action = search_action  # make_evaluate's loop looks the name up when it is traced,
    result["search_action"] = returns(make_agent(agent.config, eval_envs=32), params)  # so a new agent: a new trace
    print(path, json.dumps(result))
