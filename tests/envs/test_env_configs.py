"""Tests of the hydra ``env`` group (``configs/env/popgym/*.yaml``): every file
composes, names its own path and a registered environment, and the
command-line overrides of docs/design.md section 6 resolve."""

from __future__ import annotations

import pathlib

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from rmuzero.envs import DIFFICULTIES, list_envs
from rmuzero.envs.wrappers import make_agent_env

CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "configs"
ENV_FILES = sorted((CONFIGS / "env" / "popgym").glob("*.yaml"))
FIELDS = {"name", "difficulty", "prev_action", "prev_reward"}


@pytest.fixture(scope="module")
def compose_env(tmp_path_factory):
    """``compose(overrides)`` with a test-local primary config whose search path
    is the repository's ``configs/`` (the real top-level config is not needed)."""
    primary = tmp_path_factory.mktemp("hydra_primary")
    (primary / "env_test.yaml").write_text(
        f"defaults:\n  - env: popgym/repeat_previous\n  - _self_\nhydra:\n  searchpath:\n    - file://{CONFIGS}\n"
    )
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(primary), version_base="1.3"):
        yield lambda overrides: compose(config_name="env_test", overrides=overrides)
    GlobalHydra.instance().clear()


def test_one_file_per_registered_env():
    assert ["popgym/" + path.stem for path in ENV_FILES] == list_envs()


def test_every_field_has_a_comment():
    for path in ENV_FILES:
        for line in path.read_text().splitlines():
            if line and not line.startswith("#"):
                assert " # " in line, f"{path.name}: field without a comment: {line!r}"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.stem)
def test_each_config_composes_and_names_itself(compose_env, path):
    cfg = compose_env([f"env=popgym/{path.stem}"])
    assert set(cfg.env) == FIELDS
    assert cfg.env.name == f"popgym/{path.stem}"
    assert cfg.env.name in list_envs()
    assert cfg.env.difficulty == "easy"
    assert cfg.env.prev_action is True and cfg.env.prev_reward is True


def test_overrides_resolve(compose_env):
    cfg = compose_env(["env=popgym/repeat_previous", "env.difficulty=hard", "env.prev_reward=false"])
    assert dict(cfg.env) == {
        "name": "popgym/repeat_previous",
        "difficulty": "hard",
        "prev_action": True,
        "prev_reward": False,
    }
    assert cfg.env.difficulty in DIFFICULTIES
    # The composed fields are exactly make_agent_env's keywords.
    agent_env = make_agent_env(**cfg.env, num_envs=1)
    assert agent_env.num_actions == 4
    assert agent_env.obs_size == 4 + 4  # one-hot suit ++ one-hot previous action


def test_bad_difficulty_override_fails_when_built(compose_env):
    cfg = compose_env(["env.difficulty=extreme"])
    with pytest.raises(ValueError, match="unknown difficulty 'extreme'.*valid: easy, medium, hard"):
        make_agent_env(**cfg.env, num_envs=1)
