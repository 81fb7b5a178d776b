"""Which of three choices answers right, step by step, on one checkpoint: the search's own action
(it drives 32 environments from reset), the greedy choice (argmax of the improved policy) and the
policy head's prior (argmax of its logits); then, for every action, the model's reward r(s, a),
the value after it and their one-step Q. The right answer at a step is the action with the highest
reward, read by stepping a copy of the environments with each action (scored: steps where the
actions' rewards differ). 103 steps (one Medium episode; Hard's 155 are cut).

    RMUZERO_COMPILATION_CACHE=off python3 benchmarks/2026-12-04-cpu-batch-16-defaults/answers.py <checkpoint dir>
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

from rmuzero.agent.acting import invalid_actions
from rmuzero.cli import load_checkpoint
from rmuzero.envs import make_agent_env

ENVS, STEPS = 32, 103


def record(path: str) -> dict:
    """Per step [T, E, ...]: the three choices, the search's weights, the prior's logits, and per
    action the true reward, the model's reward and the value after the model's next latent."""
    agent, params, _ = load_checkpoint(path, eval_envs=ENVS)
    model, config = agent.model, agent.config
    env = make_agent_env(config.env.name, difficulty=config.env.difficulty, num_envs=ENVS)
    every = jnp.arange(env.num_actions)

    @jax.jit
    def step(env_state, timestep, carry, key):
        carry, latent = model.encode(params, carry, timestep.obs[None], timestep.start[None])
        out = model.search(params, key, latent[0], invalid_actions(timestep))
        each = lambda a: jnp.full((ENVS,), a, jnp.int32)  # noqa: E731
        reward = jax.vmap(lambda a: env.step(env_state, each(a))[1].reward)(every)  # [A, E]
        transition = jax.vmap(lambda a: model.dynamics(params, latent[0], each(a)))(every)
        next_value = jax.vmap(lambda z: model.predict(params, z).value)(transition.next_latent)  # [A, E]
        env_state, timestep = env.step(env_state, out.action.astype(jnp.int32))
        return env_state, timestep, carry, dict(
            search=out.action, weights=out.action_weights, logits=out.prior_logits,
            reward=reward.T, model_reward=transition.reward.T, next_value=next_value.T)

    env_state, timestep = env.reset(jax.random.PRNGKey(5))
    carry, key = model.network.initialize_carry(ENVS), jax.random.PRNGKey(7)
    steps = []
    for _ in range(STEPS):
        key, search_key = jax.random.split(key)
        env_state, timestep, carry, out = step(env_state, timestep, carry, search_key)
        steps.append(jax.tree.map(np.asarray, out))
    recorded = {k: np.stack([s[k] for s in steps]) for k in steps[0]}
    recorded["discount"] = config.system.discount
    return recorded


def report(r: dict) -> None:
    best = r["reward"].argmax(-1)
    m = r["reward"].max(-1) > r["reward"].min(-1)  # steps where the answer matters
    search, greedy, prior = r["search"], r["weights"].argmax(-1), r["logits"].argmax(-1)
    right = lambda choice: (choice == best)[m].mean().round(3)  # noqa: E731
    print("steps scored", m.sum(), "search right", right(search), "greedy right", right(greedy),
          "prior right", right(prior))
    d = m & (greedy != search)
    print("greedy != search:", d.sum(), "of which greedy == prior argmax", (greedy == prior)[d].mean().round(3),
          "search right there", (search == best)[d].mean().round(3))
    logits, weights = np.sort(r["logits"], -1), np.sort(r["weights"], -1)
    print("prior logit gap top1-top2 median", np.median((logits[..., -1] - logits[..., -2])[m]).round(2))
    print("weights top1-top2 median", np.median((weights[..., -1] - weights[..., -2])[m]).round(3),
          "frac of greedy-wrong steps where top weight < 0.5", (weights[..., -1] < 0.5)[m & (greedy != best)].mean().round(3))
    predicted, true, actions = r["model_reward"][m], r["reward"][m], r["reward"].shape[-1]
    on_best = predicted[np.arange(m.sum()), best[m]]
    print("reward model's argmax right", right(r["model_reward"].argmax(-1)),
          "| mean predicted reward, right action", on_best.mean().round(4),
          "other actions", ((predicted.sum(-1) - on_best) / (actions - 1)).mean().round(4),
          "| true reward right / wrong", true.max(-1).mean().round(4), true.min(-1).mean().round(4))
    q = r["model_reward"] + r["discount"] * r["next_value"]  # one-step Q: the model's reward plus the value after it
    spread = lambda x: np.median((x.max(-1) - x.min(-1))[m]).round(4)  # noqa: E731
    print("one-step Q's argmax right", right(q.argmax(-1)),
          "| spread (max - min over actions) of the next value, median", spread(r["next_value"]),
          "of the predicted reward", spread(r["model_reward"]))


if __name__ == "__main__":
    print(sys.argv[1])
    report(record(sys.argv[1]))
