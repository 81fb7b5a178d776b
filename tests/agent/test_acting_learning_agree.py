"""Acting and learning see the same latents (rmuzero.agent.agent, docs/design.md sections 2 and 4).

Dimensions: B environments, T steps stored per environment, L window length,
S windows, D latent size, A actions.

The actor encodes one step at a time and stores, with every observation, the
encoder carry *before* that observation. The learner re-encodes a whole window
from the stored carry at its first step. Both must give the same carries and
latents step for step, also across an episode boundary inside the window, and
reanalysis with the acting parameters must search from the actor's latents.

The reference for "what the actor computed" is an independent replay of
acting: ``agent.model.encode`` with T = 1 from ``network.initialize_carry``, over each
environment's stored observation stream from its first step. That replay is
checked against the stored carries and against the stored search policies and
actions (same search keys as the actor's), so it is the actor's computation.

Setup: RepeatPrevious Easy (51-step episodes), B = 4 environments, 8 collects of
8 steps each, so every environment holds T = 64 steps with start flags at steps
0 and 51. Acting parameters are the initial ones (``collect`` never learns).
"""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rmuzero.agent.agent import make_agent
from rmuzero.agent.config import config_from_dict
from rmuzero.networks.muzero import MuZeroNetwork
from rmuzero.networks.transforms import logits_to_scalar
from rmuzero.replay.buffer import Sequences

pytestmark = pytest.mark.slow  # the module's run trains the agent

EPISODE = 51  # RepeatPrevious Easy: 52 cards, 51 steps per episode
COLLECTS = 8
ROLLOUT = 8
STEPS = COLLECTS * ROLLOUT  # 64 stored steps per environment
WINDOW = 12
# (env, first step) of the S = 4 windows; position of the start flag inside each:
WINDOWS = (
    (0, 20),  # mid-episode, no start flag
    (1, 44),  # start flag at position 7 (step 51)
    (2, 51),  # start flag at position 0
    (3, 40),  # start flag at position 11, the last one
)
REANALYSED = 2  # reanalyse_fraction 0.5 of batch_size 4: windows 0 and 1

CONFIG = {
    "env": {"name": "popgym/repeat_previous", "difficulty": "easy"},
    "network": {
        "memory": "ffm",
        "features": 16,
        "latent_size": 16,
        "head_sizes": [32],
        "value_bins": 11,
        "reward_bins": 11,
    },
    "search": {"policy": "gumbel_muzero", "num_simulations": 4, "max_num_considered_actions": 4},
    "system": {
        "num_envs": 4,
        "rollout_length": ROLLOUT,
        "batch_size": 4,
        "sequence_length": WINDOW,
        "roots_per_sequence": 10,
        "burn_in": 2,
        "num_unroll_steps": 3,
        "td_steps": 3,
        "replay_length_per_env": 128,
        "updates_per_iteration": 1,
        "reanalyse_fraction": 0.5,
        # The stored action is the search's here, so the replay below can check it;
        # exploration's replaced actions are checked in test_exploration.py.
        "exploration_epsilon": 0.0,
    },
    "eval_episodes": 2,
}


def _allclose_tree(actual, expected, *, rtol=1e-5, atol=1e-5, what=""):
    for i, (a, e) in enumerate(zip(jax.tree.leaves(actual), jax.tree.leaves(expected))):
        a, e = np.asarray(a), np.asarray(e)
        assert a.shape == e.shape, f"{what} leaf {i}: shape {a.shape} != {e.shape}"
        if np.issubdtype(e.dtype, np.integer) or e.dtype == bool:
            np.testing.assert_array_equal(a, e, err_msg=f"{what} leaf {i}")
        else:
            np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=f"{what} leaf {i}")


@pytest.fixture(scope="module")
def run():
    """Collects 64 steps per env and replays acting step by step from the stored observations."""
    config = config_from_dict(CONFIG)
    agent = make_agent(config)
    state = jax.jit(agent.init)(jax.random.PRNGKey(3))
    collect = jax.jit(agent.collect)
    params = state.params
    # The actor's search keys: collect splits state.key into (next key, rollout key) and the
    # rollout key into one key per acting step.
    search_keys = []
    for _ in range(COLLECTS):
        _, rollout_key = jax.random.split(state.key)
        search_keys.extend(jax.random.split(rollout_key, ROLLOUT))
        state, _ = collect(state)
    assert int(state.replay.current_index) == STEPS and not bool(state.replay.is_full)
    for leaf_before, leaf_after in zip(jax.tree.leaves(params), jax.tree.leaves(state.params)):
        assert leaf_before is leaf_after or np.array_equal(leaf_before, leaf_after)
    experience = jax.tree.map(lambda x: x[:, :STEPS], state.replay.experience)  # [B, T, ...]
    starts = np.asarray(experience.start)
    expected_starts = np.zeros((4, STEPS), bool)
    expected_starts[:, [0, EPISODE]] = True
    np.testing.assert_array_equal(starts, expected_starts)

    encode = jax.jit(agent.model.encode)
    search = jax.jit(agent.model.search)
    carry = agent.model.network.initialize_carry(4)
    carries, latents, policies, actions = [], [], [], []
    for t in range(STEPS):
        carries.append(carry)
        carry, latent = encode(params, carry, experience.obs[None, :, t], experience.start[None, :, t])
        out = search(params, search_keys[t], latent[0])
        latents.append(latent[0])
        policies.append(out.action_weights)
        actions.append(out.action)
    return types.SimpleNamespace(
        agent=agent,
        params=params,
        state=state,
        experience=experience,
        final_carry=state.actor.carry,  # carry before step T = 64
        replay_carry_after=carry,
        acting_carries=jax.tree.map(lambda *xs: jnp.stack(xs, axis=1), *carries),  # [B, T, ...]
        acting_latents=jnp.stack(latents, axis=1),  # [B, T, D]
        acting_policies=jnp.stack(policies, axis=1),  # [B, T, A]
        acting_actions=jnp.stack(actions, axis=1),  # [B, T]
        encode=encode,
        search=search,
    )


