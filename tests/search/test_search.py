"""Tests for rmuzero.search (the mctx wrapper).

The model is a table: latent = one-hot state, prediction = (logits[s], value[s]),
dynamics = (reward[s, a], one-hot next_state[s, a], continuation[s, a]). Tests
vary only the table (params) and the batch contents, never the shapes, so one
jitted search per config serves the whole file (compilation dominates on CPU).

The hand-built MDP (gamma = 0.9, A = 3; states 7..63 unused):
  0 chain start: a0 -> r 0.3 -> 2 (greedy trap); a1 -> r 0 -> 1; a2 -> r 0 -> 2
  1 chain middle: a1 -> r 1 -> 2; a0, a2 -> r 0 -> 2
  2 absorbing, reward 0
  3 bandit: a -> r [0.2, 1.0, 0.5][a] -> 2
  4 terminal trap: a0 -> r 0.1, continuation 0 -> 5; a1 -> r 0 -> 6; a2 -> r 0 -> 2
  5 post-terminal "heaven": any a -> r 100 -> 5, value 100 (must never count)
  6 any a -> r 0.5 -> 2
True values: V = [0.9, 1, 0, 1, 0.45, (100), 0.5]; optimal first actions:
state 0 -> a1 (return 0.9 > 0.3), state 3 -> a1, state 4 -> a1 (0.45 > 0.1).

The batch holds REPEATS copies of the three roots (chain, bandit, trap); the
copies get independent search noise, so one call covers many seeds.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import OPTIMISED

from rmuzero.search import (
    Prediction,
    SearchConfig,
    SearchOutput,
    Transition,
    run_search,
    select_action,
)

GAMMA = 0.9
NUM_STATES, NUM_ACTIONS = 64, 3
REPEATS = 16
ROOT_STATES = np.tile([0, 3, 4], REPEATS)
BATCH = len(ROOT_STATES)  # 48
CHAIN, BANDIT, TRAP = (slice(k, None, 3) for k in range(3))  # rows of each root
BANDIT_REWARDS = np.array([0.2, 1.0, 0.5])
TRUE_VALUES = np.array([0.9, 1.0, 0.0, 1.0, 0.45, 100.0, 0.5])


def prediction_fn(params, latent):
    return Prediction(policy_logits=latent @ params["logits"], value=latent @ params["value"])


def _step(params, latent, action):
    onehot_a = jax.nn.one_hot(action, params["reward"].shape[1])
    reward = jnp.sum((latent @ params["reward"]) * onehot_a, axis=-1)
    continuation = jnp.sum((latent @ params["continuation"]) * onehot_a, axis=-1)
    next_table = jax.nn.one_hot(params["next_state"], latent.shape[-1])  # [S, A, S]
    next_latent = jnp.einsum("bs,sat,ba->bt", latent, next_table, onehot_a)
    return reward, next_latent, continuation


def dynamics_fn(params, latent, action):
    reward, next_latent, continuation = _step(params, latent, action)
    return Transition(reward=reward, next_latent=next_latent, discount=continuation)


def dynamics_fn_no_termination(params, latent, action):
    reward, next_latent, _ = _step(params, latent, action)
    return Transition(reward=reward, next_latent=next_latent, discount=None)


def mdp_params(*, true_values: bool, model_termination: bool = True):
    reward = np.zeros((NUM_STATES, NUM_ACTIONS), np.float32)
    next_state = np.full((NUM_STATES, NUM_ACTIONS), 2, np.int32)
    continuation = np.ones((NUM_STATES, NUM_ACTIONS), np.float32)
    reward[0, 0] = 0.3
    next_state[0, 1] = 1
    reward[1, 1] = 1.0
    reward[3] = BANDIT_REWARDS
    reward[4, 0] = 0.1
    next_state[4, 0] = 5
    next_state[4, 1] = 6
    if model_termination:
        continuation[4, 0] = 0.0
    reward[5] = 100.0
    next_state[5] = 5
    reward[6] = 0.5
    value = np.zeros(NUM_STATES, np.float32)
    value[5] = 100.0  # post-terminal junk, large in both variants
    if true_values:
        value[: len(TRUE_VALUES)] = TRUE_VALUES
    return dict(
        logits=jnp.zeros((NUM_STATES, NUM_ACTIONS)),
        value=jnp.asarray(value),
        reward=jnp.asarray(reward),
        next_state=jnp.asarray(next_state),
        continuation=jnp.asarray(continuation),
    )


ROOT_LATENT = jax.nn.one_hot(ROOT_STATES, NUM_STATES)
NO_MASK = jnp.zeros((BATCH, NUM_ACTIONS), bool)

# Six jitted searches for the whole file.
GUMBEL = SearchConfig(policy="gumbel_muzero", num_simulations=32, discount=GAMMA)
# PUCT needs many simulations to find the chain's delayed reward with zero
# values (at 256, 1 row in 16 still preferred the greedy a0).
MUZERO = SearchConfig(policy="muzero", num_simulations=512, discount=GAMMA)
# For the invalid-action test: a high temperature, at which mctx's own sampled
# action (from log(max(p, tiny)) / T) picks zero-visit invalid actions
# (measured: 68 of 240 rows at T = 100); the wrapper's action must not.
MUZERO_HOT = SearchConfig(policy="muzero", num_simulations=32, temperature=100.0)
# N = 3 = A with 3 considered actions and no noise: each root action is
# visited exactly once, deterministically (hand-computable).
HAND = SearchConfig(
    policy="gumbel_muzero",
    num_simulations=3,
    max_num_considered_actions=3,
    gumbel_scale=0.0,
    discount=GAMMA,
)
ONE = SearchConfig(
    policy="gumbel_muzero",
    num_simulations=1,
    max_num_considered_actions=3,
    gumbel_scale=0.0,
    discount=GAMMA,
)
DEPTH1 = SearchConfig(
    policy="gumbel_muzero",
    num_simulations=32,
    gumbel_scale=0.0,
    discount=GAMMA,
    max_depth=1,
)


@functools.cache
def searcher(config: SearchConfig, dynamics=dynamics_fn):
    """One jitted search per (config, dynamics), shared by all tests."""

    def search(params, key, root_latent, invalid_actions):
        return run_search(
            params,
            key,
            root_latent,
            prediction_fn=prediction_fn,
            dynamics_fn=dynamics,
            config=config,
            invalid_actions=invalid_actions,
        )

    # Optimised: the 512-simulation MuZero search takes seconds to run unoptimised, more than
    # the optimisation takes to compile.
    return jax.jit(search, compiler_options=OPTIMISED)


def search_mdp(config, params, seed, root_latent=ROOT_LATENT, dynamics=dynamics_fn):
    return searcher(config, dynamics)(params, jax.random.key(seed), root_latent, NO_MASK)


@functools.cache
def mdp_result(config: SearchConfig, true_values: bool) -> SearchOutput:
    return search_mdp(config, mdp_params(true_values=true_values), 0)


select_jit = jax.jit(select_action, static_argnames="temperature")


def muzero_root_value(prior_value, visit_freq, q, n):
    """mctx's root value as a running mean: (V(root) + N * sum_a w_a Q_a) / (N + 1)."""
    return (prior_value + n * np.sum(visit_freq * q, axis=-1)) / (n + 1)


