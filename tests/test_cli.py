"""rmuzero.cli, the scripts' command line: it composes what hydra composes, types values as hydra's
override grammar does, and refuses bad input with one line naming the valid choices."""

from __future__ import annotations

import dataclasses

import pytest

from rmuzero import cli
from rmuzero.agent.config import NetworkConfig, config_from_dict
from rmuzero.envs import list_envs

GROUPS = {group: cli.group_options(group) for group in ("env", "network", "search", "system")}
OVERRIDES = [
    [],
    ["env=popgym/count_recall", "env.difficulty=medium", "network=gru", "seed=3"],
    ["search=muzero", "system.discount=0.9"],  # search.discount follows ${system.discount}
    ["network.memory_kwargs={memory_size:32,scan:associative}", "network.head_sizes=[8,8]"],
    ["system.learning_rate=1e-3", "system.td_lambda=0.5", "eval_envs=null", "early_stop_return=1.0"],
    ["~logger", "++total_env_steps=7", "+network.extra=on"],
]


def _hydra(overrides: list[str]) -> dict:
    hydra = pytest.importorskip("hydra")
    from omegaconf import OmegaConf

    with hydra.initialize_config_dir(config_dir=str(cli.CONFIGS), version_base="1.3"):
        composed = hydra.compose("config", overrides=overrides)
    values = OmegaConf.to_container(composed, resolve=True)
    values.pop("hydra", None)
    return values


@pytest.mark.parametrize("overrides", OVERRIDES, ids=lambda o: " ".join(o) or "defaults")
def test_compose_equals_what_hydra_composes(overrides):
    """The same plain dict as hydra's compose (hydra.run.dir aside): defaults list, group
    choices, typed values, merged mappings, + / ++ / ~, interpolation after the overrides."""
    composed = cli.compose(overrides)
    assert composed.pop("hydra")["run"]["dir"].startswith("runs/")
    assert composed == _hydra(overrides)


@pytest.mark.parametrize("group", GROUPS)
def test_compose_equals_hydra_for_every_choice_of_every_group(group):
    for choice in GROUPS[group]:
        composed = cli.compose([f"{group}={choice}"])
        composed.pop("hydra")
        assert composed == _hydra([f"{group}={choice}"]), choice


def test_every_composed_config_is_valid():
    for network in GROUPS["network"]:
        for env in list_envs():
            config = config_from_dict(cli.split_run_options(cli.compose([f"network={network}", f"env={env}"]))[0])
            assert (config.network.memory, config.env.name) == (network, env)


def test_every_network_field_can_be_overridden_without_a_plus():
    """Each network file lists every NetworkConfig field, so `network.<field>=...` works as the
    README writes it (`network.torso=flatten` was refused: the files lacked the key)."""
    fields = [field.name for field in dataclasses.fields(NetworkConfig)]
    for network in GROUPS["network"]:
        assert sorted(cli.compose([f"network={network}"])["network"]) == sorted(fields), network
    assert config_from_dict(cli.split_run_options(cli.compose(["network.torso=flatten"]))[0]).network.torso == "flatten"


def test_env_choices_are_the_registry():
    """env= is checked against the files (nothing starts JAX before a multi-process run has
    joined): every registry environment has one, and configs/env/popgym/ holds no other."""
    assert [choice for choice in GROUPS["env"] if choice.startswith("popgym/")] == sorted(list_envs())


def test_interpolation_follows_the_override():
    assert cli.compose(["system.discount=0.9"])["search"]["discount"] == 0.9
    assert cli.compose(["hydra.run.dir=runs/x"])["hydra"]["run"]["dir"] == "runs/x"


@pytest.mark.parametrize(
    "text, value",
    [
        ("3", 3),
        ("-2", -2),
        ("1e-3", 1e-3),
        ("3.5e-4", 3.5e-4),
        ("0.5", 0.5),
        ("true", True),
        ("False", False),
        ("null", None),
        ("on", "on"),
        ("no", "no"),
        ("1:20", "1:20"),
        ("10.0.0.1:1234", "10.0.0.1:1234"),
        ("2026-12-01", "2026-12-01"),
        ("[8,16]", [8, 16]),
        ("{a:1,b:[x,y]}", {"a": 1, "b": ["x", "y"]}),
        ("'a,b'", "a,b"),
        ("runs/a", "runs/a"),
    ],
)
def test_values_are_typed_as_hydra_types_them(text, value):
    assert cli.parse_value(text) == value and type(cli.parse_value(text)) is type(value)


