"""The learned model and the search over it, as pure functions of the parameters.

Dimensions: T time, B batch, F observation features, D latent size, A actions,
N roots of one search.

``Model`` wraps the ``MuZeroNetwork`` (representation, dynamics, prediction)
with the categorical value / reward supports and the search configuration, so
acting, learning and evaluation all call the same four functions.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import chex

from rmuzero.agent.config import AgentConfig
from rmuzero.networks.muzero import MuZeroNetwork
from rmuzero.networks.transforms import DiscreteSupport, logits_to_scalar
from rmuzero.search import Prediction, SearchConfig, SearchOutput, Transition, run_search

Params = Any


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: its bound methods are jitted
class Model:
    """The network plus the supports and search it is used with (jit at the call site)."""

    network: MuZeroNetwork
    value_support: DiscreteSupport
    reward_support: DiscreteSupport
    search_config: SearchConfig

    def encode(self, params: Params, carry, obs: chex.Array, start: chex.Array, positions: chex.Array | None = None):
        """``(carry, obs [T, B, F], start [T, B]) -> (carry, latents [T, B, D])``; with
        ``positions [R, B]`` the latents at those steps only, ``[R, B, D]``."""
        return self.network.apply(params, carry, (obs, start), positions, method=MuZeroNetwork.encode)

    def predict(self, params: Params, latent: chex.Array) -> Prediction:
        """``latent [..., D] -> Prediction(policy_logits [..., A], value [...])``."""
        out = self.network.apply(params, latent, method=MuZeroNetwork.predict)
        return Prediction(out.policy_logits, logits_to_scalar(out.value_logits, support=self.value_support))

    def dynamics(self, params: Params, latent: chex.Array, action: chex.Array) -> Transition:
        """``(latent [..., D], action [...]) -> Transition(reward [...], next_latent [..., D], None)``."""
        out = self.network.apply(params, latent, action, method=MuZeroNetwork.dynamics)
        return Transition(logits_to_scalar(out.reward_logits, support=self.reward_support), out.next_latent, None)

    def search(
        self, params: Params, key: chex.PRNGKey, latent: chex.Array, invalid_actions: chex.Array | None = None
    ) -> SearchOutput:
        """``(latent [N, D], invalid_actions [N, A] | None) -> SearchOutput`` of N roots."""
        return run_search(
            params,
            key,
            latent,
            prediction_fn=self.predict,
            dynamics_fn=self.dynamics,
            config=self.search_config,
            invalid_actions=invalid_actions,
        )


def make_model(config: AgentConfig, num_actions: int) -> Model:
    """The model ``config.network`` describes, for an environment with ``num_actions``."""
    network = MuZeroNetwork(
        num_actions=num_actions,
        memory=config.network.memory,
        features=config.network.features,
        num_layers=config.network.num_layers,
        latent_size=config.network.latent_size,
        memory_kwargs=config.network.memory_kwargs,
        head_sizes=config.network.head_sizes,
        separate_reward_trunk=config.network.separate_reward_trunk,
        value_bins=config.network.value_bins,
        reward_bins=config.network.reward_bins,
        torso=config.network.torso,
    )
    bound = config.network.support_bound
    return Model(
        network=network,
        value_support=DiscreteSupport(-bound, bound, config.network.value_bins),
        reward_support=DiscreteSupport(-bound, bound, config.network.reward_bins),
        search_config=config.search,
    )
