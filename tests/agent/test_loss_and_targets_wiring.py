"""The learner's wiring: targets, loss masks, gradients, target network (rmuzero.agent.agent).

Dimensions: S windows, L window length, K unroll steps, A actions, D latent size.

The target math itself lives in ``rmuzero.replay.targets`` (tested there); here
``agent.learner.targets`` must feed it the right inputs (target-network bootstrap values,
reanalysed search policies / values for the first windows of the batch), and
``agent.learner.loss`` must use exactly the entries those targets mark as known, at the
roots it is given that carry a loss: every position of a sequence that begins at
a start flag, positions ``t >= burn_in`` of one that begins mid-episode.

Setup: RepeatPrevious Easy (51-step episodes, |reward| = 1/48 from step 4 on),
B = 4 environments, 9 training iterations of 8 acting steps and one update each,
so the replay holds 72 steps per environment with start flags at steps 0 and 51.
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
from rmuzero.replay.targets import batched_unroll_targets

pytestmark = pytest.mark.slow  # the module's run trains the agent; several tests train their own

EPISODE = 51
ITERATIONS = 9
ROLLOUT = 8
WINDOW = 8
BURN_IN = 2
K = 3
TD = 3
GAMMA = 0.9
PERIOD = 2
# (env, first step) of the S = 4 windows and where the start flag falls inside:
WINDOWS = (
    (0, 47),  # position 4, the middle (reanalysed)
    (1, 44),  # position 7, the last (reanalysed)
    (2, 51),  # position 0, the first
    (3, 20),  # none
)
MIDDLE, LAST, FIRST, NONE = range(4)
REANALYSED = 2  # reanalyse_fraction 0.5 of batch_size 4


def _config(*, target_tau: float, target_update_period: int, reanalyse_fraction: float = 0.5, **system) -> dict:
    return {
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
            "roots_per_sequence": WINDOW - BURN_IN,
            "burn_in": BURN_IN,
            "num_unroll_steps": K,
            "td_steps": TD,
            "discount": GAMMA,
            "replay_length_per_env": 128,
            "updates_per_iteration": 1,
            "reanalyse_fraction": reanalyse_fraction,
            "learning_rate": 1e-2,
            "target_tau": target_tau,
            "target_update_period": target_update_period,
            "prediction_gradient_scale": 1.0,  # every loss reaches the latents, so each one's wiring shows
            **system,
        },
        "eval_episodes": 2,
    }


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(_leaves(a), _leaves(b)))


@pytest.fixture(scope="module")
def run():
    agent = make_agent(config_from_dict(_config(target_tau=1.0, target_update_period=PERIOD)))
    init, iteration = jax.jit(agent.init), jax.jit(agent.train_iteration)
    state = init(jax.random.PRNGKey(5))
    history = [state]
    for _ in range(ITERATIONS):
        state, metrics = iteration(state)
        assert np.isfinite(float(metrics.loss))
        history.append(state)
    steps = ITERATIONS * ROLLOUT
    assert int(state.replay.current_index) == steps and not bool(state.replay.is_full)
    experience = jax.tree.map(lambda x: x[:, :steps], state.replay.experience)
    expected_starts = np.zeros((4, steps), bool)
    expected_starts[:, [0, EPISODE]] = True
    np.testing.assert_array_equal(experience.start, expected_starts)
    windows = Sequences(
        steps=jax.tree.map(
            lambda x: jnp.stack([x[env, first : first + WINDOW] for env, first in WINDOWS]),
            experience.replace(carry=None),
        ),
        carry=jax.tree.map(lambda x: jnp.stack([x[env, first] for env, first in WINDOWS]), experience.carry),
    )
    for s, flag in zip(range(4), (4, 7, 0, None)):
        expected = np.zeros(WINDOW, bool)
        if flag is not None:
            expected[flag] = True
        np.testing.assert_array_equal(windows.steps.start[s], expected)

    def loss_and_grad(params, windows, unroll, roots):
        def total(p):
            parts = agent.learner.loss(p, windows, unroll, roots)
            return parts.total, parts

        return jax.value_and_grad(total, has_aux=True)(params)

    return types.SimpleNamespace(
        agent=agent,
        # the agent's programs, jitted once for the tests that call them (each compiles on first use)
        init=init,
        train_iteration=iteration,
        step=jax.jit(agent.step),
        collect=jax.jit(agent.collect),
        ready=jax.jit(agent.ready),
        sample_batch=jax.jit(agent.sample_batch),
        learn=jax.jit(agent.learn),
        history=history,
        params=state.params,
        target_params=history[-2].params,  # differs from params
        windows=windows,
        targets=jax.jit(agent.learner.targets),
        loss_and_grad=jax.jit(loss_and_grad),
        key=jax.random.PRNGKey(17),
    )


ALL_ROOTS = jnp.broadcast_to(jnp.arange(WINDOW, dtype=jnp.int32), (4, WINDOW))  # every position a root


def _loss(run, windows, unroll, roots=ALL_ROOTS) -> np.ndarray:
    (total, parts), _ = run.loss_and_grad(run.params, windows, unroll, roots)
    return np.asarray(total)


def _expected_inputs(run):
    """Bootstrap values and policies built independently of agent.learner.targets: latents of the
    windows from their stored carries under the target network, its values, and a fresh
    search of the first R windows replacing their policies (action weights) and values (the
    improved policy's value)."""
    agent, windows = run.agent, run.windows

    @jax.jit
    def target_network(target_params, windows, key):
        _, latents = agent.model.encode(
            target_params, windows.carry, jnp.swapaxes(windows.steps.obs, 0, 1), jnp.swapaxes(windows.steps.start, 0, 1)
        )
        latents = jnp.swapaxes(latents, 0, 1)  # [S, L, D]
        heads = agent.model.network.apply(target_params, latents, method=MuZeroNetwork.predict)
        values = logits_to_scalar(heads.value_logits, support=agent.model.value_support)  # [S, L]
        fresh = agent.model.search(target_params, key, latents[:REANALYSED].reshape(-1, latents.shape[-1]))
        return values, fresh

    values, fresh = target_network(run.target_params, windows, run.key)
    bootstrap = values.at[:REANALYSED].set(fresh.improved_value.reshape(REANALYSED, WINDOW))
    policy = windows.steps.search_policy.at[:REANALYSED].set(fresh.action_weights.reshape(REANALYSED, WINDOW, -1))
    return bootstrap, policy, fresh


# ----- targets --------------------------------------------------------------------------------


def test_targets_are_the_target_math_on_target_network_and_reanalysed_inputs(run):
    """agent.learner.targets == batched_unroll_targets(stored rewards / discounts / starts, bootstrap
    values from the target network (reanalysed windows: the fresh search's root values),
    stored search policies (reanalysed windows: the fresh search's policies))."""
    windows = run.windows.steps
    unroll, reanalysed = run.targets(run.target_params, run.windows, run.key)
    bootstrap, policy, fresh = _expected_inputs(run)
    expected = batched_unroll_targets(
        windows.reward,
        windows.discount,
        windows.start,
        bootstrap,
        policy,
        num_unroll_steps=K,
        discount_factor=GAMMA,
        td_steps=TD,
    )
    for name in ("in_episode", "in_window", "reward_mask"):
        np.testing.assert_array_equal(getattr(unroll, name), getattr(expected, name), err_msg=name)
    for name in ("value", "reward", "policy"):
        np.testing.assert_allclose(getattr(unroll, name), getattr(expected, name), rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(reanalysed.improved_value, fresh.improved_value, rtol=1e-4, atol=1e-5)
    # The non-reanalysed windows bootstrap from the target network, not from the online one.
    assert not _equal(run.params, run.target_params)


def test_targets_at_the_episode_boundaries_by_hand(run):
    """Numbers a person can check: the last observation of an episode has value target r
    (no bootstrap) and nothing after it is in the episode; the terminal reward is kept."""
    unroll, reanalysed = run.targets(run.target_params, run.windows, run.key)
    reward = np.asarray(run.windows.steps.reward)
    uniform = np.full(4, 0.25, np.float32)

    # Middle window: start flag at position 4, so o_3 is the episode's last observation.
    np.testing.assert_array_equal(unroll.in_episode[MIDDLE, 3], [True, False, False, False])
    assert abs(abs(reward[MIDDLE, 3]) - 1.0 / 48) < 1e-7  # RepeatPrevious Easy: +-1/(52 - 4)
    np.testing.assert_allclose(unroll.value[MIDDLE, 3], [reward[MIDDLE, 3], 0, 0, 0], atol=1e-7)
    np.testing.assert_array_equal(unroll.reward_mask[MIDDLE, 3], [False, True, False, False])
    np.testing.assert_allclose(unroll.reward[MIDDLE, 3], [0, reward[MIDDLE, 3], 0, 0], atol=1e-7)
    np.testing.assert_allclose(unroll.policy[MIDDLE, 3, 1:], np.stack([uniform] * 3))
    # o_4 begins the next episode: its own unroll is all in its episode and in the window.
    assert bool(np.all(unroll.in_episode[MIDDLE, 4])) and bool(np.all(unroll.in_window[MIDDLE, 4]))
    # o_2: two rewards then the end (n = 3 would reach o_5): z = r_2 + gamma d_2 r_3.
    expected = reward[MIDDLE, 2] + GAMMA * float(run.windows.steps.discount[MIDDLE, 2]) * reward[MIDDLE, 3]
    np.testing.assert_allclose(unroll.value[MIDDLE, 2, 0], expected, rtol=1e-6)

    # Last window: flag at position 7; o_6 ends the episode, o_7 is the window's edge.
    np.testing.assert_allclose(unroll.value[LAST, 6, 0], reward[LAST, 6], atol=1e-7)
    np.testing.assert_array_equal(unroll.in_episode[LAST, 6], [True, False, False, False])
    np.testing.assert_array_equal(unroll.in_window[LAST, 7], [True, False, False, False])
    # At the edge the value target of o_7 is its bootstrap value: the fresh search's value of
    # its improved policy.
    np.testing.assert_allclose(unroll.value[LAST, 7, 0], reanalysed.improved_value[2 * WINDOW - 1], rtol=1e-6)

    # First window: the flag at the root itself cuts nothing.
    assert bool(np.all(unroll.in_episode[FIRST]))


# ----- loss -----------------------------------------------------------------------------------


def test_loss_is_finite_and_gradients_reach_every_parameter(run):
    unroll, _ = run.targets(run.target_params, run.windows, run.key)
    (total, parts), grads = run.loss_and_grad(run.params, run.windows, unroll, ALL_ROOTS)
    for name, value in zip(parts._fields, parts):
        if name == "consistency":  # off in this config (consistency_loss_weight 0): exactly 0
            assert float(value) == 0.0, float(value)
            continue
        assert np.isfinite(float(value)) and float(value) > 0.0, (name, float(value))
    flat = jax.tree_util.tree_flatten_with_path(grads)[0]
    modules = {path[1].key for path, _ in flat}
    assert {
        "encoder",
        "dynamics_trunk",
        "dynamics_latent",
        "reward_trunk",
        "reward_head",
        "prediction_trunk",
        "policy_head",
        "value_head",
    } <= modules, modules
    dead = [jax.tree_util.keystr(path) for path, g in flat if not np.any(np.asarray(g) != 0)]
    assert not dead, f"parameters without gradient: {dead}"


def _by_name(grads) -> dict[str, np.ndarray]:
    """Gradient leaves by module and parameter path, e.g. "encoder['Dense_0']['kernel']"."""
    return {
        path[1].key + jax.tree_util.keystr(path[2:]): np.asarray(g)
        for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]
    }


def test_prediction_gradient_scale_0_leaves_the_latents_to_the_reward_loss(run):
    """``prediction_gradient_scale=0``: the encoder, dynamics and reward modules get exactly the
    gradient of the loss with the value and policy weights at 0 (the reward loss alone), and the
    prediction trunk and heads the gradient they get with the scale at 1; at 1 the encoder's differs."""
    unroll, _ = run.targets(run.target_params, run.windows, run.key)

    def gradients(**system):
        agent = make_agent(config_from_dict(_config(target_tau=1.0, target_update_period=PERIOD, **system)))
        return _by_name(
            jax.jit(jax.grad(lambda p: agent.learner.loss(p, run.windows, unroll, ALL_ROOTS).total))(run.params)
        )

    cut = gradients(prediction_gradient_scale=0.0)
    reward_only = gradients(value_loss_weight=0.0, policy_loss_weight=0.0)
    full = _by_name(run.loss_and_grad(run.params, run.windows, unroll, ALL_ROOTS)[1])
    heads = ("prediction_trunk", "policy_head", "value_head")
    for name, g in cut.items():
        expected = full[name] if name.startswith(heads) else reward_only[name]
        np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-7, err_msg=name)
    encoder = [name for name in cut if name.startswith("encoder")]
    assert encoder and any(np.any(cut[name] != 0) for name in encoder)
    assert any(not np.allclose(full[name], reward_only[name], rtol=1e-3, atol=1e-6) for name in encoder)


