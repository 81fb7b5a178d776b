"""MCTS over a learned model: the one place that calls mctx.

Dimensions: B batch, D latent width, A actions, N = ``num_simulations``.

The learned model is two plain functions of ``(params, ...)`` (``PredictionFn``
and ``DynamicsFn``); this module does not know how they are built. It turns
them into an ``mctx.RootFnOutput`` and an ``mctx.RecurrentFn``, runs
``mctx.gumbel_muzero_policy`` (default) or ``mctx.muzero_policy``, and returns
a ``SearchOutput``. ``select_action`` picks an action from a finished search
at a given temperature (evaluation).

Tree discount: every edge of the tree carries ``gamma * continuation``, where
``continuation`` is the dynamics' predicted probability that the episode goes
on (1 when the dynamics predicts none). A predicted terminal (continuation 0)
therefore cuts every reward and value below it out of the return seen above it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import mctx

from rmuzero.validation import is_int, is_real

Params = Any  # a pytree of arrays, forwarded untouched to the model functions


class Prediction(NamedTuple):
    """Output of a ``PredictionFn`` for a batch of latents.

    policy_logits: ``[B, A]`` unnormalised log-probabilities of the prior policy.
    value: ``[B]`` scalar value estimate (already decoded from any categorical
      head by the caller).
    """

    policy_logits: chex.Array  # [B, A]
    value: chex.Array  # [B]


class Transition(NamedTuple):
    """Output of a ``DynamicsFn`` for a batch of (latent, action) pairs.

    reward: ``[B]`` scalar predicted reward of the transition.
    next_latent: ``[B, D]`` latent of the state reached.
    discount: ``[B]`` predicted continuation in [0, 1] (0: the transition ends
      the episode), or ``None`` when the model does not predict termination.
    """

    reward: chex.Array  # [B]
    next_latent: chex.Array  # [B, D]
    discount: Optional[chex.Array]  # [B] or None


PredictionFn = Callable[[Params, chex.Array], Prediction]
"""``(params, latent [B, D]) -> Prediction(policy_logits [B, A], value [B])``."""

DynamicsFn = Callable[[Params, chex.Array, chex.Array], Transition]
"""``(params, latent [B, D], action [B] int32) -> Transition(reward [B],
next_latent [B, D], discount [B] or None)``."""

_POLICIES = ("gumbel_muzero", "muzero")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """Hyperparameters of one search; frozen and hashable (usable as a jit static).

    policy: ``"gumbel_muzero"`` (works with few simulations) or ``"muzero"``
      (PUCT with Dirichlet noise at the root).
    num_simulations: N, simulations per search (> 0).
    discount: gamma in (0, 1], the per-step discount of the tree.
    max_depth: deepest number of edges from the root a simulation may expand
      (> 0), or None for no limit beyond N.
    max_num_considered_actions: gumbel only: actions sampled at the root for
      sequential halving (> 0).
    gumbel_scale: gumbel only: scale of the root Gumbel noise (>= 0; 0 makes
      the search deterministic).
    rescale_values: gumbel only: the completed Q-values are min-max normalised
      over each node's children before sigma (mctx's default, True); False
      leaves them in the value's units (the return scale).
    rescale_floor: gumbel only: the smallest spread of Q that the min-max
      normalisation divides by, in return units (mctx's ``epsilon``, > 0).
      mctx's 1e-8 stretches any spread, noise included, to [0, 1]; a floor
      of the order of one step's reward leaves smaller spreads small.
    dirichlet_alpha: muzero only: concentration of the root Dirichlet noise (> 0).
    dirichlet_fraction: muzero only: weight of that noise in [0, 1].
    pb_c_init: muzero only: PUCT constant c1 (>= 0).
    pb_c_base: muzero only: PUCT constant c2 (> 0).
    temperature: muzero only: the returned action is sampled from
      ``visit_probs ** (1 / temperature)`` (>= 0; 0 = most visited).
    """

    policy: str = "gumbel_muzero"
    num_simulations: int = 16
    discount: float = 0.99
    max_depth: Optional[int] = None
    max_num_considered_actions: int = 16
    gumbel_scale: float = 1.0
    rescale_values: bool = True
    rescale_floor: float = 1e-8
    dirichlet_alpha: float = 0.3
    dirichlet_fraction: float = 0.25
    pb_c_init: float = 1.25
    pb_c_base: float = 19652.0
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.policy not in _POLICIES:
            raise ValueError(f"SearchConfig.policy={self.policy!r}; valid: {', '.join(_POLICIES)}")
        if not is_int(self.num_simulations) or self.num_simulations <= 0:
            raise ValueError(f"SearchConfig.num_simulations={self.num_simulations!r}; valid: an int > 0")
        if not is_real(self.discount) or not 0.0 < self.discount <= 1.0:
            raise ValueError(f"SearchConfig.discount={self.discount!r}; valid: a float in (0, 1]")
        if self.max_depth is not None and (not is_int(self.max_depth) or self.max_depth <= 0):
            raise ValueError(f"SearchConfig.max_depth={self.max_depth!r}; valid: None or an int > 0")
        if not is_int(self.max_num_considered_actions) or self.max_num_considered_actions <= 0:
            raise ValueError(
                f"SearchConfig.max_num_considered_actions={self.max_num_considered_actions!r}; valid: an int > 0"
            )
        for name, lower, inclusive in (
            ("gumbel_scale", 0.0, True),
            ("dirichlet_alpha", 0.0, False),
            ("pb_c_init", 0.0, True),
            ("pb_c_base", 0.0, False),
            ("temperature", 0.0, True),
        ):
            value = getattr(self, name)
            ok = is_real(value) and (value >= lower if inclusive else value > lower)
            if not ok:
                bound = ">=" if inclusive else ">"
                raise ValueError(f"SearchConfig.{name}={value!r}; valid: a float {bound} {lower}")
        if not is_real(self.dirichlet_fraction) or not (0.0 <= self.dirichlet_fraction <= 1.0):
            raise ValueError(f"SearchConfig.dirichlet_fraction={self.dirichlet_fraction!r}; valid: a float in [0, 1]")
        if not isinstance(self.rescale_values, bool):
            raise ValueError(f"SearchConfig.rescale_values={self.rescale_values!r}; valid: true or false")
        if not is_real(self.rescale_floor) or not self.rescale_floor > 0.0:
            raise ValueError(f"SearchConfig.rescale_floor={self.rescale_floor!r}; valid: a float > 0")


@chex.dataclass(frozen=True)
class SearchOutput:
    """Result of ``run_search`` for a batch of roots.

    action: ``[B]`` int32 action to take (gumbel: the sequential-halving winner;
      muzero: sampled from the visit distribution at ``config.temperature``).
      Never an invalid action while the row has a valid one.
    action_weights: ``[B, A]`` improved policy, the policy training target; sums
      to 1; exactly 0 on invalid actions (gumbel: softmax of prior logits plus
      transformed completed Q-values; muzero: root visit frequencies).
    root_value: ``[B]`` the search value: mctx's root ``node_values``
      (``search_tree.summary().value``), the running mean over the root's N + 1
      visits of the prior value and each simulation's discounted return, i.e.
      ``(prior_value + sum_a n_a * Q(root, a)) / (1 + N)`` with ``n_a`` the root
      visit counts and ``Q(root, a) = r_a + gamma * c_a * (mean value of child a)``.
    prior_logits: ``[B, A]`` the prediction's policy logits at the root, as the
      network gave them (no noise, no masking).
    prior_value: ``[B]`` the prediction's value at the root.
    improved_value: ``[B]`` the value of the improved policy,
      ``sum_a action_weights[a] * Qc(root, a)``, with ``Qc`` the completed
      Q-values: ``Q(root, a)`` for visited actions, and for unvisited ones the
      mixed value ``(prior_value + N sum_{b visited} p_b Q_b / sum_{b visited}
      p_b) / (1 + N)`` (``p`` the prior policy over valid actions, ``N`` the
      root's simulations; Danihelka et al. 2022, eq. 33). The bootstrap value
      consistent with the policy target (reanalysis).
    """

    action: chex.Array  # [B]
    action_weights: chex.Array  # [B, A]
    root_value: chex.Array  # [B]
    prior_logits: chex.Array  # [B, A]
    prior_value: chex.Array  # [B]
    improved_value: chex.Array  # [B]


def _completed_value(tree: mctx.Tree, action_weights: chex.Array) -> chex.Array:
    """``sum_a w_a Qc(root, a)`` of a finished search (see ``SearchOutput.improved_value``)."""
    root = jnp.full(tree.node_visits.shape[:1], tree.ROOT_INDEX)
    qvalues = tree.qvalues(root)  # [B, A]
    visits = tree.children_visits[:, tree.ROOT_INDEX].astype(qvalues.dtype)  # [B, A]
    prior = jax.nn.softmax(tree.children_prior_logits[:, tree.ROOT_INDEX], axis=-1)  # [B, A], 0 where invalid
    visited = visits > 0
    visited_prior = jnp.sum(jnp.where(visited, prior, 0.0), axis=-1)
    weighted_q = jnp.sum(jnp.where(visited, prior * qvalues, 0.0), axis=-1) / jnp.maximum(visited_prior, 1e-12)
    simulations = jnp.sum(visits, axis=-1)
    mixed = (tree.raw_values[:, tree.ROOT_INDEX] + simulations * weighted_q) / (simulations + 1.0)
    completed = jnp.where(visited, qvalues, mixed[:, None])
    return jnp.sum(action_weights * completed, axis=-1)


def _check_shape(name: str, x: Any, expected: tuple[int, ...]) -> None:
    shape = getattr(x, "shape", None)
    if shape is None or tuple(shape) != expected:
        raise ValueError(f"{name}: expected shape {expected}, received {shape}")


def _check_prediction(where: str, out: Prediction, batch: int) -> int:
    """Checks a Prediction for batch ``batch``; returns A."""
    logits_shape = getattr(out.policy_logits, "shape", None)
    if logits_shape is None or len(logits_shape) != 2 or logits_shape[0] != batch:
        raise ValueError(f"{where} policy_logits: expected shape ({batch}, A), received {logits_shape}")
    _check_shape(f"{where} value", out.value, (batch,))
    return logits_shape[1]


def _sample_from_weights(key: chex.PRNGKey, weights: chex.Array, temperature: float) -> chex.Array:
    """Samples ``[B]`` actions from ``weights [B, A] ** (1 / temperature)``.

    Zero-weight entries get probability exactly 0; temperature 0 is the argmax
    (lowest index among ties).
    """
    if temperature == 0.0:
        return jnp.argmax(weights, axis=-1).astype(jnp.int32)
    positive = weights > 0
    logits = jnp.where(positive, jnp.log(jnp.where(positive, weights, 1.0)), -jnp.inf)
    logits = logits / temperature
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


def run_search(
    params: Params,
    key: chex.PRNGKey,
    root_latent: chex.Array,
    *,
    prediction_fn: PredictionFn,
    dynamics_fn: DynamicsFn,
    config: SearchConfig,
    invalid_actions: Optional[chex.Array] = None,
) -> SearchOutput:
    """Runs one batched MCTS from ``root_latent [B, D]`` over the learned model.

    Args:
      params: forwarded to ``prediction_fn`` and ``dynamics_fn``.
      key: PRNG key, consumed.
      root_latent: ``[B, D]`` latents of the root states.
      prediction_fn: ``(params, latent [B, D]) -> Prediction``.
      dynamics_fn: ``(params, latent [B, D], action [B]) -> Transition``.
      config: search hyperparameters.
      invalid_actions: ``[B, A]`` bool, True where an action may not be taken at
        the root, or None. Each row should keep at least one valid action; a row
        with none gets a meaningless result (action 0).

    Returns:
      ``SearchOutput`` (see its fields for the exact quantities).

    Raises:
      ValueError: at trace time, for a wrong shape of the root latent, the mask,
        or the model's outputs, naming expected and received shapes.
    """
    if getattr(root_latent, "ndim", None) != 2:
        raise ValueError(
            f"root_latent: expected shape (B, D), received {getattr(root_latent, 'shape', type(root_latent).__name__)}"
        )
    batch, width = root_latent.shape
    root = prediction_fn(params, root_latent)
    num_actions = _check_prediction("prediction_fn(root)", root, batch)
    if invalid_actions is not None:
        _check_shape("invalid_actions", invalid_actions, (batch, num_actions))
        if invalid_actions.dtype != jnp.bool_:
            raise ValueError(f"invalid_actions: expected dtype bool, received {invalid_actions.dtype}")

    gamma = float(config.discount)

    def recurrent_fn(params, rng_key, action, latent):
        del rng_key  # the model is deterministic
        step = dynamics_fn(params, latent, action)
        _check_shape("dynamics_fn reward", step.reward, (batch,))
        _check_shape("dynamics_fn next_latent", step.next_latent, (batch, width))
        if step.discount is None:
            discount = jnp.full_like(step.reward, gamma)
        else:
            _check_shape("dynamics_fn discount", step.discount, (batch,))
            discount = gamma * step.discount.astype(step.reward.dtype)
        pred = prediction_fn(params, step.next_latent)
        inner_actions = _check_prediction("prediction_fn(next_latent)", pred, batch)
        if inner_actions != num_actions:
            raise ValueError(
                f"prediction_fn(next_latent) policy_logits: expected shape "
                f"({batch}, {num_actions}), received {pred.policy_logits.shape}"
            )
        out = mctx.RecurrentFnOutput(
            reward=step.reward,
            discount=discount,
            prior_logits=pred.policy_logits,
            value=pred.value,
        )
        return out, step.next_latent

    root_output = mctx.RootFnOutput(prior_logits=root.policy_logits, value=root.value, embedding=root_latent)
    search_key, action_key = jax.random.split(key)
    if config.policy == "gumbel_muzero":
        policy_output = mctx.gumbel_muzero_policy(
            params,
            search_key,
            root_output,
            recurrent_fn,
            num_simulations=config.num_simulations,
            invalid_actions=invalid_actions,
            max_depth=config.max_depth,
            max_num_considered_actions=config.max_num_considered_actions,
            gumbel_scale=float(config.gumbel_scale),
            qtransform=functools.partial(
                mctx.qtransform_completed_by_mix_value,
                rescale_values=config.rescale_values,
                epsilon=float(config.rescale_floor),
            ),
        )
        action = policy_output.action
        action_weights = policy_output.action_weights
    else:
        policy_output = mctx.muzero_policy(
            params,
            search_key,
            root_output,
            recurrent_fn,
            num_simulations=config.num_simulations,
            invalid_actions=invalid_actions,
            max_depth=config.max_depth,
            dirichlet_fraction=float(config.dirichlet_fraction),
            dirichlet_alpha=float(config.dirichlet_alpha),
            pb_c_init=float(config.pb_c_init),
            pb_c_base=float(config.pb_c_base),
            temperature=float(config.temperature),
        )
        # mctx masks invalid actions when choosing which child to visit at the
        # root, so their visit frequency is exactly 0; but it samples its
        # `action` from log(max(p, tiny)) / temperature, which gives an invalid
        # action non-zero probability at high temperature. Resample ourselves
        # with zero-visit actions excluded.
        action_weights = policy_output.action_weights
        action = _sample_from_weights(action_key, action_weights, float(config.temperature))
    return SearchOutput(
        action=action.astype(jnp.int32),
        action_weights=action_weights,
        root_value=policy_output.search_tree.summary().value,
        prior_logits=root.policy_logits,
        prior_value=root.value,
        improved_value=_completed_value(policy_output.search_tree, action_weights),
    )


def select_action(key: chex.PRNGKey, output: SearchOutput, *, temperature: float) -> chex.Array:
    """Picks ``[B]`` actions from a finished search's ``action_weights [B, A]``.

    temperature 0: the argmax of ``action_weights`` (lowest index among ties).
    temperature > 0: a sample from ``action_weights ** (1 / temperature)``
    renormalised; actions of weight 0 (invalid ones) are never chosen.
    ``temperature`` must be a Python number (static under jit).
    """
    if not is_real(temperature) or temperature < 0:
        raise ValueError(f"temperature={temperature!r}; valid: a float >= 0")
    weights = output.action_weights
    if getattr(weights, "ndim", None) != 2:
        raise ValueError(f"output.action_weights: expected shape (B, A), received {getattr(weights, 'shape', None)}")
    return _sample_from_weights(key, weights, float(temperature))
