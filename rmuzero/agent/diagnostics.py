"""Does the search improve on the prior? Every action tried from the same states.

Dimensions: T steps, E environments, A actions.

The agent plays E environments for T steps as it acts in training (the
search's action). At every step each of the A actions is also stepped from the
same environment state (environments are pure functions), which gives the
reward every action *would* have earned. Against it stand the model's view of
the same choice: the prior policy, the search's improved policy (the policy
target), the reward model ``r(s, a)`` and the one-step value the search uses,
``Q(s, a) = r(s, a) + gamma v(s'_a)``.

For tasks whose rewards are immediate (POPGym's RepeatPrevious, CountRecall,
Autoencode: the reward says whether this step's answer was right), the actions
with the highest immediate reward are the correct answers, so the report reads
as accuracies: how often the prior, the improved policy, the reward model and Q
put their top action on a correct answer. If the improved policy is *less*
accurate than the prior, the policy targets teach the network to get worse.
For tasks with delayed rewards the immediate reward is only part of the story.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from rmuzero.agent.acting import invalid_actions
from rmuzero.agent.model import Model, Params
from rmuzero.envs.wrappers import AgentEnv


class SearchDiagnosis(NamedTuple):
    """Per step ``[T, E, ...]`` of E environments."""

    true_reward: chex.Array  # [T, E, A] reward each action earns from this state (the environment's)
    valid: chex.Array  # [T, E, A] bool: the action may be taken
    prior: chex.Array  # [T, E, A] prior policy (softmax of the prediction's logits)
    improved: chex.Array  # [T, E, A] the search's improved policy (the policy target)
    model_reward: chex.Array  # [T, E, A] r(s, a) of the learned dynamics
    model_q: chex.Array  # [T, E, A] r(s, a) + gamma v(s'_a), the search's one-step value of a
    action: chex.Array  # [T, E] int32: the action taken (the search's)
    episode_step: chex.Array  # [T, E] int32: index of the step in its episode


def diagnose_search(
    model: Model, env: AgentEnv, params: Params, key: chex.PRNGKey, *, num_steps: int, discount: float
) -> SearchDiagnosis:
    """Plays ``env.num_envs`` environments ``num_steps`` steps with the search's actions.

    ``discount`` is the gamma of ``model_q`` (the run's ``system.discount``). Jit with
    ``model``, ``env``, ``num_steps`` and ``discount`` bound (``functools.partial``).
    """
    num_envs, num_actions = env.num_envs, env.num_actions
    reset_key, key = jax.random.split(key)
    env_state, step = env.reset(reset_key)
    carry = model.network.initialize_carry(num_envs)
    actions = jnp.arange(num_actions)

    def body(loop, step_key):
        env_state, step, carry = loop
        carry, latent = model.encode(params, carry, jax.tree.map(lambda x: x[None], step.obs), step.start[None])
        latent = latent[0]
        invalid = invalid_actions(step)
        out = model.search(params, step_key, latent, invalid)
        # Every action from the same state: the environment's reward and the model's.
        true_reward = jax.vmap(lambda a: env.step(env_state, jnp.full((num_envs,), a))[1].reward)(actions)
        transition = jax.vmap(lambda a: model.dynamics(params, latent, jnp.full((num_envs,), a)))(actions)
        next_value = jax.vmap(lambda next_latent: model.predict(params, next_latent).value)(transition.next_latent)
        valid = jnp.ones((num_envs, num_actions), bool) if invalid is None else ~invalid
        record = SearchDiagnosis(
            true_reward=true_reward.T,
            valid=valid,
            prior=jax.nn.softmax(out.prior_logits, axis=-1),
            improved=out.action_weights,
            model_reward=transition.reward.T,
            model_q=(transition.reward + discount * next_value).T,
            action=out.action,
            episode_step=env_state.length_so_far,
        )
        env_state, step = env.step(env_state, out.action)
        return (env_state, step, carry), record

    _, records = jax.lax.scan(body, (env_state, step, carry), jax.random.split(key, num_steps))
    return records


def summarise(diagnosis: SearchDiagnosis, phases: int = 3) -> dict:
    """Accuracies against the best immediate reward, over the steps where the actions' rewards differ.

    Keys: ``informative_steps`` (fraction of steps where some valid action earns more than
    another), and over those: ``prior_top``, ``improved_top``, ``reward_model_top``, ``q_top``
    (fraction whose highest-scoring valid action earns the highest reward, ties to the lowest
    index); ``prior_expected_reward`` / ``improved_expected_reward`` (mean of sum_a pi(a) r(a),
    in units of the reward's spread max_a r - min_a r, so 1 is always right and 0 always the
    worst answer); over all steps and valid actions: ``reward_model_error`` (mean |r_model - r|)
    and ``next_value_spread`` (mean over steps of max_a - min_a of gamma v(s'_a), the part of Q
    that the action changes through the next latent alone); ``next_value_reward_slope``
    (over the informative steps, the least-squares slope of gamma v(s'_a) on the model's
    r(s, a) across the valid actions of each state, both relative to their mean over those
    actions: 0 when the next latent's value ignores the reward of the action, -1 when it
    cancels it and Q is the same for every action); per action (lists of A): ``action_frequency``
    (fraction of steps on which the agent took it) and ``next_value_by_action`` (mean over the
    steps where it is valid of gamma v(s'_a) minus its mean over that step's valid actions). An
    untaken action whose next latent the search values below the taken ones can stay untaken:
    the dynamics never learn where it leads. ``by_episode_step``: the four accuracies again over
    the informative steps in each of ``phases`` equal ranges of the episode step (``first`` and
    ``last`` inclusive, ``steps`` how many): where the memory must reach back the same distance,
    a fall over the episode means what was stored earlier blurs what is recalled later.
    """
    if phases < 1:
        raise ValueError(f"phases must be at least 1 (ranges of the episode step); received {phases}")
    d = jax.tree.map(np.asarray, diagnosis)
    valid = d.valid
    true = np.where(valid, d.true_reward, -np.inf)
    best, worst = true.max(-1), np.where(valid, d.true_reward, np.inf).min(-1)
    spread = best - worst
    informative = spread > 1e-9
    if not informative.any():
        raise ValueError("no step where the actions' immediate rewards differ: nothing to compare")

    def top(scores, where=informative):
        chosen = np.argmax(np.where(valid, scores, -np.inf), axis=-1)
        earned = np.take_along_axis(d.true_reward, chosen[..., None], axis=-1)[..., 0]
        return float(np.mean((earned >= best - 1e-9)[where]))

    step = d.episode_step[informative]
    edges = np.linspace(step.min(), step.max() + 1, phases + 1)
    by_episode_step = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        first, last = int(np.ceil(lo)), int(np.ceil(hi)) - 1
        where = informative & (d.episode_step >= first) & (d.episode_step <= last)
        if where.any():
            by_episode_step.append(
                {
                    "first": first,
                    "last": last,
                    "steps": int(where.sum()),
                    "prior_top": top(d.prior, where),
                    "improved_top": top(d.improved, where),
                    "reward_model_top": top(d.model_reward, where),
                    "q_top": top(d.model_q, where),
                }
            )

    def expected(policy):
        value = np.sum(np.where(valid, policy * d.true_reward, 0.0), axis=-1)
        return float(np.mean(((value - worst) / np.where(informative, spread, 1.0))[informative]))

    next_value = d.model_q - d.model_reward

    def centred(x):  # minus its mean over the valid actions of each state
        return x - np.sum(np.where(valid, x, 0.0), -1, keepdims=True) / np.maximum(valid.sum(-1, keepdims=True), 1)

    value_centred = centred(next_value)
    on_informative = valid & informative[..., None]
    dv = np.where(on_informative, value_centred, 0.0)
    dr = np.where(on_informative, centred(d.model_reward), 0.0)
    by_action = np.sum(np.where(valid, value_centred, 0.0), axis=(0, 1)) / np.maximum(valid.sum(axis=(0, 1)), 1)
    num_actions = valid.shape[-1]
    return {
        "informative_steps": float(np.mean(informative)),
        "prior_top": top(d.prior),
        "improved_top": top(d.improved),
        "reward_model_top": top(d.model_reward),
        "q_top": top(d.model_q),
        "prior_expected_reward": expected(d.prior),
        "improved_expected_reward": expected(d.improved),
        "reward_model_error": float(np.mean(np.abs(d.model_reward - d.true_reward)[valid])),
        "next_value_reward_slope": float(np.sum(dv * dr) / max(float(np.sum(dr * dr)), 1e-30)),
        "next_value_spread": float(
            np.mean(np.where(valid, next_value, -np.inf).max(-1) - np.where(valid, next_value, np.inf).min(-1))
        ),
        "action_frequency": (np.bincount(d.action.ravel(), minlength=num_actions) / d.action.size).tolist(),
        "next_value_by_action": by_action.tolist(),
        "by_episode_step": by_episode_step,
    }
