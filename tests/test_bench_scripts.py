"""The benchmark scripts: the same defaults as scripts/train.py (no drift from configs/), their data by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import pytest

from rmuzero.agent.config import config_from_dict

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

from bench_learning import apply_override, default_config  # noqa: E402

NETWORKS = sorted(p.stem for p in (SCRIPTS.parent / "configs" / "network").glob("*.yaml"))
ENVS = sorted(f"popgym/{p.stem}" for p in (SCRIPTS.parent / "configs" / "env" / "popgym").glob("*.yaml"))


@pytest.mark.parametrize("network", NETWORKS)
def test_default_config_is_valid_for_every_network(network):
    config = config_from_dict(default_config(network))
    assert config.network.memory == network and config.env.name == "popgym/repeat_previous"


@pytest.mark.parametrize("env", ENVS)
def test_default_config_is_valid_for_every_env(env):
    values = default_config("ffm", env)
    apply_override(values, "env.difficulty=hard")
    apply_override(values, "system.batch_size=8")
    config = config_from_dict(values)
    assert config.env.name == env and config.env.difficulty == "hard" and config.system.batch_size == 8


SYSTEMS = sorted(p.stem for p in (SCRIPTS.parent / "configs" / "system").glob("*.yaml"))


@pytest.mark.parametrize("system", SYSTEMS)
def test_default_config_equals_what_hydra_composes(system):
    """bench_learning reads the yaml files itself; hydra (what scripts/train.py runs) must agree."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from rmuzero.agent.train import SCRIPT_OPTIONS

    with initialize_config_dir(config_dir=str(SCRIPTS.parent / "configs"), version_base="1.3"):
        composed = OmegaConf.to_container(compose("config", overrides=[f"system={system}"]), resolve=True)
    for option in SCRIPT_OPTIONS:
        composed.pop(option)
    assert config_from_dict(default_config("ffm", system=system)) == config_from_dict(composed)



def test_train_script_lists_the_registry_envs():
    """scripts/train.py checks env= against the config files (it must not import jumanji before
    a multi-process run joins); they must be exactly the registry's environments."""
    from rmuzero.envs import list_envs

    sys.path.insert(0, str(SCRIPTS))
    from train import env_configs

    assert env_configs() == sorted(list_envs())


def test_count_probe_labels_by_hand():
    """bench_recall --task count: the label at t counts the value kinds 0..t equal to the query at t."""
    import jax.numpy as jnp
    import numpy as np
    from bench_recall import KINDS, count_batch

    obs, start, labels = count_batch(jax.random.PRNGKey(0), 12, 3)
    obs, labels = np.asarray(obs), np.asarray(labels)
    values, queries = obs[..., :KINDS].argmax(-1), obs[..., KINDS:].argmax(-1)
    for b in range(3):
        for t in range(12):
            assert labels[t, b] == sum(values[i, b] == queries[t, b] for i in range(t + 1))
    assert np.asarray(start)[0].all() and not np.asarray(start)[1:].any()
    assert obs.shape == (12, 3, 2 * KINDS) and jnp.all(obs.sum(-1) == 2)