def _perturb(unroll, field: str, where: np.ndarray, amount: float):
    value = np.array(getattr(unroll, field))
    if field == "policy":
        replacement = np.zeros_like(value)
        replacement[..., 0] = 1.0  # a different valid distribution
        value = np.where(where[..., None], replacement, value)
    else:
        value = np.where(where, value + amount, value)
    return unroll.replace(**{field: jnp.asarray(value)})


def test_loss_ignores_unknown_entries_and_burn_in_roots(run):
    """Changing targets the loss must not see leaves it bit-identical; changing one it must
    see changes it. Unknown: value / policy where in_episode & ~in_window, reward where the
    previous step is in the episode but outside the window; and every root t < burn_in of a
    sequence that begins mid-episode. The sequence that begins at a start flag (FIRST) has a
    loss at its first position."""
    unroll, _ = run.targets(run.target_params, run.windows, run.key)
    base = _loss(run, run.windows, unroll)
    in_episode = np.asarray(unroll.in_episode)
    in_window = np.asarray(unroll.in_window)
    unknown = in_episode & ~in_window
    previous_unknown = np.concatenate([np.zeros_like(unknown[..., :1]), unknown[..., :-1]], axis=-1)
    assert unknown.any() and previous_unknown.any()
    burn_in_roots = np.zeros_like(unknown)
    burn_in_roots[[MIDDLE, LAST, NONE], :BURN_IN] = True

    for field, mask in (("value", unknown), ("policy", unknown), ("reward", previous_unknown)):
        changed = _loss(run, run.windows, _perturb(unroll, field, mask, 3.0))
        assert changed == base, f"{field}: masked entries changed the loss {base} -> {changed}"
        changed = _loss(run, run.windows, _perturb(unroll, field, burn_in_roots, 3.0))
        assert changed == base, f"{field}: burn-in roots changed the loss {base} -> {changed}"
        # The same change at one known entry of the first root with a loss changes it.
        one = np.zeros_like(unknown)
        one[NONE, BURN_IN, 1] = True
        changed = _loss(run, run.windows, _perturb(unroll, field, one, 3.0))
        assert changed != base, f"{field}: a known entry did not change the loss"
        first = np.zeros_like(unknown)
        first[FIRST, 0, 1] = True
        changed = _loss(run, run.windows, _perturb(unroll, field, first, 3.0))
        assert changed != base, f"{field}: position 0 of a sequence from a start flag has no loss"