# --- the model is the intended one (guards the tests below) -------------------


def test_tabular_model_follows_the_table():
    params = mdp_params(true_values=True)
    step = dynamics_fn(params, ROOT_LATENT[:3], jnp.array([1, 2, 0]))
    np.testing.assert_allclose(step.reward, [0.0, 0.5, 0.1])
    np.testing.assert_array_equal(np.argmax(step.next_latent, -1), [1, 2, 5])
    np.testing.assert_allclose(step.discount, [1.0, 1.0, 0.0])
    pred = prediction_fn(params, ROOT_LATENT[:3])
    np.testing.assert_allclose(pred.value, [0.9, 1.0, 0.45])


# --- hand-computed searches ---------------------------------------------------


def test_gumbel_three_simulations_match_hand_computation():
    # Each root action visited once, so Q(root, a) = r_a + gamma * c_a * V(next_a)
    # and root_value = (V(root) + sum_a Q(root, a)) / 4. The policy target is
    # softmax(logits + (50 + max visits) * 0.1 * rescaled Q) with mctx's
    # defaults (value_scale 0.1, maxvisit_init 50), uniform logits here.
    out = search_mdp(HAND, mdp_params(true_values=True), 0)
    q = np.array(
        [
            [0.3, 0.9 * 1.0, 0.0],  # chain: a1 leads to V(1) = 1
            [0.2, 1.0, 0.5],  # bandit: next state is absorbing, value 0
            [0.1, 0.9 * 0.5, 0.0],  # trap: continuation 0 cuts V(5) = 100
        ]
    )
    v_root = np.array([0.9, 1.0, 0.45])
    np.testing.assert_allclose((v_root + q.sum(-1)) / 4, [0.525, 0.675, 0.25])
    rescaled = (q - q.min(-1, keepdims=True)) / np.ptp(q, -1, keepdims=True)
    logits = 5.1 * rescaled
    weights = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(out.root_value, np.tile([0.525, 0.675, 0.25], REPEATS), rtol=1e-6)
    np.testing.assert_allclose(out.action_weights, np.tile(weights, (REPEATS, 1)), rtol=1e-5)
    np.testing.assert_array_equal(out.action, np.ones(BATCH))
    np.testing.assert_allclose(out.prior_value, np.tile(v_root, REPEATS))
    np.testing.assert_allclose(out.prior_logits, np.zeros((BATCH, NUM_ACTIONS)))
    # Every action visited: the improved policy's value is sum_a w_a Q(root, a).
    np.testing.assert_allclose(out.improved_value, np.tile((weights * q).sum(-1), REPEATS), rtol=1e-5)
    assert np.all(np.asarray(out.improved_value) > np.asarray(out.root_value))  # weights favour the best Q