def _windows(experience, windows=WINDOWS, length=WINDOW) -> Sequences:
    """Sequences [S, L, ...] of `windows` cut straight out of the replay state."""
    steps = jax.tree.map(
        lambda x: jnp.stack([x[env, first : first + length] for env, first in windows]),
        experience.replace(carry=None),
    )
    carry = jax.tree.map(lambda x: jnp.stack([x[env, first] for env, first in windows]), experience.carry)
    return Sequences(steps=steps, carry=carry)


def test_step_by_step_replay_is_the_actor(run):
    """Independent T = 1 acting from the identity carry reproduces the stored carries
    (the carry *before* each step), search policies and actions."""
    _allclose_tree(run.acting_carries, run.experience.carry, what="carry before step")
    _allclose_tree(run.replay_carry_after, run.final_carry, what="carry after step 63")
    np.testing.assert_allclose(run.acting_policies, run.experience.search_policy, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(run.acting_actions, run.experience.action)


def test_window_carries_match_stored_carries(run):
    """Re-encoding steps [i, i + j) of a window from the stored carry at i gives the stored
    carry at i + j, for every j = 1..L, also across the start flags."""
    windows = _windows(run.experience)
    carry0 = windows.carry
    obs = jnp.swapaxes(windows.steps.obs, 0, 1)  # [L, S, F]
    start = jnp.swapaxes(windows.steps.start, 0, 1)  # [L, S]

    @jax.jit
    def prefix_carries(params, carry, obs, start):
        return [run.agent.model.encode(params, carry, obs[:j], start[:j])[0] for j in range(1, WINDOW + 1)]

    got = prefix_carries(run.params, carry0, obs, start)
    stored = jax.tree.map(  # carries before steps first .. first + L, the last one from the actor
        lambda exp, final: jnp.concatenate([exp, final[:, None]], axis=1), run.experience.carry, run.final_carry
    )
    for j in range(1, WINDOW + 1):
        expected = jax.tree.map(lambda x: jnp.stack([x[env, first + j] for env, first in WINDOWS]), stored)
        _allclose_tree(got[j - 1], expected, what=f"carry after {j} steps")


def test_window_latents_match_acting_latents(run):
    """The learner's whole-window encoding (from the stored carry) gives the actor's latents."""
    windows = _windows(run.experience)
    _, latents = run.encode(
        run.params, windows.carry, jnp.swapaxes(windows.steps.obs, 0, 1), jnp.swapaxes(windows.steps.start, 0, 1)
    )  # [L, S, D]
    for s, (env, first) in enumerate(WINDOWS):
        np.testing.assert_allclose(
            latents[:, s],
            run.acting_latents[env, first : first + WINDOW],
            rtol=1e-5,
            atol=1e-5,
            err_msg=f"window {s} (env {env}, steps {first}..{first + WINDOW - 1})",
        )


def test_whole_episode_latents_match_acting_latents(run):
    """A sequence that begins at an episode's first step (what the learner samples) encodes the
    whole episode, and the next episode's first step, to the actor's latents; the stored carry
    before the start flag is irrelevant (a zero carry and a garbage carry give the same)."""
    length = EPISODE + 1
    sequences = _windows(run.experience, windows=tuple((env, 0) for env in range(4)), length=length)
    assert bool(np.all(sequences.steps.start[:, 0])) and bool(np.all(sequences.steps.start[:, EPISODE]))
    obs, start = jnp.swapaxes(sequences.steps.obs, 0, 1), jnp.swapaxes(sequences.steps.start, 0, 1)
    garbage = jax.tree.map(lambda x: jnp.full_like(x, 7.0), sequences.carry)
    for carry in (sequences.carry, run.agent.model.network.initialize_carry(4), garbage):
        _, latents = run.encode(run.params, carry, obs, start)  # [L, S, D]
        np.testing.assert_allclose(jnp.swapaxes(latents, 0, 1), run.acting_latents[:, :length], rtol=1e-5, atol=1e-5)


def test_reanalysis_with_acting_params_searches_from_actor_latents(run):
    """targets(params_acting, ...) re-encodes the reanalysed windows to the actor's latents:
    its root predictions are the prediction heads at those latents, and its search equals
    agent.model.search at the actor's latents with the same key."""
    agent = run.agent
    windows = _windows(run.experience)
    key = jax.random.PRNGKey(11)
    _, reanalysed = jax.jit(agent.learner.targets)(run.params, windows, key)
    actor_latents = jnp.concatenate(
        [run.acting_latents[env, first : first + WINDOW] for env, first in WINDOWS[:REANALYSED]]
    )  # [R * L, D], window-major like the reanalysed batch
    assert reanalysed.prior_value.shape == (REANALYSED * WINDOW,)

    heads = agent.model.network.apply(run.params, actor_latents, method=MuZeroNetwork.predict)
    np.testing.assert_allclose(reanalysed.prior_logits, heads.policy_logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        reanalysed.prior_value,
        logits_to_scalar(heads.value_logits, support=agent.model.value_support),
        rtol=1e-5,
        atol=1e-5,
    )

    direct = jax.jit(agent.model.search)(run.params, key, actor_latents)
    np.testing.assert_allclose(reanalysed.action_weights, direct.action_weights, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(reanalysed.root_value, direct.root_value, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(reanalysed.action, direct.action)