def test_policy_and_reward_data_before_burn_in_do_not_reach_the_loss(run):
    """A stored policy / reward at a position p < burn_in is only seen by roots t <= p, which
    have no loss; the same change at p = burn_in is seen."""
    windows = run.windows
    base = _loss(run, windows, run.targets(run.target_params, windows, run.key)[0])
    row = NONE  # mid-episode, not reanalysed: its policy targets are the stored ones

    def changed(position):
        steps = windows.steps
        policy = steps.search_policy.at[row, position].set(jnp.array([0.0, 0.0, 0.0, 1.0]))
        reward = steps.reward.at[row, position].add(0.5)
        modified = windows._replace(steps=steps.replace(search_policy=policy, reward=reward))
        return _loss(run, modified, run.targets(run.target_params, modified, run.key)[0])

    for position in range(BURN_IN):
        assert changed(position) == base, f"data at position {position} < burn_in reached the loss"
    assert changed(BURN_IN) != base


def test_subsampled_roots_average_the_per_root_losses(run):
    """The loss over given roots is the mean over those that carry a loss: the all-positions
    loss equals the average of single-root losses (one root per sequence at position t),
    each weighted by how many sequences have a loss at t."""
    unroll, _ = run.targets(run.target_params, run.windows, run.key)
    base = _loss(run, run.windows, unroll)
    has_loss = (np.arange(WINDOW)[None, :] >= BURN_IN) | np.asarray(run.windows.steps.start[:, :1])  # [S, L]
    per_root = [_loss(run, run.windows, unroll, jnp.full((4, 1), t, jnp.int32)) for t in range(WINDOW)]
    weights = has_loss.sum(axis=0)
    np.testing.assert_allclose(base, np.dot(per_root, weights) / weights.sum(), rtol=1e-5)