def test_count_recall_probe_labels_are_the_answers_the_environment_rewards():
    """bench_recall --task count_recall: labels computed from the observations of a CountRecall Easy
    episode are the answers its reward calls right (+1/51), and the next count is called wrong; the
    probe's own deals hold 26 cards of each colour per deck, 51 dealt."""
    import numpy as np
    from bench_recall import DECK, KINDS, count_labels, count_recall_batch

    from rmuzero.envs.popgym.count_recall import CountRecall

    env = CountRecall()
    state, timestep = env.reset(jax.random.PRNGKey(3))
    observations, states = [timestep.observation], [state]
    for _ in range(DECK - 2):
        state, timestep = env.step(state, 0)
        observations.append(timestep.observation)
        states.append(state)
    obs = np.stack(observations)  # [51, 4]
    labels = np.asarray(count_labels(obs[:, None, :KINDS].argmax(-1), obs[:, None, KINDS:].argmax(-1)))[:, 0]
    assert labels.max() <= DECK // KINDS and labels[-1] > 0
    for t, state in enumerate(states):
        _, right = env.step(state, int(labels[t]))
        _, wrong = env.step(state, int(labels[t]) + 1)
        assert float(right.reward) == pytest.approx(1 / 51) and float(wrong.reward) == pytest.approx(-1 / 51), t

    obs, start, labels = (np.asarray(x) for x in count_recall_batch(jax.random.PRNGKey(0), 5))
    assert obs.shape == (DECK - 1, 5, 2 * KINDS) and start[0].all() and not start[1:].any()
    dealt = obs[..., :KINDS].sum(0)  # [5, KINDS] values dealt per colour: 26 and 25 (one card is never dealt)
    assert sorted(map(tuple, np.sort(dealt, -1))) == [(25, 26)] * 5
    values, queries = obs[..., :KINDS].argmax(-1), obs[..., KINDS:].argmax(-1)
    assert all(labels[t, b] == (values[: t + 1, b] == queries[t, b]).sum() for t in range(DECK - 1) for b in range(5))


def test_count_recall_pool_deals_the_same_cards_and_answers_whenever_an_index_is_drawn():
    """bench_recall --pool: deal i (and the answers it was given) is the same in every batch that
    draws it, wherever it sits in the batch, as an episode read back from a replay; its labels count
    its own cards."""
    import numpy as np
    from bench_recall import DECK, KINDS, pooled_deals

    key = jax.random.PRNGKey(0)
    first = [np.asarray(x) for x in pooled_deals(key, jax.numpy.array([4, 9, 4]), 27)]
    again = [np.asarray(x) for x in pooled_deals(key, jax.numpy.array([9, 5]), 27)]
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x[:, 0], x[:, 2])  # index 4 twice in one batch
        np.testing.assert_array_equal(x[:, 1], y[:, 0])  # index 9 in two batches
    obs, start, labels, answers = first
    assert not np.array_equal(obs[:, 0], obs[:, 1]) and not np.array_equal(answers[:, 0], answers[:, 1])
    assert obs.shape == (DECK - 1, 3, 2 * KINDS) and start[0].all() and not start[1:].any()
    assert answers.min() >= 0 and answers.max() < 27
    values, queries = obs[..., :KINDS].argmax(-1), obs[..., KINDS:].argmax(-1)
    assert all(labels[t, b] == (values[: t + 1, b] == queries[t, b]).sum() for t in range(DECK - 1) for b in range(3))


def test_throughput_refuses_a_set_that_its_grid_would_replace():
    """`bench_throughput.py --set system.batch_size=16` once measured batch 32 (the grid's default)
    while its table said nothing: a key the grid sets is refused, naming the grid's option."""
    import subprocess

    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_throughput.py"), "--set", "system.batch_size=16"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith(
        "error: --set system.batch_size=16: system.batch_size is a grid axis here; valid: --batch-sizes "
        "(the grid would replace it)")


def test_throughput_grid_defaults_are_the_configs():
    """With no --num-envs / --batch-sizes / --simulations the grid is the default run's point (read
    here from the yaml files), and a given axis stays as given."""
    import argparse

    import yaml
    from bench_throughput import fill_grid_defaults

    system = yaml.safe_load((SCRIPTS.parent / "configs" / "system" / "muzero.yaml").read_text())
    search = yaml.safe_load((SCRIPTS.parent / "configs" / "search" / "gumbel.yaml").read_text())
    args = argparse.Namespace(num_envs=None, batch_sizes=[8, 64], simulations=None)
    fill_grid_defaults(args, default_config("ffm"))
    assert args.num_envs == [system["num_envs"]] and args.simulations == [search["num_simulations"]]
    assert args.batch_sizes == [8, 64]
