"""FFM-MuZero: acting, learning and reanalysis as pure functions.

Dimensions: B environments, T acting steps per iteration, S sequences per
update, L sequence length, R unroll roots per sequence, K unroll steps, A
actions, D latent size, F observation size.

One iteration (``train_iteration``, one jit) is::

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
which starts from the actor's stored carry). Targets come from
``rmuzero.replay.targets`` (the one place for the target math), which makes
everything past an episode boundary absorbing.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import jumanji
import optax

import rmuzero.envs as rmuzero_envs

from rmuzero.agent.config import AgentConfig, resolve_sequence_length, roots_for
from rmuzero.envs.wrappers import AgentEnv, AgentState, AgentStep, make_agent_env, wrap_env
from rmuzero.networks.muzero import MuZeroNetwork
from rmuzero.networks.transforms import DiscreteSupport, logits_to_scalar, scalar_to_two_hot
from rmuzero.replay.buffer import Replay, ReplayState, Sequences, StepRecord, make_replay
from rmuzero.replay.targets import UnrollTargets, batched_unroll_targets
from rmuzero.search import Prediction, SearchOutput, Transition, run_search, select_action

Params = Any


class ActorState(NamedTuple):
    """Acting state of B environments."""

    env_state: AgentState
    step: AgentStep  # the timestep carrying o_t (obs [B, F], start [B], ...)
    carry: Any  # encoder carry before consuming o_t, leaves [B, ...]


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


class IterationMetrics(NamedTuple):
    """Means over one iteration (episode sums over the episodes that ended in it)."""

    episode_return_sum: chex.Array  # [] sum of returns of episodes ended this iteration
    episode_length_sum: chex.Array  # []
    episodes: chex.Array  # [] number of episodes ended this iteration
    loss: chex.Array  # [] total loss, mean over updates
    value_loss: chex.Array
    reward_loss: chex.Array
    policy_loss: chex.Array
    grad_norm: chex.Array


class EvalLoop(NamedTuple):
    """State of the evaluation loop over E environments."""

    env_state: AgentState
    step: AgentStep
    carry: Any  # encoder carry, leaves [E, ...]
    key: chex.PRNGKey
    finished: chex.Array  # [E] bool: the first episode has ended
    returns: chex.Array  # [E] return of the first episode (0 until it ends)
    lengths: chex.Array  # [E] its length
    count: chex.Array  # [] steps taken


class LossOutput(NamedTuple):
    total: chex.Array
    value: chex.Array
    reward: chex.Array
    policy: chex.Array


@dataclasses.dataclass(frozen=True)
class Agent:
    """Frozen bundle of the agent's parts and pure functions (jit at the call site)."""

    config: AgentConfig
    sequence_length: int  # L, resolved from the config and the task (resolve_sequence_length)
    env: AgentEnv
    network: MuZeroNetwork
    replay: Replay
    optimizer: optax.GradientTransformation
    value_support: DiscreteSupport
    reward_support: DiscreteSupport
    init: Callable[[chex.PRNGKey], TrainState]
    collect: Callable[[TrainState], tuple[TrainState, IterationMetrics]]  # act + store only
    train_iteration: Callable[[TrainState], tuple[TrainState, IterationMetrics]]
    encode: Callable  # (params, carry, obs [T, B, F], start [T, B]) -> (carry, latents [T, B, D])
    search: Callable  # (params, key, latent [N, D], invalid [N, A] | None) -> SearchOutput
    targets: Callable  # (target_params, sequences, key) -> (UnrollTargets [S, L, K+1], reanalysed SearchOutput)
    sample_roots: Callable  # (sequences, key) -> roots [S, R] int32, distinct positions with a loss
    loss: Callable  # (params, sequences, targets, roots [S, R]) -> LossOutput
    evaluate: Callable  # (params, key) -> (returns [E], lengths [E]); E = eval_envs