def test_sampled_roots_are_distinct_loss_positions(run):
    roots = np.asarray(jax.jit(run.agent.learner.sample_roots)(run.windows, jax.random.PRNGKey(3)))
    assert roots.shape == (4, WINDOW - BURN_IN)
    for s in range(4):
        assert len(set(roots[s].tolist())) == roots.shape[1]
    assert roots[[MIDDLE, LAST, NONE]].min() >= BURN_IN  # mid-episode: never a burn-in position
    draws = np.concatenate(
        [
            np.asarray(run.agent.learner.sample_roots(run.windows, k))[FIRST]
            for k in jax.random.split(jax.random.PRNGKey(4), 20)
        ]
    )
    assert set(draws.tolist()) == set(range(WINDOW))  # from a start flag: every position


# ----- target network -------------------------------------------------------------------------


def test_hard_target_update_every_period(run):
    """tau = 1, period 2: after updates 2, 4, ... the target is the online params; after
    updates 1, 3, ... it is still the params of the update before."""
    history = run.history
    assert _equal(history[0].target_params, history[0].params)
    for u in range(1, ITERATIONS + 1):
        state, before = history[u], history[u - 1]
        assert int(state.updates) == u
        assert not _equal(state.params, before.params), f"update {u} did not change the params"
        if u % PERIOD == 0:
            assert _equal(state.target_params, state.params), f"update {u}: target is not the params"
        else:
            assert not _equal(state.target_params, state.params), f"update {u}: target copied early"
            assert _equal(state.target_params, before.target_params), f"update {u}: target moved"