@pytest.mark.parametrize(
    "token, named",
    [
        ("network=transformer", ["transformer", *GROUPS["network"]]),
        ("env=popgym/nope", ["popgym/nope", *list_envs()]),
        ("system.batchsize=3", ["system.batchsize", "system.batch_size", "+system.batchsize="]),
        ("seed", ["'seed'", "key=value"]),
        ("+seed=1", ["seed is already in the config"]),
        ("~nothing", ["nothing", "seed"]),
        ("seed.x=1", ["seed is not a section", "system"]),
    ],
)
def test_a_bad_override_is_one_line_naming_the_valid_ones(token, named):
    with pytest.raises(cli.UsageError) as error:
        cli.compose([token])
    message = str(error.value)
    assert "\n" not in message and all(name in message for name in named), message


OPTIONS = {
    "checkpoint": cli.REQUIRED,
    "episodes": 32,
    "rate": 0.5,
    "quick": False,
    "seeds": [0],
    "names": ["a"],
    "out": "x.json",
    "any": None,
}


def test_options_are_typed_by_their_default():
    values, rest = cli.parse_args(
        ["checkpoint=runs/a", "episodes=3", "rate=1", "quick=true", "seeds=1,2", "names=[b,c]", "out=123", "any=[1]"],
        OPTIONS,
        usage="usage",
    )
    assert (
        values
        == {
            "checkpoint": "runs/a",
            "episodes": 3,
            "rate": 1.0,
            "quick": True,
            "seeds": [1, 2],
            "names": ["b", "c"],
            "out": "123",
            "any": [1],
        }
        and rest == []
    )
    assert cli.parse_args(["checkpoint=a", "seeds=4"], OPTIONS, usage="u")[0]["seeds"] == [4]


@pytest.mark.parametrize(
    "argv, named",
    [
        (["episodes=3"], ["checkpoint= is required", "usage"]),
        (["checkpoint=a", "episodes=x"], ["episodes=x", "integer"]),
        (["checkpoint=a", "quick=1"], ["quick=1", "true or false"]),
        (["checkpoint=a", "seeds=[a]"], ["seeds=a", "integer"]),
        (["checkpoint=a", "steps=3"], ["steps=3", "checkpoint=", "episodes=", "out="]),
    ],
)
def test_a_bad_option_is_one_line_naming_the_valid_ones(argv, named):
    with pytest.raises(cli.UsageError) as error:
        cli.parse_args(argv, OPTIONS, usage="usage")
    message = str(error.value)
    assert "\n" not in message and all(name in message for name in named), message


def test_overrides_are_checked_beside_the_options():
    values, rest = cli.parse_args(
        ["episodes=2", "checkpoint=a", "system.batch_size=8", "env=popgym/autoencode"],
        OPTIONS,
        usage="u",
        overrides=True,
    )
    assert values["episodes"] == 2 and rest == ["system.batch_size=8", "env=popgym/autoencode"]
    with pytest.raises(cli.UsageError, match="an option of this script: checkpoint=, episodes="):
        cli.parse_args(["checkpoint=a", "episode=2"], OPTIONS, usage="u", overrides=True)


def test_the_old_option_form_reads_as_key_value(capsys):
    argv = [
        "--preset",
        "popgym-easy",
        "--seeds",
        "0",
        "1",
        "--set",
        "total_env_steps=10",
        "--quick",
        "--difficulty",
        "hard",
        "--families",
        "a,b",
        "--set=eval_every=5",
    ]
    assert cli.translate_legacy(argv, {"difficulty": "env.difficulty"}) == [
        "total_env_steps=10",
        "eval_every=5",
        "preset=popgym-easy",
        "seeds=[0,1]",
        "quick=true",
        "env.difficulty=hard",
        'families="a,b"',
    ]
    assert "the same command now reads: total_env_steps=10" in capsys.readouterr().err
    assert cli.translate_legacy(["a=1"]) == ["a=1"]


def test_summarise_metrics_by_hand():
    lines = [
        {"env_steps": 10, "updates": 1, "updates_per_second": 2.0, "env_steps_per_second": 100.0},
        {"env_steps": 10, "eval_return": 0.5, "wall_time": 3.0},
        {"env_steps": 20, "updates": 2, "updates_per_second": 4.0, "env_steps_per_second": 300.0},
        {"env_steps": 20, "eval_return": 0.97, "wall_time": 6.0},
        {"env_steps": 30, "eval_return": 0.9, "wall_time": 9.0},
    ]
    assert cli.summarise_metrics(lines, 0.95) == {
        "steps_to_threshold": 20,
        "seconds_to_threshold": 6.0,
        "final_eval_return": 0.9,
        "best_eval_return": 0.97,
        "env_steps_per_second": 200.0,
        "updates_per_second": 3.0,
    }
    assert cli.summarise_metrics(lines, 0.99)["steps_to_threshold"] is None
