"""Learning: targets (with reanalysis), unroll roots and the loss over sampled sequences.

Dimensions: S sequences, L sequence length, R unroll roots per sequence, K
unroll steps, A actions, D latent size, S_v / S_r value / reward support sizes.

A sequence is encoded whole, in one pass, from the carry stored before its
first step (irrelevant when that step is an episode start: the memory is reset
there). The target network re-encodes the same sequences for bootstrap values;
for the first ``reanalysed_sequences`` of a batch a fresh search at every
position gives the policy targets and, as bootstrap, the value of that improved
policy. The loss unrolls the dynamics K steps from R roots per sequence, drawn
uniformly over the positions that carry a loss; with ``consistency_loss_weight > 0`` it
also pulls the dynamics' latent k steps on towards the encoder's latent of o_{t+k}
(stop-gradient on the encoder side; EfficientZero's consistency loss, one minus the cosine
similarity, here of the mean-centred latents and without projection heads). Targets come from
``rmuzero.replay.targets`` (the one place for the target math).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from rmuzero.agent.config import SystemConfig
from rmuzero.agent.model import Model, Params
from rmuzero.networks.muzero import MuZeroNetwork
from rmuzero.networks.transforms import h, scalar_to_two_hot
from rmuzero.replay.buffer import Sequences
from rmuzero.replay.targets import UnrollTargets, batched_unroll_targets
from rmuzero.search import SearchOutput


class LossOutput(NamedTuple):
    total: chex.Array  # [] weighted sum of the three
    value: chex.Array  # [] value cross-entropy, mean over roots with a loss
    reward: chex.Array  # []
    policy: chex.Array  # []
    consistency: chex.Array  # [] 1 - centred cosine of dynamics and encoder latents, mean over roots with a
    #                          loss of the 1/K-weighted sum over unroll steps (0 when its weight is 0)


def _scale_gradient(x: chex.Array, scale: float) -> chex.Array:
    if scale == 1.0:
        return x
    return x * scale + jax.lax.stop_gradient(x) * (1.0 - scale)


def _time_major(x: chex.Array) -> chex.Array:
    return jnp.swapaxes(x, 0, 1)


def _centred_cosine(a: chex.Array, b: chex.Array) -> chex.Array:
    """Cosine similarity along the last axis of ``a`` and ``b`` each minus its mean there.

    Latents are min-max scaled to [0, 1], so a plain cosine would be close to 1 for any two."""
    a = a - jnp.mean(a, axis=-1, keepdims=True)
    b = b - jnp.mean(b, axis=-1, keepdims=True)
    norms = jnp.sqrt(jnp.sum(a * a, axis=-1) * jnp.sum(b * b, axis=-1))
    return jnp.sum(a * b, axis=-1) / jnp.maximum(norms, 1e-8)


def _gather(x: chex.Array, index: chex.Array) -> chex.Array:
    """Per sequence: ``x [S, L, ...]`` at ``index [S, ...]`` -> ``[S, ..., ...]``."""
    return jax.vmap(lambda row, at: row[at])(x, index)


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: its bound methods are jitted
class Learner:
    """Targets, roots and loss for sampled sequences (pure functions; jit at the call site)."""

    model: Model
    system: SystemConfig
    num_actions: int
    roots_per_sequence: int  # R

    def sequence_latents(self, params: Params, sequences: Sequences, positions: chex.Array | None = None) -> chex.Array:
        """``[L, S, D]``: each sequence encoded whole from its stored first carry; with
        ``positions [S, R]`` the latents at those positions only, ``[R, S, D]`` (the memory
        still runs over the whole sequence; only the per-step readout is restricted)."""
        steps = sequences.steps
        _, latents = self.model.encode(
            params,
            sequences.carry,
            jax.tree.map(_time_major, steps.obs),
            _time_major(steps.start),
            None if positions is None else _time_major(positions),
        )
        return latents

    def targets(
        self, target_params: Params, sequences: Sequences, key: chex.PRNGKey, reward_scale: chex.Array | float = 1.0
    ) -> tuple[UnrollTargets, SearchOutput | None]:
        """``UnrollTargets`` with fields ``[S, L, K+1]`` and the reanalysis search (or None);
        rewards are divided by ``reward_scale`` (``rmuzero.replay.targets.return_scale``), in
        whose units the network's values and rewards are."""
        system, steps = self.system, sequences.steps
        latents = jax.lax.stop_gradient(self.sequence_latents(target_params, sequences))
        bootstrap = _time_major(self.model.predict(target_params, latents).value)  # [S, L]
        policy = steps.search_policy  # [S, L, A]
        reanalysed = None
        count = system.reanalysed_sequences
        if count > 0:
            flat = _time_major(latents)[:count].reshape((-1, latents.shape[-1]))  # [count * L, D]
            mask = None if steps.action_mask is None else ~steps.action_mask[:count].reshape((-1, self.num_actions))
            reanalysed = self.model.search(target_params, key, flat, mask)
            length = steps.start.shape[1]
            policy = policy.at[:count].set(reanalysed.action_weights.reshape((count, length, self.num_actions)))
            # The value of the improved policy, consistent with the policy target.
            bootstrap = bootstrap.at[:count].set(reanalysed.improved_value.reshape((count, length)))
        unroll = batched_unroll_targets(
            steps.reward / reward_scale,
            steps.discount,
            steps.start,
            jax.lax.stop_gradient(bootstrap),
            jax.lax.stop_gradient(policy),
            num_unroll_steps=system.num_unroll_steps,
            discount_factor=system.discount,
            td_steps=system.td_steps if system.td_lambda is None else None,
            td_lambda=system.td_lambda,
        )
        return unroll, reanalysed

    def outside_support(self, unroll: UnrollTargets) -> chex.Array:
        """``[]`` fraction of the data value and reward targets that the supports cannot
        represent (clipped by the two-hot encoding): h(x) outside [min_value, max_value]."""

        def outside(x, support):
            y = h(x)
            return (y < support.min_value) | (y > support.max_value)

        data = unroll.in_window & unroll.in_episode
        bad = jnp.sum(outside(unroll.value, self.model.value_support) & data)
        bad += jnp.sum(outside(unroll.reward, self.model.reward_support) & unroll.reward_mask)
        return bad / jnp.maximum(jnp.sum(data) + jnp.sum(unroll.reward_mask), 1)

    def loss_positions(self, sequences: Sequences) -> chex.Array:
        """``[S, L]`` bool: positions that carry a loss (all of a sequence that begins at a
        start flag; from burn_in on for one that begins at a stored carry mid-episode)."""
        start = sequences.steps.start
        return (jnp.arange(start.shape[1])[None, :] >= self.system.burn_in) | start[:, :1]

    def sample_roots(self, sequences: Sequences, key: chex.PRNGKey) -> chex.Array:
        """``[S, R]`` int32: R distinct positions per sequence, uniform over its loss positions."""
        scores = jax.random.uniform(key, sequences.steps.start.shape)
        scores = jnp.where(self.loss_positions(sequences), scores, -1.0)
        return jax.lax.top_k(scores, self.roots_per_sequence)[1].astype(jnp.int32)

    def loss(self, params: Params, sequences: Sequences, unroll: UnrollTargets, roots: chex.Array) -> LossOutput:
        """Mean over the given roots ``[S, R]`` that carry a loss of the K-step unroll losses."""
        system, model, steps = self.system, self.model, sequences.steps
        K = system.num_unroll_steps
        length = steps.start.shape[1]
        if system.consistency_loss_weight > 0:  # latents k steps on from every root, too
            sequence_latents = _time_major(self.sequence_latents(params, sequences))  # [S, L, D]
            latents = _gather(sequence_latents, roots)  # [S, R, D]
        else:  # read out at the roots only: no compute at the positions without a loss
            latents = _time_major(self.sequence_latents(params, sequences, roots))  # [S, R, D]
        # Actions a_{t+k} for k < K, clipped at the sequence's end (masked there).
        positions = jnp.minimum(roots[..., None] + jnp.arange(K)[None, None, :], length - 1)  # [S, R, K]
        actions = _gather(steps.action, positions)  # [S, R, K]
        unroll = jax.tree.map(lambda x: _gather(x, roots), unroll)  # fields [S, R, K+1, ...]

        def unroll_step(latent, action):
            out = model.network.apply(params, latent, action, method=MuZeroNetwork.dynamics)
            next_latent = _scale_gradient(out.next_latent, system.dynamics_gradient_scale)
            return next_latent, (latent, out.reward_logits)

        last, (step_latents, reward_logits) = jax.lax.scan(
            unroll_step, latents, jnp.moveaxis(actions, -1, 0)
        )  # step_latents [K, S, R, D], reward_logits [K, S, R, S_r]
        all_latents = jnp.concatenate([step_latents, last[None]], axis=0)  # [K+1, S, R, D]
        heads = model.network.apply(
            params, _scale_gradient(all_latents, system.prediction_gradient_scale), method=MuZeroNetwork.predict
        )
        value_logits = jnp.moveaxis(heads.value_logits, 0, 2)  # [S, R, K+1, S_v]
        policy_logits = jnp.moveaxis(heads.policy_logits, 0, 2)  # [S, R, K+1, A]
        reward_logits = jnp.moveaxis(reward_logits, 0, 2)  # [S, R, K, S_r]

        root = _gather(self.loss_positions(sequences), roots)[..., None]  # [S, R, 1]: roots with a loss
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
            value_logits, scalar_to_two_hot(unroll.value, support=model.value_support)
        )
        policy_ce = optax.softmax_cross_entropy(policy_logits, unroll.policy)
        reward_ce = optax.softmax_cross_entropy(
            reward_logits, scalar_to_two_hot(unroll.reward[..., 1:], support=model.reward_support)
        )
        if system.consistency_loss_weight > 0:
            # The dynamics' latent k steps on against the encoder's latent of o_{t+k} (the same
            # episode, inside the sequence), stop-gradient on the encoder side.
            ahead = jnp.minimum(roots[..., None] + jnp.arange(1, K + 1)[None, None, :], length - 1)  # [S, R, K]
            observed = jax.lax.stop_gradient(_gather(sequence_latents, ahead))  # [S, R, K, D]
            predicted = jnp.moveaxis(all_latents[1:], 0, 2)  # [S, R, K, D]
            data = unroll.in_episode[..., 1:] & unroll.in_window[..., 1:]  # o_{t+k} in t's episode and the sequence
            consistency_loss = masked_mean(1.0 - _centred_cosine(predicted, observed), data, step_weight[1:])
        else:
            consistency_loss = jnp.zeros((), jnp.float32)
        value_loss = masked_mean(value_ce, known, step_weight)
        policy_loss = masked_mean(policy_ce, known, step_weight)
        reward_loss = masked_mean(reward_ce, reward_known, step_weight[1:])
        total = (
            system.value_loss_weight * value_loss
            + system.policy_loss_weight * policy_loss
            + system.reward_loss_weight * reward_loss
            + system.consistency_loss_weight * consistency_loss
        )
        return LossOutput(total, value_loss, reward_loss, policy_loss, consistency_loss)