def test_polyak_target_update(run):
    """tau = 0.5, period 1: target' = (1 - tau) target + tau params' after every update (two
    updates of such an agent from the module run's last state, whose target network lags its
    params; batches sampled by the module's agent, which samples as this one does)."""
    tau = 0.5
    agent = make_agent(config_from_dict(_config(target_tau=tau, target_update_period=1)))
    learn, state = jax.jit(agent.learn), run.history[-1]
    assert not _equal(state.target_params, state.params)
    for key in jax.random.split(jax.random.PRNGKey(8), 2):
        after, _ = learn(state, run.sample_batch(state, key))
        assert not _equal(after.params, state.params)
        for target, old_target, params in zip(
            _leaves(after.target_params), _leaves(state.target_params), _leaves(after.params)
        ):
            expected = (np.float32(1.0 - tau) * old_target + np.float32(tau) * params).astype(old_target.dtype)
            np.testing.assert_allclose(target, expected, rtol=1e-6, atol=1e-7)
        assert not _equal(after.target_params, after.params)
        state = after


def test_td_lambda_config_selects_lambda_targets(run):
    """system.td_lambda switches the value targets to TD(lambda) on the same inputs."""
    values = _config(target_tau=1.0, target_update_period=PERIOD)
    values["system"]["td_lambda"] = 0.7
    agent = make_agent(config_from_dict(values))
    unroll, _ = jax.jit(agent.learner.targets)(run.target_params, run.windows, run.key)
    bootstrap, policy, _ = _expected_inputs(run)
    windows = run.windows.steps
    expected = batched_unroll_targets(
        windows.reward,
        windows.discount,
        windows.start,
        bootstrap,
        policy,
        num_unroll_steps=K,
        discount_factor=GAMMA,
        td_lambda=0.7,
    )
    np.testing.assert_allclose(unroll.value, expected.value, rtol=1e-4, atol=1e-5)
    n_step = batched_unroll_targets(
        windows.reward,
        windows.discount,
        windows.start,
        bootstrap,
        policy,
        num_unroll_steps=K,
        discount_factor=GAMMA,
        td_steps=TD,
    )
    assert not np.allclose(expected.value, n_step.value)  # the option really changes the targets
    values["system"]["td_lambda"] = 1.5
    with pytest.raises(ValueError, match=r"system.td_lambda=1.5; valid: a number in \[0.0, 1.0\]"):
        config_from_dict(values)


