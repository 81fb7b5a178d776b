"""The schedule of a training run: when logs, evaluations and checkpoints fall due
(``rmuzero.agent.train.Period``), when early stopping has held long enough (``held_for``),
and a run that stops early. Numbers by hand."""

from __future__ import annotations

import json

import pytest
from test_learns_delayed_match import DelayedMatch

from rmuzero.agent.agent import make_agent
from rmuzero.agent.config import config_from_dict
from rmuzero.agent.train import Period, held_for, train


def test_a_period_is_due_at_each_multiple_once():
    due = Period(5000, after=0)
    assert due.next == 5000
    assert [due(steps) for steps in (1000, 4999, 5000, 5000, 9999, 10_000)] == [False, False, True, False, False, True]
    assert due.next == 15_000


def test_a_call_that_jumps_over_multiples_is_due_once_and_the_next_is_after_it():
    due = Period(5000, after=4900)  # a resumed run at 4,900: the next multiple is 5,000
    assert due.next == 5000
    assert due(10_100)  # 4,900 -> 10,100 in one call: 5,000 and 10,000 passed, due once
    assert due.next == 15_000
    assert not due(14_999)
    assert due(15_000) and due.next == 20_000


def test_a_resumed_run_starts_after_its_steps():
    assert Period(2000, after=6000).next == 8000  # a checkpoint on a multiple: that one is done
    assert Period(2000, after=6500).next == 8000
    with pytest.raises(ValueError, match="every=0"):
        Period(0)


def test_held_for_counts_the_unbroken_run_of_evaluations_at_the_threshold():
    assert held_for([], 1.0) == -1
    assert held_for([(5000, 1.0)], 1.0) == 0  # reached at the newest evaluation: held for 0 steps
    evaluations = [(5000, 0.2), (10_000, 1.0), (15_000, 1.0), (20_000, 1.0)]
    assert held_for(evaluations, 1.0) == 10_000  # 20,000 - 10,000
    assert held_for(evaluations, 0.1) == 15_000  # every one: 20,000 - 5,000
    assert held_for([*evaluations, (25_000, 0.5)], 1.0) == -1  # the newest is below
    assert held_for([(5000, 1.0), (10_000, None), (15_000, 1.0)], 1.0) == 0  # no finished episode breaks it
    assert held_for([(5000, 1.0), (10_000, None)], 1.0) == -1


def test_held_for_allows_float32_rounding_below_the_threshold():
    assert held_for([(0, 1.0), (5000, 0.99995)], 1.0) == 5000  # within 1e-4
    assert held_for([(0, 1.0), (5000, 0.9998)], 1.0) == -1


ROLLOUT, ENVS = 4, 4
STEPS = ROLLOUT * ENVS  # env steps per iteration (one iteration per call)


def _config(**top):
    return config_from_dict(
        {
            "network": {
                "memory": "ffm",
                "features": 8,
                "latent_size": 8,
                "head_sizes": [8],
                "value_bins": 11,
                "reward_bins": 11,
            },
            "search": {"num_simulations": 2, "max_num_considered_actions": 2},
            "system": {
                "num_envs": ENVS,
                "rollout_length": ROLLOUT,
                "batch_size": 2,
                "sequence_length": 6,
                "roots_per_sequence": 2,
                "burn_in": 0,
                "num_unroll_steps": 1,
                "td_steps": 1,
                "replay_length_per_env": 32,
                "updates_per_iteration": 1,
                "reanalyse_fraction": 0.0,
            },
            "eval_episodes": 2,
            "total_env_steps": 20 * STEPS,
            "log_every": STEPS,
            "eval_every": STEPS,
            "checkpoint_every": 100 * STEPS,
            **top,
        }
    )


@pytest.mark.slow
def test_a_run_stops_once_every_evaluation_has_held_the_return_long_enough(tmp_path):
    """DelayedMatch returns lie in [-1, 1], so every evaluation reaches -1: evaluated after
    each call, the run has held it for 2 calls' steps at its third evaluation (3 * 16 - 16)
    and stops there, saving its last checkpoint; without early stopping it runs on."""
    config = _config(early_stop_return=-1.0, early_stop_env_steps=2 * STEPS)
    agent = make_agent(config, environment=DelayedMatch())  # both runs: the schedule is not the agent's
    summary = train(config, tmp_path, progress=False, agent=agent)
    assert summary["stopped_early"] is True and summary["env_steps"] == 3 * STEPS
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["env_steps"] for line in lines if "eval_return" in line] == [STEPS, 2 * STEPS, 3 * STEPS]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [str(3 * STEPS)]

    config = _config(total_env_steps=4 * STEPS, early_stop_return=None)
    summary = train(config, tmp_path / "on", progress=False, agent=agent)
    assert summary["stopped_early"] is False and summary["env_steps"] == 4 * STEPS
