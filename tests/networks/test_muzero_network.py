"""What the dynamics' reward reads: its own MLP (default) or the next latent's trunk.

With ``separate_reward_trunk`` the reward loss must not shape the features the next
latent is made from (and so the value the search reads at each counterfactual next
latent); checked on the gradients, which are exactly zero across the separated paths.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rmuzero.networks.muzero import MuZeroNetwork

NUM_ACTIONS, D = 3, 8


def _network(separate: bool) -> MuZeroNetwork:
    return MuZeroNetwork(
        num_actions=NUM_ACTIONS,
        features=8,
        latent_size=D,
        head_sizes=(8,),
        value_bins=5,
        reward_bins=5,
        separate_reward_trunk=separate,
    )


def _params(network: MuZeroNetwork):
    carry = network.initialize_carry(2)
    inputs = (jnp.ones((3, 2, 4)), jnp.zeros((3, 2), bool))
    params = network.init(jax.random.PRNGKey(0), carry, inputs)
    # The reward head starts at zero (so does every gradient through it): make it non-zero.
    head = params["params"]["reward_head"]
    head["kernel"] = jnp.linspace(-1.0, 1.0, head["kernel"].size).reshape(head["kernel"].shape)
    return params


def _gradients(network, params, output):
    latent = jax.random.normal(jax.random.PRNGKey(1), (4, D))
    action = jnp.array([0, 1, 2, 1])

    def scalar(p):
        out = network.apply(p, latent, action, method=MuZeroNetwork.dynamics)
        return jnp.sum(jnp.sin(getattr(out, output)))

    return jax.grad(scalar)(params)["params"]


def _norm(tree) -> float:
    return float(sum(jnp.sum(jnp.abs(x)) for x in jax.tree.leaves(tree)))


@pytest.mark.parametrize("separate", [False, True])
@pytest.mark.slow
def test_reward_and_next_latent_paths(separate):
    network = _network(separate)
    params = _params(network)
    assert ("reward_trunk" in params["params"]) == separate
    from_reward = _gradients(network, params, "reward_logits")
    from_latent = _gradients(network, params, "next_latent")
    assert _norm(from_latent["dynamics_trunk"]) > 0
    if separate:
        assert _norm(from_reward["dynamics_trunk"]) == 0.0  # the reward loss leaves the next latent's features alone
        assert _norm(from_reward["dynamics_latent"]) == 0.0
        assert _norm(from_reward["reward_trunk"]) > 0
        assert _norm(from_latent["reward_trunk"]) == 0.0
    else:
        assert _norm(from_reward["dynamics_trunk"]) > 0  # one trunk serves both


def test_separate_trunk_keeps_the_other_parameters():
    """The option adds a module and leaves every other initial weight as it was (paired A/B runs)."""
    shared, separate = _params(_network(False)), _params(_network(True))
    assert set(separate["params"]) - set(shared["params"]) == {"reward_trunk"}
    for name, subtree in shared["params"].items():
        jax.tree.map(np.testing.assert_array_equal, subtree, separate["params"][name])