def test_fused_iterations_equal_separate_calls(run):
    """iterations_per_call = 3: two fused calls reach the same state, bit for bit, as six
    separate `step` calls of the module's agent (the same config but for iterations_per_call;
    the first calls only collect, until sequences can be sampled)."""
    values = _config(target_tau=1.0, target_update_period=PERIOD)
    values["iterations_per_call"] = 3
    agent = make_agent(config_from_dict(values))
    start = run.init(jax.random.PRNGKey(9))
    step, fused = run.step, jax.jit(agent.train_iterations)
    separate, updates = start, []
    for _ in range(6):
        separate, metrics = step(separate)
        updates.append(int(metrics.updates))
    together, stacked = fused(fused(start)[0])
    assert updates[0] == 0 and updates[-1] == 1  # the replay filled on the way
    np.testing.assert_array_equal(stacked.updates, updates[3:])
    assert int(together.env_steps) == int(separate.env_steps) == 6 * 4 * ROLLOUT
    assert _equal(together, separate)


def test_step_learns_when_the_replay_was_ready_before_acting(run):
    """`step` is `train_iteration` when sequences could be sampled *before* its acting, else
    `collect`, bit for bit, through the iteration where acting makes the replay ready (that
    iteration only collects: deciding after acting would learn one iteration early)."""
    step, collect, train_iteration, ready = run.step, run.collect, run.train_iteration, run.ready
    state, decided = run.init(jax.random.PRNGKey(5)), []
    for _ in range(3):
        was_ready = bool(ready(state))
        expected, expected_metrics = (train_iteration if was_ready else collect)(state)
        state, metrics = step(state)
        assert _equal((state, metrics), (expected, expected_metrics))
        decided.append((was_ready, bool(ready(state)), int(metrics.updates)))
    # Not ready before the first call, ready after its acting (8 steps fill an 8-step sequence):
    # it only collects; the next ones learn.
    assert decided == [(False, True, 0), (True, True, 1), (True, True, 1)]


def test_sample_ahead_prepares_every_batch_from_the_state_before_them(run):
    """system.sample_ahead = 4: an iteration of 4 updates equals collecting, then 4 separate
    `sample_batch` calls on the collected state (its replay and target network), then 4 `learn`
    steps in a row. Period 2 refreshes the target network after update 2 (checked), so `update`
    one at a time would give updates 3 and 4 the refreshed one: the batches are all prepared
    from the state before them. `sample_batch` and `learn` are the module agent's: its config
    differs only in updates_per_iteration and sample_ahead, which neither reads."""
    values = _config(target_tau=1.0, target_update_period=PERIOD, reanalyse_fraction=0.5)
    values["system"].update(updates_per_iteration=4, sample_ahead=4)
    agent = make_agent(config_from_dict(values))
    collect, ready = run.collect, run.ready  # acting does not depend on the updates' settings
    state = run.init(jax.random.PRNGKey(11))
    while not bool(ready(state)):
        state, _ = collect(state)
    ahead, metrics = jax.jit(agent.train_iteration)(state)

    collected, _ = collect(state)
    key, learn_key = jax.random.split(collected.key)
    sample_batch, learn = run.sample_batch, run.learn
    batches = [sample_batch(collected, k) for k in jax.random.split(learn_key, 4)]
    by_hand, losses = collected, []
    for batch in batches:
        by_hand, (parts, _, _) = learn(by_hand, batch)
        losses.append(float(parts.total))
    by_hand = by_hand._replace(key=key)
    assert int(ahead.updates) == 4
    assert not _equal(by_hand.target_params, collected.target_params)  # a refresh happened inside
    assert _equal(ahead, by_hand)
    np.testing.assert_allclose(float(metrics.loss), np.mean(losses), rtol=1e-6)

    values["system"]["sample_ahead"] = 3
    with pytest.raises(
        ValueError,
        match=r"system.sample_ahead=3 must divide system.updates_per_iteration=4; "
        r"valid: one of 1, 2, 4$",
    ):
        config_from_dict(values)