def test_gumbel_without_rescaling_takes_q_in_the_values_units():
    # rescale_values=False: the same three simulations, softmax(logits + 5.1 * Q) with Q as it is
    # (no min-max normalisation over the root's children).
    out = search_mdp(dataclasses.replace(HAND, rescale_values=False), mdp_params(true_values=True), 0)
    q = np.array([[0.3, 0.9, 0.0], [0.2, 1.0, 0.5], [0.1, 0.45, 0.0]])
    weights = np.exp(5.1 * q) / np.exp(5.1 * q).sum(-1, keepdims=True)
    np.testing.assert_allclose(out.action_weights, np.tile(weights, (REPEATS, 1)), rtol=1e-5)
    with pytest.raises(ValueError, match=r"rescale_values=1; valid: true or false"):
        dataclasses.replace(HAND, rescale_values=1)


def test_gumbel_rescale_floor_bounds_the_min_max_denominator():
    # The same three simulations; the Q spreads are 0.9, 0.8 and 0.45, so a floor of 0.5 divides
    # the third row by 0.5 instead of 0.45 and leaves the first two as mctx's default does.
    out = search_mdp(dataclasses.replace(HAND, rescale_floor=0.5), mdp_params(true_values=True), 0)
    q = np.array([[0.3, 0.9, 0.0], [0.2, 1.0, 0.5], [0.1, 0.45, 0.0]])
    rescaled = (q - q.min(-1, keepdims=True)) / np.array([[0.9], [0.8], [0.5]])
    weights = np.exp(5.1 * rescaled) / np.exp(5.1 * rescaled).sum(-1, keepdims=True)
    np.testing.assert_allclose(out.action_weights, np.tile(weights, (REPEATS, 1)), rtol=1e-5)
    with pytest.raises(ValueError, match=r"rescale_floor=0.0; valid: a float > 0"):
        dataclasses.replace(HAND, rescale_floor=0.0)


def test_improved_value_completes_unvisited_actions_with_the_mixed_value():
    # One simulation, no noise: the root visits one action b only. Unvisited actions
    # take the mixed value (V(root) + 1 * Q(root, b)) / 2 (uniform prior, one visit).
    out = search_mdp(ONE, mdp_params(true_values=True), 0)
    q = np.array([[0.3, 0.9, 0.0], [0.2, 1.0, 0.5], [0.1, 0.45, 0.0]])
    v_root = np.array([0.9, 1.0, 0.45])
    visited = np.asarray(out.action[:3])
    q_visited = q[np.arange(3), visited]
    completed = np.where(np.arange(3)[None, :] == visited[:, None], q, ((v_root + q_visited) / 2)[:, None])
    weights = np.asarray(out.action_weights[:3])
    np.testing.assert_allclose(out.improved_value[:3], (weights * completed).sum(-1), rtol=1e-5)


