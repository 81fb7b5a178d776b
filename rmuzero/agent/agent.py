"""FFM-MuZero: acting, learning and reanalysis as pure functions.

Dimensions: B environments, T acting steps per iteration, S sequences per
update, L sequence length, R unroll roots per sequence, K unroll steps, A
actions, D latent size, F observation size.

The parts, each in its own module: ``model`` (network, supports, search),
``acting`` (the rollout), ``learning`` (targets, roots, loss), ``evaluation``
(greedy episodes). This module assembles them with the replay and the
optimizer. One iteration (``train_iteration``, one jit) is::

    act:    lax.scan over T steps of (encode one step -> search -> env.step),
            the encoder carry threaded through and reset by start flags;
    store:  per-step records (obs, start, action, reward, discount, search
            policy / value, episode step, the carry *before* the step) into
            flashbax;
    learn:  lax.scan over updates: sample S sequences that begin at an
            episode's first step (``rmuzero.replay.buffer``), encode each whole
            sequence in one pass with the current parameters, targets from the
            target network re-encoding the same sequences (and, for a fraction
            of them, a fresh search: reanalysis), unroll K steps from R roots
            per sequence, gradient step, target-network update.

The sequence length follows the task (``resolve_sequence_length``): a whole
episode from its first step, so a loss at any step reaches, through the
memory, every observation of that episode before it. Roots are drawn uniformly
over the positions that carry a loss (all of them for a sequence that begins
at a start flag; those from ``burn_in`` on for a segment of a longer episode,
which starts from the actor's stored carry; replay keeps carries only where such
segments can exist, ``system.store_all_carries``). Targets come from
``rmuzero.replay.targets`` (the one place for the target math), which makes
everything past an episode boundary absorbing.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import jumanji
import optax

from rmuzero.agent.acting import ActorState, rollout
from rmuzero.agent.config import AgentConfig, ConfigError, SystemConfig, resolve_sequence_length, roots_for
from rmuzero.agent.evaluation import EvalLoop, Evaluation, make_evaluate
from rmuzero.agent.learning import Learner, LossOutput
from rmuzero.agent.model import Model, make_model
from rmuzero.envs.sources import as_environment, make_environment
from rmuzero.envs.wrappers import AgentEnv, wrap_env
from rmuzero.replay.buffer import Replay, ReplayState, StepRecord, make_replay
from rmuzero.replay.targets import return_scale

Params = Any

__all__ = [
    "ActorState",
    "Agent",
    "EvalLoop",
    "Evaluation",
    "IterationMetrics",
    "LearnBatch",
    "LossOutput",
    "TrainState",
    "make_agent",
]


class TrainState(NamedTuple):
    """Everything a training run threads from one iteration to the next."""

    params: Params
    target_params: Params
    opt_state: optax.OptState
    actor: ActorState
    replay: ReplayState
    key: chex.PRNGKey
    env_steps: chex.Array  # [] int32: environment steps taken (all envs)
    updates: chex.Array  # [] int32: learner updates done


class LearnBatch(NamedTuple):
    """What one update learns from (one device's share): leaves lead with S sequences."""

    sequences: Any  # rmuzero.replay.buffer.Sequences [S, L]
    unroll: Any  # rmuzero.replay.targets.UnrollTargets [S, L, K+1]
    roots: chex.Array  # [S, R] int32


class IterationMetrics(NamedTuple):
    """Means over one iteration (episode sums over the episodes that ended in it)."""

    episode_return_sum: chex.Array  # [] sum of returns of episodes ended this iteration
    episode_length_sum: chex.Array  # []
    episodes: chex.Array  # [] number of episodes ended this iteration
    loss: chex.Array  # [] total loss, mean over updates
    value_loss: chex.Array
    reward_loss: chex.Array
    policy_loss: chex.Array
    consistency_loss: chex.Array
    grad_norm: chex.Array
    updates: chex.Array  # [] int32: learner updates done this iteration (0 while the replay fills)
    targets_outside_support: chex.Array  # [] fraction of value / reward targets the supports clip


@dataclasses.dataclass(frozen=True)
class Agent:
    """Frozen bundle of the agent's parts and pure functions (jit at the call site)."""

    config: AgentConfig
    sequence_length: int  # L, resolved from the config and the task (resolve_sequence_length)
    env: AgentEnv
    model: Model
    learner: Learner
    replay: Replay
    optimizer: optax.GradientTransformation
    init: Callable[[chex.PRNGKey], TrainState]
    collect: Callable[[TrainState], tuple[TrainState, IterationMetrics]]  # act + store only
    train_iteration: Callable[[TrainState], tuple[TrainState, IterationMetrics]]
    ready: Callable[[TrainState], chex.Array]  # [] bool: sequences can be sampled (on every device)
    step: Callable[[TrainState], tuple[TrainState, IterationMetrics]]  # train_iteration once ready, else collect
    sample_batch: Callable[[TrainState, chex.PRNGKey], LearnBatch]  # sequences, targets, roots of one update
    learn: Callable[[TrainState, LearnBatch], tuple[TrainState, tuple]]  # one gradient step on a batch
    train_iterations: Callable[
        [TrainState], tuple[TrainState, IterationMetrics]
    ]  # config.iterations_per_call steps; metrics [k]
    evaluate: Callable  # (params, key) -> Evaluation of config.eval_episodes episodes (returns, lengths, finished [N])


def check_divisible(system: SystemConfig, num_devices: int) -> SystemConfig:
    """One device's share of ``system`` (``num_envs`` and ``batch_size`` are global)."""
    for name in ("num_envs", "batch_size"):
        value = getattr(system, name)
        if value % num_devices:
            raise ConfigError(
                f"system.{name}={value} does not divide over {num_devices} devices; valid: a multiple of "
                f"{num_devices} (or num_devices=1)"
            )
    return dataclasses.replace(
        system, num_envs=system.num_envs // num_devices, batch_size=system.batch_size // num_devices
    )


def make_agent(
    config: AgentConfig,
    *,
    eval_envs: int | None = None,
    environment: jumanji.Environment | tuple | None = None,
    num_devices: int = 1,
    data_axis: str | None = None,
) -> Agent:
    """Builds the agent described by ``config`` (validated already).

    Args:
      config: the agent's configuration.
      eval_envs: environments = episodes of one ``evaluate`` call (scripts/evaluate.py's
        ``episodes=``); default: ``config.eval_episodes`` episodes on ``config.eval_envs``
        environments.
      environment: an environment to train on instead of ``config.env``'s: a jumanji
        environment without auto-reset (discrete or multi-discrete actions, any
        observation) or a gymnax ``(env, params)`` pair (``rmuzero.envs.sources.as_environment``);
        ``config.env`` then only sets the previous action / reward features.
      num_devices: D, devices the training step is split over (``rmuzero.agent.parallel``):
        the functions then describe one device's share, ``num_envs / D`` environments,
        replay rows and ``batch_size / D`` sequences per update, and must run under a
        ``shard_map`` over ``data_axis``; gradients, losses and episode sums are reduced
        over it, so parameters stay identical on every device.
      data_axis: the mesh axis name the functions reduce over (None: one device, no
        collectives).
    """
    system = check_divisible(config.system, num_devices)
    if num_devices > 1 and data_axis is None:
        raise ValueError(f"num_devices={num_devices} needs a data_axis to reduce over")
    global_num_envs = system.num_envs * num_devices

    def device_key(key: chex.PRNGKey) -> chex.PRNGKey:
        """A key of this device's own (environments, samples, searches differ per device)."""
        return key if data_axis is None else jax.random.fold_in(key, jax.lax.axis_index(data_axis))

    def mean_over_devices(tree):
        return tree if data_axis is None else jax.lax.pmean(tree, data_axis)

    def sum_over_devices(tree):
        return tree if data_axis is None else jax.lax.psum(tree, data_axis)

    if environment is not None:
        task = as_environment(environment)
    else:
        task = make_environment(
            config.env.suite,
            config.env.name,
            difficulty=config.env.difficulty,
            params=config.env.params,
            kwargs=config.env.kwargs,
            factory=config.env.factory,
        )

    def build_env(num_envs: int) -> AgentEnv:
        return wrap_env(task, num_envs=num_envs, prev_action=config.env.prev_action, prev_reward=config.env.prev_reward)

    env = build_env(system.num_envs)
    max_episode_length = getattr(task, "max_episode_length", None)
    length = resolve_sequence_length(system, max_episode_length)
    num_actions = env.num_actions
    model = make_model(config, num_actions)
    learner = Learner(model=model, system=system, num_actions=num_actions, roots_per_sequence=roots_for(system, length))
    replay = make_replay(
        num_envs=system.num_envs,
        sequence_length=length,
        max_length_per_env=system.replay_length_per_env,
        sample_batch_size=system.batch_size,
        burn_in=system.burn_in,
        # A stored carry is read only where a sequence begins mid-episode: never when every
        # episode fits the sequence (its observations are at most max_episode_length).
        store_carries=system.store_all_carries or max_episode_length is None or max_episode_length > length,
    )
    optimizer = optax.chain(optax.clip_by_global_norm(system.max_grad_norm), optax.adam(system.learning_rate))

    def sample_batch(state: TrainState, key) -> LearnBatch:
        """This device's sequences, their targets (target network, reanalysis) and unroll roots."""
        sample_key, search_key, root_key = jax.random.split(device_key(key), 3)
        sequences = replay.sample(state.replay, sample_key)
        experience = state.replay.experience
        scale = return_scale(experience.reward, experience.start)  # 1 for POPGym
        scale = scale if data_axis is None else jax.lax.pmax(scale, data_axis)
        unroll, _ = learner.targets(state.target_params, sequences, search_key, scale)
        return LearnBatch(sequences, unroll, learner.sample_roots(sequences, root_key))

    def learn(state: TrainState, batch: LearnBatch) -> tuple[TrainState, tuple[LossOutput, chex.Array, chex.Array]]:
        """One gradient step on ``batch`` (averaged over devices), then the target-network update."""

        def total_loss(p):
            parts = learner.loss(p, batch.sequences, batch.unroll, batch.roots)
            return parts.total, parts

        (_, parts), grads = jax.value_and_grad(total_loss, has_aux=True)(state.params)
        # Every device's batch weighs the same: the mean of the device means is the global mean.
        grads, parts, outside = mean_over_devices((grads, parts, learner.outside_support(batch.unroll)))
        grad_norm = optax.tree.norm(grads)
        step_updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, step_updates)
        updates = state.updates + 1
        refresh = updates % system.target_update_period == 0
        target_params = jax.tree.map(
            lambda t, p: jnp.where(refresh, (1.0 - system.target_tau) * t + system.target_tau * p, t),
            state.target_params,
            params,
        )
        state = state._replace(params=params, target_params=target_params, opt_state=opt_state, updates=updates)
        return state, (parts, grad_norm, outside)

    def update(state: TrainState, key) -> tuple[TrainState, tuple[LossOutput, chex.Array, chex.Array]]:
        """One learner step on a sampled batch of sequences; the actor is untouched."""
        return learn(state, sample_batch(state, key))

    def prepared_updates(state: TrainState, keys) -> tuple[TrainState, tuple[LossOutput, chex.Array, chex.Array]]:
        """``len(keys)`` learner steps whose batches are all prepared first, from ``state``
        (``system.sample_ahead``): the same batches as ``update`` would draw with these keys
        while the target network does not change between them."""
        batches = jax.vmap(lambda k: sample_batch(state, k))(keys)
        return jax.lax.scan(learn, state, batches)

    def collect(state: TrainState) -> tuple[TrainState, IterationMetrics]:
        key, rollout_key = jax.random.split(state.key)
        actor, records, steps = rollout(
            model,
            env,
            state.params,
            state.actor,
            device_key(rollout_key),
            system.rollout_length,
            epsilon=system.exploration_epsilon,
        )
        replay_state = replay.add(state.replay, records)
        done = steps.episode_done.astype(jnp.float32)
        zero = jnp.zeros((), jnp.float32)
        return_sum, length_sum, episodes = sum_over_devices(
            (jnp.sum(steps.episode_return * done), jnp.sum(steps.episode_length * done), jnp.sum(done))
        )
        metrics = IterationMetrics(
            episode_return_sum=return_sum,
            episode_length_sum=length_sum,
            episodes=episodes,
            loss=zero,
            value_loss=zero,
            reward_loss=zero,
            policy_loss=zero,
            consistency_loss=zero,
            grad_norm=zero,
            updates=jnp.zeros((), jnp.int32),
            targets_outside_support=zero,
        )
        state = state._replace(
            actor=actor,
            replay=replay_state,
            key=key,
            env_steps=state.env_steps + global_num_envs * system.rollout_length,
        )
        return state, metrics

    def learn_updates(state: TrainState, metrics: IterationMetrics) -> tuple[TrainState, IterationMetrics]:
        """The ``updates_per_iteration`` learner updates that follow a collect, and their metrics."""
        key, learn_key = jax.random.split(state.key)
        keys = jax.random.split(learn_key, system.updates_per_iteration)
        if system.sample_ahead == 1:
            state, (parts, grad_norm, outside) = jax.lax.scan(update, state, keys)
        else:
            state, grouped = jax.lax.scan(
                prepared_updates, state, keys.reshape((-1, system.sample_ahead) + keys.shape[1:])
            )
            parts, grad_norm, outside = jax.tree.map(
                lambda x: x.reshape((system.updates_per_iteration,) + x.shape[2:]), grouped
            )
        state = state._replace(key=key)
        metrics = metrics._replace(
            loss=jnp.mean(parts.total),
            value_loss=jnp.mean(parts.value),
            reward_loss=jnp.mean(parts.reward),
            policy_loss=jnp.mean(parts.policy),
            consistency_loss=jnp.mean(parts.consistency),
            grad_norm=jnp.mean(grad_norm),
            updates=jnp.asarray(system.updates_per_iteration, jnp.int32),
            targets_outside_support=jnp.mean(outside),
        )
        return state, metrics

    def train_iteration(state: TrainState) -> tuple[TrainState, IterationMetrics]:
        return learn_updates(*collect(state))

    def ready(state: TrainState) -> chex.Array:
        """[] bool: the replay can be sampled (on every device, when there are several)."""
        can = replay.can_sample(state.replay)
        if data_axis is not None:
            can = jax.lax.pmin(can.astype(jnp.int32), data_axis) > 0
        return can

    def step(state: TrainState) -> tuple[TrainState, IterationMetrics]:
        """``train_iteration`` if the replay could be sampled before acting, else ``collect``: the
        acting is outside the branch, so its program is compiled once, not once per branch."""
        learns = ready(state)
        return jax.lax.cond(learns, learn_updates, lambda *collected: collected, *collect(state))

    def train_iterations(state: TrainState) -> tuple[TrainState, IterationMetrics]:
        """``config.iterations_per_call`` steps in one program (metrics stacked, [k])."""
        return jax.lax.scan(lambda s, _: step(s), state, None, length=config.iterations_per_call)

    def init(key: chex.PRNGKey) -> TrainState:
        param_key, env_key, state_key = jax.random.split(key, 3)
        env_state, first = env.reset(device_key(env_key))
        carry = model.network.initialize_carry(system.num_envs)
        params = model.network.init(param_key, carry, (jax.tree.map(lambda x: x[None], first.obs), first.start[None]))
        record = StepRecord(
            obs=jax.tree.map(lambda x: x[0], first.obs),
            start=first.start[0],
            action=jnp.zeros((), jnp.int32),
            reward=jnp.zeros((), jnp.float32),
            discount=jnp.zeros((), jnp.float32),
            search_policy=jnp.zeros((num_actions,), jnp.float32),
            search_value=jnp.zeros((), jnp.float32),
            carry=jax.tree.map(lambda x: x[0], carry),
            episode_step=jnp.zeros((), jnp.int32),
            action_mask=None if first.action_mask is None else first.action_mask[0],
        )
        return TrainState(
            params=params,
            target_params=params,
            opt_state=optimizer.init(params),
            actor=ActorState(env_state, first, carry),
            replay=replay.init(record),
            key=state_key,
            env_steps=jnp.zeros((), jnp.int32),
            updates=jnp.zeros((), jnp.int32),
        )

    return Agent(
        config=config,
        sequence_length=length,
        env=env,
        model=model,
        learner=learner,
        replay=replay,
        optimizer=optimizer,
        init=init,
        collect=collect,
        train_iteration=train_iteration,
        ready=ready,
        step=step,
        sample_batch=sample_batch,
        learn=learn,
        train_iterations=train_iterations,
        evaluate=make_evaluate(
            model,
            build_env(eval_envs or config.eval_envs or config.eval_episodes),
            episodes=config.eval_episodes if eval_envs is None else eval_envs,
            temperature=config.eval_temperature,
        ),
    )
