"""Sequence length and roots (rmuzero.agent.config): derived once, checked with one-line errors."""

from __future__ import annotations

import pytest

import rmuzero.envs
from rmuzero.agent.config import (
    AUTO_SEQUENCE_CAP,
    ConfigError,
    SystemConfig,
    config_from_dict,
    resolve_sequence_length,
    roots_for,
)


@pytest.mark.parametrize(
    "task, difficulty, expected",
    [
        ("popgym/repeat_previous", "easy", 52),  # 51-step episodes + the next episode's first step
        ("popgym/repeat_previous", "medium", 104),
        ("popgym/repeat_previous", "hard", 156),
        ("popgym/count_recall", "easy", 52),
        ("popgym/autoencode", "easy", 104),
        ("popgym/position_only_cartpole", "hard", AUTO_SEQUENCE_CAP),  # 600 steps: segments
    ],
)
def test_automatic_length_follows_the_episode(task, difficulty, expected):
    env = rmuzero.envs.make(task, difficulty=difficulty)
    assert resolve_sequence_length(SystemConfig(), env.max_episode_length) == expected


def test_explicit_length_and_environments_without_a_limit():
    assert resolve_sequence_length(SystemConfig(sequence_length=30), 51) == 30
    assert resolve_sequence_length(SystemConfig(), None) == 64


@pytest.mark.parametrize(
    "system, message",
    [
        (
            {"sequence_length": 4, "burn_in": 4, "roots_per_sequence": 1},
            "system.burn_in=4 must be < system.sequence_length=4",
        ),
        (
            {"sequence_length": 300, "replay_length_per_env": 256},
            "system.sequence_length=300 must be <= system.replay_length_per_env=256",
        ),
        ({"sequence_length": 1}, r"system.sequence_length=1; valid: an integer >= 2"),
        ({"roots_per_sequence": 0}, r"system.roots_per_sequence=0; valid: an integer >= 1"),
    ],
)
def test_bad_values_name_themselves(system, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"system": system})


def test_bad_network_switch_names_itself():
    with pytest.raises(ConfigError, match=r"network.separate_reward_trunk='yes'; valid: true \| false"):
        config_from_dict({"network": {"separate_reward_trunk": "yes"}})


def test_a_saved_config_without_a_newer_option_keeps_the_network_it_was_saved_with():
    from rmuzero.agent.config import saved_config_from_dict

    assert config_from_dict({}).network.separate_reward_trunk is True  # today's default
    assert saved_config_from_dict({"network": {"memory": "ffm"}}).network.separate_reward_trunk is False
    kept = saved_config_from_dict({"network": {"separate_reward_trunk": True}})
    assert kept.network.separate_reward_trunk is True
    # Replay kept every step's carry before store_all_carries existed: a resumed run restores that layout.
    assert config_from_dict({}).system.store_all_carries is False
    assert saved_config_from_dict({"system": {"num_envs": 16}}).system.store_all_carries is True
    # The value and policy gradients reached the latents before prediction_gradient_scale existed.
    assert config_from_dict({}).system.prediction_gradient_scale == 0.0
    assert saved_config_from_dict({"system": {"num_envs": 16}}).system.prediction_gradient_scale == 1.0
    # Acting took the search's action every step before exploration_epsilon existed.
    assert config_from_dict({}).system.exploration_epsilon == 0.05
    assert saved_config_from_dict({"system": {"num_envs": 16}}).system.exploration_epsilon == 0.0
    assert saved_config_from_dict({"system": {"exploration_epsilon": 0.05}}).system.exploration_epsilon == 0.05


def test_roots_are_at_most_the_positions_every_sequence_has_with_a_loss():
    system = SystemConfig()  # 20 roots, burn_in 4
    assert roots_for(system, resolve_sequence_length(system, 51)) == 20
    assert roots_for(system, resolve_sequence_length(system, 14)) == 11  # MineSweeper Easy: L = 15


def test_automatic_length_too_short_for_the_burn_in_is_refused():
    with pytest.raises(
        ConfigError,
        match=r"system.burn_in=8 must be < the automatic sequence length "
        r"\(episode length \+ 1\)=5",
    ):
        resolve_sequence_length(SystemConfig(burn_in=8), 4)


def test_memory_options_in_the_documented_override_form():
    """network.memory_kwargs={memory_size:32} (the form configs/network/*.yaml documents)
    composes with hydra and is validated like any other option; null means no options."""
    import os

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    configs = os.path.join(os.path.dirname(__file__), "..", "..", "configs")
    with initialize_config_dir(config_dir=os.path.abspath(configs), version_base="1.3"):
        plain = compose("config")
        custom = compose("config", overrides=["network.memory_kwargs={memory_size:8,context_size:2}"])
    assert config_from_dict({"network": OmegaConf.to_container(plain.network)}).network.memory_kwargs == {}
    network = config_from_dict({"network": OmegaConf.to_container(custom.network)}).network
    assert network.memory_kwargs == {"memory_size": 8, "context_size": 2}