@pytest.mark.slow
def test_muzero_root_value_is_visit_weighted_mean_under_perfect_model():
    # Bandit and trap rows under the perfect model: every simulation through
    # root action a returns exactly Q(root, a), because all actions below are
    # value-consistent (absorbing 0-state, state 6 pays 0.5 for any action) and
    # the trap's continuation 0 removes everything below state 5.
    n = MUZERO.num_simulations
    out = mdp_result(MUZERO, True)
    w = np.asarray(out.action_weights)
    np.testing.assert_allclose(w * n, np.round(w * n), atol=1e-3)  # counts / N
    for rows, v_root, q in (
        (BANDIT, 1.0, BANDIT_REWARDS),
        (TRAP, 0.45, np.array([0.1, 0.45, 0.0])),
    ):
        np.testing.assert_allclose(out.root_value[rows], muzero_root_value(v_root, w[rows], q, n), rtol=1e-5)
        # Visit frequencies weight only visited actions: sum_a w_a Q(root, a).
        np.testing.assert_allclose(out.improved_value[rows], np.sum(w[rows] * q, -1), rtol=1e-5)


@pytest.mark.slow
def test_muzero_bandit_root_value_approaches_best_arm():
    # Depth-1 bandit with value 0 everywhere: Q(root, a) = r_a exactly and the
    # prior value is 0, so root_value = N * sum_a w_a r_a / (N + 1). With 512
    # simulations PUCT puts most visits on the best arm (r = 1.0): the root
    # value is within 0.1 of it (it cannot exceed N / (N + 1)).
    n = MUZERO.num_simulations
    out = mdp_result(MUZERO, False)
    w = np.asarray(out.action_weights[BANDIT])
    value = np.asarray(out.root_value[BANDIT])
    np.testing.assert_allclose(value, muzero_root_value(0.0, w, BANDIT_REWARDS, n), rtol=1e-5)
    np.testing.assert_array_equal(np.argmax(w, -1), 1)
    assert (value > 0.9).all() and (value <= n / (n + 1) + 1e-6).all(), value


# --- perfect model of a tiny MDP: the search finds the optimal action ---------


@pytest.mark.parametrize("true_values", [True, False], ids=["true_value", "zero_value"])
@pytest.mark.parametrize("config", [GUMBEL, MUZERO], ids=["gumbel", "muzero"])
@pytest.mark.slow
def test_search_avoids_greedy_trap_and_picks_best_arm(config, true_values):
    out = mdp_result(config, true_values)
    best = np.argmax(np.asarray(out.action_weights), axis=-1)
    np.testing.assert_array_equal(best[CHAIN], 1)
    np.testing.assert_array_equal(best[BANDIT], 1)
    greedy = np.asarray(select_jit(jax.random.key(0), out, temperature=0.0))
    np.testing.assert_array_equal(greedy[CHAIN], 1)
    if config.policy == "gumbel_muzero":  # its action is the search's choice
        np.testing.assert_array_equal(np.asarray(out.action)[CHAIN], 1)
        np.testing.assert_array_equal(np.asarray(out.action)[BANDIT], 1)


def test_max_depth_one_cannot_see_the_delayed_reward():
    # With max_depth = 1 and zero values, the chain's a1 looks worth 0 and the
    # greedy a0 (0.3) wins: the limit is passed through to mctx.
    out = search_mdp(DEPTH1, mdp_params(true_values=False), 0)
    np.testing.assert_array_equal(np.asarray(out.action)[CHAIN], 0)
    np.testing.assert_array_equal(np.argmax(out.action_weights[CHAIN], -1), 0)


# --- predicted terminal stops value propagation ------------------------------


@pytest.mark.parametrize("true_values", [True, False], ids=["true_value", "zero_value"])
@pytest.mark.parametrize("config", [GUMBEL, MUZERO], ids=["gumbel", "muzero"])
def test_predicted_terminal_cuts_post_terminal_value(config, true_values):
    out = mdp_result(config, true_values)
    np.testing.assert_array_equal(np.argmax(out.action_weights[TRAP], -1), 1)
    greedy = np.asarray(select_jit(jax.random.key(0), out, temperature=0.0))
    np.testing.assert_array_equal(greedy[TRAP], 1)
    if true_values:
        # Under the perfect model every return in the tree is at most 0.45
        # (0.1 via the terminal action, 0.9 * 0.5 via a1, 0 via a2), and the
        # prior value is 0.45: the running mean cannot exceed it.
        assert (np.asarray(out.root_value[TRAP]) <= 0.45 + 1e-5).all()


@pytest.mark.parametrize("config", [GUMBEL, MUZERO], ids=["gumbel", "muzero"])
@pytest.mark.slow
def test_without_termination_the_trap_is_taken(config):
    # Control for the test above: the same table with continuation 1 makes
    # the post-terminal value count, and the search prefers a0.
    params = mdp_params(true_values=True, model_termination=False)
    out = search_mdp(config, params, 0)
    np.testing.assert_array_equal(np.argmax(out.action_weights[TRAP], -1), 0)
    assert (np.asarray(out.root_value[TRAP]) > 10.0).all()