def test_consistency_loss_by_hand(run):
    """consistency_loss_weight > 0: the mean over roots with a loss of sum_k (1/K) * (1 - cosine of
    the mean-centred dynamics latent after k stored actions and encoder latent of o_{t+k}), over the k whose
    o_{t+k} lies in the root's episode and inside the window; nothing across the start flag.
    Recomputed here step by step with the network's own encode / dynamics. Weight 0 leaves the
    total exactly as without the term."""
    import dataclasses

    agent, windows = run.agent, run.windows
    weight = 0.7
    learner = dataclasses.replace(
        agent.learner, system=dataclasses.replace(agent.learner.system, consistency_loss_weight=weight)
    )
    unroll, _ = run.targets(run.target_params, windows, run.key)
    with_term = jax.jit(learner.loss)(run.params, windows, unroll, ALL_ROOTS)
    without = jax.jit(agent.learner.loss)(run.params, windows, unroll, ALL_ROOTS)
    assert float(without.consistency) == 0.0
    np.testing.assert_allclose(
        float(with_term.total), float(without.total) + weight * float(with_term.consistency), rtol=1e-6
    )

    _, latents = agent.model.encode(
        run.params, windows.carry, jnp.swapaxes(windows.steps.obs, 0, 1), jnp.swapaxes(windows.steps.start, 0, 1)
    )
    latents = np.asarray(jnp.swapaxes(latents, 0, 1))  # [S, L, D]
    dynamics = jax.jit(
        lambda latent, action: (
            agent.model.network.apply(run.params, latent, action, method=MuZeroNetwork.dynamics).next_latent
        )
    )
    start = np.asarray(windows.steps.start)
    actions = np.asarray(windows.steps.action)
    total, roots_with_loss, terms = 0.0, 0, 0
    for s in range(4):
        for t in range(WINDOW):
            if not (t >= BURN_IN or start[s, 0]):
                continue
            roots_with_loss += 1
            latent = jnp.asarray(latents[s, t])
            for k in range(1, K + 1):
                latent = dynamics(latent, jnp.asarray(actions[s, min(t + k - 1, WINDOW - 1)]))
                if t + k >= WINDOW or start[s, t + 1 : t + k + 1].any():
                    continue  # outside the window, or o_{t+k} begins the next episode
                a = np.asarray(latent, np.float64) - np.mean(latent)
                b = latents[s, t + k].astype(np.float64) - np.mean(latents[s, t + k])
                total += (1.0 - a @ b / np.sqrt((a @ a) * (b @ b))) / K
                terms += 1
    assert terms > 0 and start[MIDDLE, 4]  # the MIDDLE window's flag at position 4 cuts roots 2, 3
    np.testing.assert_allclose(float(with_term.consistency), total / roots_with_loss, rtol=1e-5)


def test_loss_read_out_at_the_roots_equals_the_full_sequence_gathered(run):
    """The loss reads the encoder out at its roots only (``positions``); the consistency path
    still encodes every position and gathers the roots. Their value + reward + policy loss and
    its gradient agree, at roots that are not every position (3 of 8, one before burn-in)."""
    import dataclasses

    agent, windows = run.agent, run.windows
    weight = 0.5
    full = dataclasses.replace(
        agent.learner, system=dataclasses.replace(agent.learner.system, consistency_loss_weight=weight)
    )
    unroll, _ = run.targets(run.target_params, windows, run.key)
    roots = jnp.asarray([[2, 5, 7], [1, 4, 6], [0, 3, 7], [6, 3, 2]], jnp.int32)

    def restricted_loss(p):
        return agent.learner.loss(p, windows, unroll, roots).total

    def full_loss(p):
        parts = full.loss(p, windows, unroll, roots)
        return parts.total - weight * parts.consistency

    value_r, grads_r = jax.jit(jax.value_and_grad(restricted_loss))(run.params)
    value_f, grads_f = jax.jit(jax.value_and_grad(full_loss))(run.params)
    np.testing.assert_allclose(float(value_r), float(value_f), rtol=1e-6)
    scale = max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(grads_f))
    for a, b in zip(_leaves(grads_r), _leaves(grads_f)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * scale)
    memory_grads = jax.tree.leaves(grads_r["params"]["encoder"]["memory"])
    assert max(float(np.max(np.abs(g))) for g in memory_grads) > 0  # the gradient reaches the memory