def _scale_gradient(x: chex.Array, scale: float) -> chex.Array:
    return x * scale + jax.lax.stop_gradient(x) * (1.0 - scale)


def _time_major(x: chex.Array) -> chex.Array:
    return jnp.swapaxes(x, 0, 1)


def make_agent(
    config: AgentConfig,
    *,
    eval_envs: int | None = None,
    environment: jumanji.Environment | None = None,
) -> Agent:
    """Builds the agent described by ``config`` (validated already).

    Args:
      config: the agent's configuration.
      eval_envs: environments (= episodes) of one ``evaluate`` call; default
        ``config.eval_episodes``.
      environment: a jumanji environment (no auto-reset, float32 vector
        observations, discrete actions) to train on instead of the registry's
        ``config.env.name``; ``config.env`` then only sets the previous
        action / reward features.
    """
    system = config.system

    def build_env(num_envs: int) -> AgentEnv:
        features = dict(prev_action=config.env.prev_action, prev_reward=config.env.prev_reward)
        if environment is not None:
            return wrap_env(environment, num_envs=num_envs, **features)
        return make_agent_env(config.env.name, difficulty=config.env.difficulty, num_envs=num_envs, **features)

    env = build_env(system.num_envs)
    task = environment if environment is not None else rmuzero_envs.make(
        config.env.name, difficulty=config.env.difficulty)
    length = resolve_sequence_length(system, getattr(task, "max_episode_length", None))
    network = MuZeroNetwork(
        num_actions=env.num_actions,
        memory=config.network.memory,
        features=config.network.features,
        num_layers=config.network.num_layers,
        latent_size=config.network.latent_size,
        memory_kwargs=config.network.memory_kwargs,
        head_sizes=config.network.head_sizes,
        value_bins=config.network.value_bins,
        reward_bins=config.network.reward_bins,
    )
    bound = config.network.support_bound
    value_support = DiscreteSupport(-bound, bound, config.network.value_bins)
    reward_support = DiscreteSupport(-bound, bound, config.network.reward_bins)
    replay = make_replay(
        num_envs=system.num_envs,
        sequence_length=length,
        max_length_per_env=system.replay_length_per_env,
        sample_batch_size=system.batch_size,
        burn_in=system.burn_in,
    )
    optimizer = optax.chain(
        optax.clip_by_global_norm(system.max_grad_norm), optax.adam(system.learning_rate)
    )
    num_actions = env.num_actions
    K = system.num_unroll_steps
    R = roots_for(system, length)

    # ----- model functions ---------------------------------------------------------
    def encode(params, carry, obs, start):
        return network.apply(params, carry, (obs, start), method=MuZeroNetwork.encode)

    def prediction_fn(params, latent) -> Prediction:
        out = network.apply(params, latent, method=MuZeroNetwork.predict)
        value = logits_to_scalar(out.value_logits, support=value_support)
        return Prediction(out.policy_logits, value)

    def dynamics_fn(params, latent, action) -> Transition:
        out = network.apply(params, latent, action, method=MuZeroNetwork.dynamics)
        reward = logits_to_scalar(out.reward_logits, support=reward_support)
        return Transition(reward, out.next_latent, None)

    def search(params, key, latent, invalid_actions=None) -> SearchOutput:
        return run_search(
            params,
            key,
            latent,
            prediction_fn=prediction_fn,
            dynamics_fn=dynamics_fn,
            config=config.search,
            invalid_actions=invalid_actions,
        )

    def invalid(step: AgentStep):
        return None if step.action_mask is None else ~step.action_mask

    # ----- acting ------------------------------------------------------------------
    def act_step(params, actor: ActorState, key) -> tuple[ActorState, tuple[StepRecord, AgentStep]]:
        step = actor.step
        carry, latent = encode(params, actor.carry, step.obs[None], step.start[None])
        out = search(params, key, latent[0], invalid(step))
        env_state, next_step = env.step(actor.env_state, out.action)
        record = StepRecord(
            obs=step.obs,
            start=step.start,
            action=out.action.astype(jnp.int32),
            reward=next_step.reward,
            discount=next_step.discount,
            search_policy=out.action_weights,
            search_value=out.root_value,
            carry=actor.carry,
            episode_step=actor.env_state.length_so_far,
            action_mask=step.action_mask,
        )
        return ActorState(env_state, next_step, carry), (record, next_step)

    def rollout(params, actor: ActorState, key):
        keys = jax.random.split(key, system.rollout_length)
        actor, (records, steps) = jax.lax.scan(functools.partial(act_step, params), actor, keys)
        records = jax.tree.map(_time_major, records)  # [B, T, ...]
        return actor, records, steps

    # ----- targets and reanalysis ---------------------------------------------------
    def sequence_latents(params, sequences: Sequences):
        steps = sequences.steps
        _, latents = encode(params, sequences.carry, _time_major(steps.obs), _time_major(steps.start))
        return latents  # [L, S, D]

    def targets(target_params, sequences: Sequences, key) -> tuple[UnrollTargets, SearchOutput | None]:
        steps = sequences.steps
        latents = jax.lax.stop_gradient(sequence_latents(target_params, sequences))
        values = prediction_fn(target_params, latents).value  # [L, S]
        bootstrap = _time_major(values)  # [S, L]
        policy = steps.search_policy  # [S, L, A]
        reanalysed = None
        count = system.reanalysed_sequences
        if count > 0:
            flat = _time_major(latents)[:count].reshape((-1, latents.shape[-1]))  # [R'*L, D]
            mask = None if steps.action_mask is None else ~steps.action_mask[:count].reshape((-1, num_actions))
            reanalysed = search(target_params, key, flat, mask)
            length = steps.obs.shape[1]
            policy = policy.at[:count].set(reanalysed.action_weights.reshape((count, length, num_actions)))
            # The value of the improved policy, consistent with the policy target.
            bootstrap = bootstrap.at[:count].set(reanalysed.improved_value.reshape((count, length)))
        unroll = batched_unroll_targets(
            steps.reward,
            steps.discount,
            steps.start,
            jax.lax.stop_gradient(bootstrap),
            jax.lax.stop_gradient(policy),
            num_unroll_steps=K,
            discount_factor=system.discount,
            td_steps=system.td_steps if system.td_lambda is None else None,
            td_lambda=system.td_lambda,
        )
        return unroll, reanalysed

    # ----- loss --------------------------------------------------------------------
    def loss_positions(sequences: Sequences) -> chex.Array:
        """[S, L] bool: positions that carry a loss (all of a sequence that begins at a start
        flag; from burn_in on for one that begins at a stored carry mid-episode)."""
        steps = sequences.steps
        length = steps.start.shape[1]
        return (jnp.arange(length)[None, :] >= system.burn_in) | steps.start[:, :1]

    def sample_roots(sequences: Sequences, key) -> chex.Array:
        """[S, R] int32: R distinct positions per sequence, uniform over its loss positions."""
        scores = jax.random.uniform(key, sequences.steps.start.shape)
        scores = jnp.where(loss_positions(sequences), scores, -1.0)
        return jax.lax.top_k(scores, R)[1].astype(jnp.int32)

    def loss(params, sequences: Sequences, unroll: UnrollTargets, roots: chex.Array) -> LossOutput:
        steps = sequences.steps
        length = steps.start.shape[1]
        gather = jax.vmap(lambda x, index: x[index])  # [S, L, ...], [S, R, ...] -> [S, R, ...]
        latents = gather(_time_major(sequence_latents(params, sequences)), roots)  # [S, R, D]
        # Actions a_{t+k} for k < K, clipped at the sequence's end (masked there).
        positions = jnp.minimum(roots[..., None] + jnp.arange(K)[None, None, :], length - 1)  # [S, R, K]
        actions = gather(steps.action, positions)  # [S, R, K]
        unroll = jax.tree.map(lambda x: gather(x, roots), unroll)  # fields [S, R, K+1, ...]

        def unroll_step(latent, action):
            out = network.apply(params, latent, action, method=MuZeroNetwork.dynamics)
            next_latent = _scale_gradient(out.next_latent, system.dynamics_gradient_scale)
            return next_latent, (latent, out.reward_logits)

        last, (step_latents, reward_logits) = jax.lax.scan(
            unroll_step, latents, jnp.moveaxis(actions, -1, 0)
        )  # step_latents [K, S, R, D], reward_logits [K, S, R, S_r]
        all_latents = jnp.concatenate([step_latents, last[None]], axis=0)  # [K+1, S, R, D]
        heads = network.apply(params, all_latents, method=MuZeroNetwork.predict)
        value_logits = jnp.moveaxis(heads.value_logits, 0, 2)  # [S, R, K+1, S_v]
        policy_logits = jnp.moveaxis(heads.policy_logits, 0, 2)  # [S, R, K+1, A]
        reward_logits = jnp.moveaxis(reward_logits, 0, 2)  # [S, R, K, S_r]

        root = gather(loss_positions(sequences), roots)[..., None]  # [S, R, 1]: roots with a loss
        num_roots = jnp.maximum(jnp.sum(root), 1).astype(jnp.float32)
        known = unroll.in_window | ~unroll.in_episode  # value / policy targets that are data or absorbing
        # The reward of step k is known when it is data, or when step k-1 is already absorbing.
        previous_absorbing = jnp.concatenate(
            [jnp.zeros_like(unroll.in_episode[..., :1]), ~unroll.in_episode[..., :-1]], axis=-1
        )
        reward_known = (unroll.reward_mask | previous_absorbing)[..., 1:]  # [S, R, K]
        # MuZero: the root step has weight 1, each unrolled step 1/K.
        step_weight = jnp.concatenate([jnp.ones((1,)), jnp.full((K,), 1.0 / max(K, 1))])  # [K+1]

        def masked_mean(per_entry, mask, weight):
            return jnp.sum(per_entry * (mask & root).astype(jnp.float32) * weight) / num_roots

        value_ce = optax.softmax_cross_entropy(
            value_logits, scalar_to_two_hot(unroll.value, support=value_support)
        )
        policy_ce = optax.softmax_cross_entropy(policy_logits, unroll.policy)
        reward_ce = optax.softmax_cross_entropy(
            reward_logits, scalar_to_two_hot(unroll.reward[..., 1:], support=reward_support)
        )
        value_loss = masked_mean(value_ce, known, step_weight)
        policy_loss = masked_mean(policy_ce, known, step_weight)
        reward_loss = masked_mean(reward_ce, reward_known, step_weight[1:])
        total = (
            system.value_loss_weight * value_loss
            + system.policy_loss_weight * policy_loss
            + system.reward_loss_weight * reward_loss
        )
        return LossOutput(total, value_loss, reward_loss, policy_loss)

    # ----- learning ----------------------------------------------------------------
    def update(state: TrainState, key) -> tuple[TrainState, tuple[LossOutput, chex.Array]]:
        """One learner step on a sampled batch of sequences; the actor is untouched."""
        sample_key, search_key, root_key = jax.random.split(key, 3)
        sequences = replay.sample(state.replay, sample_key)
        unroll, _ = targets(state.target_params, sequences, search_key)
        roots = sample_roots(sequences, root_key)

        def total_loss(p):
            parts = loss(p, sequences, unroll, roots)
            return parts.total, parts

        (_, parts), grads = jax.value_and_grad(total_loss, has_aux=True)(state.params)
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
        return state, (parts, grad_norm)

    def collect(state: TrainState) -> tuple[TrainState, IterationMetrics]:
        key, rollout_key = jax.random.split(state.key)
        actor, records, steps = rollout(state.params, state.actor, rollout_key)
        replay_state = replay.add(state.replay, records)
        done = steps.episode_done.astype(jnp.float32)
        zero = jnp.zeros((), jnp.float32)
        metrics = IterationMetrics(
            episode_return_sum=jnp.sum(steps.episode_return * done),
            episode_length_sum=jnp.sum(steps.episode_length * done),
            episodes=jnp.sum(done),
            loss=zero, value_loss=zero, reward_loss=zero, policy_loss=zero, grad_norm=zero,
        )
        state = state._replace(
            actor=actor,
            replay=replay_state,
            key=key,
            env_steps=state.env_steps + system.num_envs * system.rollout_length,
        )
        return state, metrics

    def train_iteration(state: TrainState) -> tuple[TrainState, IterationMetrics]:
        state, metrics = collect(state)
        key, learn_key = jax.random.split(state.key)
        state, (parts, grad_norm) = jax.lax.scan(
            update, state, jax.random.split(learn_key, system.updates_per_iteration)
        )
        state = state._replace(key=key)
        metrics = metrics._replace(
            loss=jnp.mean(parts.total), value_loss=jnp.mean(parts.value), reward_loss=jnp.mean(parts.reward),
            policy_loss=jnp.mean(parts.policy), grad_norm=jnp.mean(grad_norm),
        )
        return state, metrics

    # ----- init --------------------------------------------------------------------
    def init(key: chex.PRNGKey) -> TrainState:
        param_key, env_key, state_key = jax.random.split(key, 3)
        env_state, first = env.reset(env_key)
        carry = network.initialize_carry(system.num_envs)
        params = network.init(param_key, carry, (first.obs[None], first.start[None]))
        record = StepRecord(
            obs=first.obs[0],
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

    # ----- evaluation --------------------------------------------------------------
    num_eval_envs = eval_envs or config.eval_episodes
    eval_env = build_env(num_eval_envs)

    def evaluate(params, key, max_steps: int = 100_000):
        """Greedy (temperature 0) search policy on ``E = eval_envs`` environments:
        the first complete episode of each. Returns ``(returns [E], lengths [E])``."""
        num_envs = num_eval_envs
        reset_key, key = jax.random.split(key)
        env_state, step = eval_env.reset(reset_key)
        carry = network.initialize_carry(num_envs)
        zeros = jnp.zeros((num_envs,), jnp.float32)

        def cond(loop: EvalLoop):
            return (~jnp.all(loop.finished)) & (loop.count < max_steps)

        def body(loop: EvalLoop) -> EvalLoop:
            key, search_key, select_key = jax.random.split(loop.key, 3)
            carry, latent = encode(params, loop.carry, loop.step.obs[None], loop.step.start[None])
            out = search(params, search_key, latent[0], invalid(loop.step))
            action = select_action(select_key, out, temperature=0.0)
            env_state, step = eval_env.step(loop.env_state, action)
            newly = step.episode_done & ~loop.finished
            return EvalLoop(
                env_state=env_state,
                step=step,
                carry=carry,
                key=key,
                finished=loop.finished | step.episode_done,
                returns=jnp.where(newly, step.episode_return, loop.returns),
                lengths=jnp.where(newly, step.episode_length.astype(jnp.float32), loop.lengths),
                count=loop.count + 1,
            )

        loop = EvalLoop(env_state, step, carry, key, jnp.zeros((num_envs,), bool), zeros, zeros, jnp.zeros((), jnp.int32))
        loop = jax.lax.while_loop(cond, body, loop)
        return loop.returns, loop.lengths

    return Agent(
        config=config,
        sequence_length=length,
        env=env,
        network=network,
        replay=replay,
        optimizer=optimizer,
        value_support=value_support,
        reward_support=reward_support,
        init=init,
        collect=collect,
        train_iteration=train_iteration,
        encode=encode,
        search=search,
        targets=targets,
        sample_roots=sample_roots,
        loss=loss,
        evaluate=evaluate,
    )