def test_no_predicted_continuation_means_discount_gamma():
    # discount=None must behave exactly like continuation 1 everywhere.
    params = mdp_params(true_values=True, model_termination=False)
    with_ones = search_mdp(HAND, params, 3)
    with_none = search_mdp(HAND, params, 3, dynamics=dynamics_fn_no_termination)
    for field in ("action", "action_weights", "root_value"):
        np.testing.assert_allclose(getattr(with_none, field), getattr(with_ones, field), rtol=1e-6)
    # and gamma is applied: the trap's a0 is worth 0.1 + 0.9 * 100 now.
    np.testing.assert_allclose(with_none.root_value[TRAP], (0.45 + 0.1 + 90.0 + 0.45 + 0.0) / 4, rtol=1e-5)


# --- batch: rows are independent --------------------------------------------


def test_batch_rows_are_independent_under_permutation():
    # gumbel_scale = 0 makes the search deterministic, so permuting the rows of
    # the batch must permute the outputs and change nothing else.
    params = mdp_params(true_values=False)
    perm = np.random.default_rng(0).permutation(BATCH)
    out = search_mdp(DEPTH1, params, 0)
    out_perm = search_mdp(DEPTH1, params, 1, root_latent=ROOT_LATENT[perm])
    for field in ("action", "action_weights", "root_value", "prior_value"):
        np.testing.assert_allclose(
            np.asarray(getattr(out_perm, field)),
            np.asarray(getattr(out, field))[perm],
            rtol=1e-6,
        )
    assert out.action.shape == (BATCH,) and out.action.dtype == jnp.int32
    assert out.action_weights.shape == (BATCH, NUM_ACTIONS)


# --- invalid actions are never selected --------------------------------------


def adversarial_random_problem(seed: int):
    """A random table where invalid root actions look best (prior and reward).

    Row b starts in state b (its own table row); states BATCH.. are interior.
    Same shapes as the MDP batch, so the jitted searches are reused.
    """
    rng = np.random.default_rng(seed)
    invalid = rng.random((BATCH, NUM_ACTIONS)) < 0.5
    all_invalid = invalid.all(-1)
    invalid[all_invalid, rng.integers(NUM_ACTIONS, size=all_invalid.sum())] = False
    reward = rng.random((NUM_STATES, NUM_ACTIONS)).astype(np.float32)
    logits = rng.normal(size=(NUM_STATES, NUM_ACTIONS)).astype(np.float32)
    reward[:BATCH] += 5.0 * invalid
    logits[:BATCH] += 5.0 * invalid
    params = dict(
        logits=jnp.asarray(logits),
        value=jnp.asarray(rng.normal(size=NUM_STATES).astype(np.float32)),
        reward=jnp.asarray(reward),
        next_state=jnp.asarray(rng.integers(BATCH, NUM_STATES, size=(NUM_STATES, NUM_ACTIONS)), jnp.int32),
        continuation=jnp.asarray(rng.random((NUM_STATES, NUM_ACTIONS)) < 0.8, jnp.float32),
    )
    root_latent = jax.nn.one_hot(np.arange(BATCH), NUM_STATES)
    return params, root_latent, jnp.asarray(invalid)


@pytest.mark.parametrize("config", [GUMBEL, MUZERO_HOT], ids=["gumbel", "muzero"])
@pytest.mark.slow
def test_invalid_actions_never_selected(config):
    search = searcher(config)
    rows = np.arange(BATCH)
    for seed in range(4):  # 4 x 48 random masks and tables
        params, root_latent, invalid = adversarial_random_problem(seed)
        out = search(params, jax.random.key(seed), root_latent, invalid)
        inv = np.asarray(invalid)
        assert not inv[rows, np.asarray(out.action)].any(), seed
        weights = np.asarray(out.action_weights)
        assert (weights[inv] == 0.0).all(), seed
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
        for temperature in (0.0, 1.0, 4.0):
            picked = select_jit(jax.random.key(100 + seed), out, temperature=temperature)
            assert not inv[rows, np.asarray(picked)].any(), (seed, temperature)


# --- select_action ------------------------------------------------------------


def _output_with_weights(weights) -> SearchOutput:
    weights = jnp.asarray(weights, jnp.float32)
    b, a = weights.shape
    return SearchOutput(
        action=jnp.zeros((b,), jnp.int32),
        action_weights=weights,
        root_value=jnp.zeros((b,)),
        prior_logits=jnp.zeros((b, a)),
        prior_value=jnp.zeros((b,)),
        improved_value=jnp.zeros((b,)),
    )


def test_select_action_greedy_breaks_ties_by_lowest_index():
    out = _output_with_weights([[0.1, 0.4, 0.4, 0.1], [0.0, 0.0, 0.5, 0.5]])
    for seed in range(3):
        np.testing.assert_array_equal(select_jit(jax.random.key(seed), out, temperature=0.0), [1, 2])


def test_select_action_samples_weights_to_the_inverse_temperature():
    # weights [0.5, 0.25, 0.25, 0] at T = 0.5: squared [.25, .0625, .0625, 0],
    # renormalised [2/3, 1/6, 1/6, 0]. 4000 independent rows: standard error
    # <= 0.0075, tolerance 4 standard errors.
    out = _output_with_weights(np.tile([[0.5, 0.25, 0.25, 0.0]], (4000, 1)))
    draws = select_jit(jax.random.key(0), out, temperature=0.5)
    freq = np.bincount(np.asarray(draws), minlength=4) / 4000
    np.testing.assert_allclose(freq, [2 / 3, 1 / 6, 1 / 6, 0.0], atol=0.03)
    assert freq[3] == 0.0


@pytest.mark.parametrize("temperature", [-1.0, "hot"])
def test_select_action_rejects_bad_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        select_action(jax.random.key(0), _output_with_weights([[1.0]]), temperature=temperature)


# --- validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(policy="alphazero"), "policy"),
        (dict(num_simulations=0), "num_simulations"),
        (dict(num_simulations=2.5), "num_simulations"),
        (dict(discount=0.0), "discount"),
        (dict(discount=1.5), "discount"),
        (dict(max_depth=0), "max_depth"),
        (dict(max_num_considered_actions=0), "max_num_considered_actions"),
        (dict(gumbel_scale=-1.0), "gumbel_scale"),
        (dict(dirichlet_alpha=0.0), "dirichlet_alpha"),
        (dict(dirichlet_fraction=1.5), "dirichlet_fraction"),
        (dict(pb_c_base=0.0), "pb_c_base"),
        (dict(temperature=-0.1), "temperature"),
    ],
)
def test_config_rejects_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=f"SearchConfig.{field}=.*valid") as info:
        SearchConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_config_is_keyword_only_and_frozen():
    with pytest.raises(TypeError):
        SearchConfig("muzero")  # type: ignore[misc]
    with pytest.raises(Exception):
        GUMBEL.num_simulations = 3  # type: ignore[misc]


def _trace(root_latent, invalid_actions=None, prediction=prediction_fn, dynamics=dynamics_fn):
    """Traces (does not compile) a search: the shape checks run at trace time."""

    def search(params, key, root_latent, invalid_actions):
        return run_search(
            params,
            key,
            root_latent,
            prediction_fn=prediction,
            dynamics_fn=dynamics,
            config=SearchConfig(num_simulations=2),
            invalid_actions=invalid_actions,
        )

    return jax.jit(search).trace(mdp_params(true_values=True), jax.random.key(0), root_latent, invalid_actions)


def test_run_search_rejects_bad_shapes():
    latent = ROOT_LATENT[:3]
    with pytest.raises(ValueError, match=r"root_latent: expected shape \(B, D\), received \(64,\)"):
        _trace(latent[0])
    with pytest.raises(ValueError, match=r"invalid_actions: expected shape \(3, 3\), received \(3, 4\)"):
        _trace(latent, jnp.zeros((3, 4), bool))
    with pytest.raises(ValueError, match="invalid_actions: expected dtype bool"):
        _trace(latent, jnp.zeros((3, 3), jnp.int32))

    def bad_value(params, latent):
        pred = prediction_fn(params, latent)
        return pred._replace(value=pred.value[:, None])

    with pytest.raises(ValueError, match=r"value: expected shape \(3,\), received \(3, 1\)"):
        _trace(latent, prediction=bad_value)

    def bad_latent(params, latent, action):
        step = dynamics_fn(params, latent, action)
        return step._replace(next_latent=step.next_latent[:, :4])

    with pytest.raises(ValueError, match=r"next_latent: expected shape \(3, 64\), received \(3, 4\)"):
        _trace(latent, dynamics=bad_latent)
