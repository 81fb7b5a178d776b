"""A training run that goes wrong stops cleanly; the same run twice gives the same metrics.

Uses a tiny agent on RepeatPrevious Easy (and, for the non-finite case, a 3-step
environment whose rewards are NaN), trained with ``rmuzero.agent.train.train``.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from compile_log import by_program, compilations
from test_learns_delayed_match import LENGTH, DelayedMatch

from rmuzero.agent.agent import make_agent
from rmuzero.agent.config import ConfigError, config_from_dict
from rmuzero.agent.train import TrainingError, train

pytestmark = pytest.mark.slow  # trains, resumes and checkpoints runs

ROLLOUT, ENVS = 4, 4
STEPS_PER_ITERATION = ROLLOUT * ENVS


def _config(**top) -> dict:
    return {
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
        **top,
    }


@pytest.fixture(scope="module")
def agent():
    """One tiny agent on DelayedMatch for the runs below that differ only in seed, budget and
    schedule (the agent depends on none of them): train() compiles its programs once for all."""
    return make_agent(config_from_dict(_config()), environment=DelayedMatch())


class NanReward(DelayedMatch):
    """DelayedMatch whose final reward is NaN."""

    def step(self, state, action):
        state, timestep = super().step(state, action)
        nan = jnp.full((), jnp.nan, jnp.float32)
        done = state.step_count >= LENGTH
        timestep = timestep.replace(reward=jnp.where(done, nan, timestep.reward))
        return state, timestep


def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    """The first two iterations only collect (a 6-step sequence needs 8 steps per env held
    before an iteration begins): their checkpoints are finite. The third learns from NaN
    rewards: the run stops with one line naming the metric and the step, and writes no further
    checkpoint and no further metrics line."""
    config = config_from_dict(
        _config(
            total_env_steps=10 * STEPS_PER_ITERATION,
            log_every=STEPS_PER_ITERATION,
            eval_every=100 * STEPS_PER_ITERATION,
            checkpoint_every=STEPS_PER_ITERATION,
        )
    )
    agent = make_agent(config, environment=NanReward())
    with pytest.raises(TrainingError) as caught:
        train(config, tmp_path, progress=False, agent=agent)
    message = str(caught.value)
    assert "\n" not in message
    assert f"non-finite loss by env_steps={3 * STEPS_PER_ITERATION}" in message
    assert f"last good checkpoint: {tmp_path / 'checkpoints' / str(2 * STEPS_PER_ITERATION)}" in message
    written = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir())
    assert written == [STEPS_PER_ITERATION, 2 * STEPS_PER_ITERATION]
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["env_steps"] for line in lines] == written


def _comparable(lines: list[dict]) -> list[dict]:
    timing = {"wall_time", "env_steps_per_second", "updates_per_second"}
    return [{k: v for k, v in line.items() if k not in timing} for line in lines]


def test_same_seed_same_config_same_metrics(tmp_path, agent):
    """Two runs of the same config and seed on this machine log identical metrics (timings
    aside); the second also writes TensorBoard events (logger.tensorboard), which change
    nothing and hold every number of every metrics line."""
    values = _config(
        total_env_steps=8 * STEPS_PER_ITERATION,
        log_every=2 * STEPS_PER_ITERATION,
        eval_every=4 * STEPS_PER_ITERATION,
        checkpoint_every=8 * STEPS_PER_ITERATION,
        seed=4,
    )
    runs = []
    for name, tensorboard in (("a", False), ("b", True)):
        train(
            config_from_dict({**values, "logger": {"tensorboard": tensorboard}}),
            tmp_path / name,
            progress=False,
            agent=agent,
        )
        runs.append([json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()])
    assert len(runs[0]) == 6 and any("loss" in line for line in runs[0])
    assert _comparable(runs[0]) == _comparable(runs[1])
    assert not list((tmp_path / "a").glob("events.out.tfevents.*"))

    wanted = {}
    for line in runs[1]:
        group = "eval" if "eval_return" in line else "train"
        for key, value in line.items():
            if key != "env_steps" and isinstance(value, (int, float)) and not isinstance(value, bool):
                wanted[(f"{group}/{key}", line["env_steps"])] = value
    (events,) = (tmp_path / "b").glob("events.out.tfevents.*")
    assert _read_scalars(events) == pytest.approx(wanted)


def _read_scalars(path) -> dict:
    """{(tag, step): value} from a TensorBoard event file (TFRecord framing: length, crc,
    payload, crc), parsed with the protobuf tensorboardX ships."""
    import struct

    from tensorboardX.proto.event_pb2 import Event

    data, out, at = path.read_bytes(), {}, 0
    while at < len(data):
        (length,) = struct.unpack("<Q", data[at : at + 8])
        event = Event.FromString(data[at + 12 : at + 12 + length])
        at += 12 + length + 4
        for value in event.summary.value:
            out[(value.tag, event.step)] = value.simple_value
    return out


def test_vmapped_seeds_reproduce_separate_runs(tmp_path, agent):
    """num_seeds = 2 from seed 4 trains seeds 4 and 5 in one vmapped program; each seed's
    metrics.jsonl equals that of a run of its seed alone (timings aside, floats to 1e-5)."""
    values = _config(
        total_env_steps=6 * STEPS_PER_ITERATION,
        log_every=2 * STEPS_PER_ITERATION,
        eval_every=3 * STEPS_PER_ITERATION,
        checkpoint_every=6 * STEPS_PER_ITERATION,
        seed=4,
    )
    together = config_from_dict({**values, "num_seeds": 2})
    summary = train(together, tmp_path / "both", progress=False, agent=make_agent(together, environment=DelayedMatch()))
    assert [entry["seed"] for entry in summary["seeds"]] == [4, 5]
    for seed in (4, 5):
        alone = config_from_dict({**values, "seed": seed})
        with compilations() as compiled:
            train(alone, tmp_path / f"alone_{seed}", progress=False, agent=agent)
        if seed == 5:  # seed 4's run compiled (or an earlier test's did) what seed 5's needs
            assert by_program(compiled, "jit(train_iterations)") == {}, dict(compiled)
        read = lambda path: _comparable([json.loads(x) for x in path.read_text().splitlines()])
        expected = read(tmp_path / f"alone_{seed}" / "metrics.jsonl")
        got = read(tmp_path / "both" / f"seed_{seed}" / "metrics.jsonl")
        assert [sorted(line) for line in got] == [sorted(line) for line in expected]
        for a, b in zip(got, expected):
            for key in a:
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), (seed, key)
        assert (tmp_path / "both" / f"seed_{seed}" / "checkpoints" / str(6 * STEPS_PER_ITERATION)).is_dir()


def test_training_functions_are_reused_for_another_seed_budget_or_schedule_only():
    """training_functions' memo: configs that differ only in PROGRAM_FREE_FIELDS share one set
    of jitted functions (built, not compiled, here); another search, another agent or another
    environment object gets its own."""
    from rmuzero.agent.train import PROGRAM_FREE_FIELDS, training_functions

    assert {"seed", "total_env_steps", "eval_every"} <= set(PROGRAM_FREE_FIELDS)
    values = _config(seed=1, total_env_steps=64, eval_every=32)
    first = training_functions(config_from_dict(values))
    later = {**values, "seed": 7, "total_env_steps": 128, "eval_every": 16, "logger": {"tensorboard": True}}
    assert training_functions(config_from_dict(later)) is first
    other_search = {**values, "search": {**values["search"], "num_simulations": 3}}
    assert training_functions(config_from_dict(other_search)) is not first
    other_eval = {**values, "eval_episodes": 3}  # the evaluation program's size
    assert training_functions(config_from_dict(other_eval)) is not first
    env = DelayedMatch()
    on_env = training_functions(config_from_dict(values), environment=env)
    assert on_env is not first and training_functions(config_from_dict(later), environment=env) is on_env
    assert training_functions(config_from_dict(values), environment=DelayedMatch()) is not on_env


def _evaluation_parts(episodes: int, envs: int, max_steps: int):
    from rmuzero.agent.evaluation import make_evaluate
    from rmuzero.envs.wrappers import wrap_env

    config = config_from_dict(_config())
    agent = make_agent(config, environment=DelayedMatch())
    env = wrap_env(DelayedMatch(), num_envs=envs, prev_action=True, prev_reward=True)
    evaluate = jax.jit(make_evaluate(agent.model, env, episodes=episodes, max_steps=max_steps))
    params = agent.init(jax.random.PRNGKey(0)).params
    return evaluate(params, jax.random.PRNGKey(1))


def test_evaluation_episodes_do_not_depend_on_the_number_of_environments():
    """5 episodes of 3 steps on 2 environments: each plays 3 episodes back to back (9 steps),
    the first 5 are reported, all finished, each 3 steps long."""
    returns, lengths, finished = _evaluation_parts(episodes=5, envs=2, max_steps=1000)
    assert returns.shape == lengths.shape == finished.shape == (5,)
    assert bool(jnp.all(finished)) and bool(jnp.all(lengths == LENGTH))
    assert set(np.asarray(returns).tolist()) <= {-1.0, 1.0}


def test_episodes_cut_by_the_step_limit_are_reported_not_averaged():
    """4 episodes on 2 environments with a 4-step limit: each environment ends its first episode
    at step 3 and is one step into its second: 2 finished, 2 unfinished (not returns of 0)."""
    from rmuzero.agent.train import evaluation_summary

    evaluation = _evaluation_parts(episodes=4, envs=2, max_steps=4)
    np.testing.assert_array_equal(evaluation.finished, [True, True, False, False])
    summary = evaluation_summary(*evaluation)
    assert summary["eval_episodes"] == 2 and summary["eval_unfinished"] == 2
    assert summary["eval_return"] == float(np.mean(np.asarray(evaluation.returns)[:2]))
    assert summary["eval_length"] == LENGTH


def _metrics(path) -> list[dict]:
    return _comparable([json.loads(x) for x in path.read_text().splitlines()])


def test_a_killed_run_resumed_ends_with_the_metrics_of_the_uninterrupted_run(tmp_path):
    """Uninterrupted: 6 iterations, logs / evaluations / checkpoints every 2. Killed: the same run
    stopped after its checkpoint at 4 iterations, having written a line for iteration 5, half a
    line and a half-written checkpoint directory. resume=True continues from the checkpoint at 4:
    the metrics file ends equal to the uninterrupted one; keep_checkpoints=2 (a change resume
    allows) leaves the two newest checkpoints. The training, evaluation and finiteness programs
    each compile once, on train()'s compile thread (compile_log: a second compilation would
    show a state whose types changed between calls, or specs unlike the real state)."""
    every = 2 * STEPS_PER_ITERATION
    values = _config(
        total_env_steps=6 * STEPS_PER_ITERATION, log_every=every, eval_every=every, checkpoint_every=every, seed=2
    )
    config = config_from_dict(values)
    agent = make_agent(config, environment=DelayedMatch())
    with compilations() as whole:
        train(config, tmp_path / "whole", progress=False, agent=agent)

    killed = tmp_path / "killed"
    with compilations() as shorter:  # another budget, the same programs: taken from train()'s memo
        train(
            config_from_dict({**values, "total_env_steps": 4 * STEPS_PER_ITERATION}),
            killed,
            progress=False,
            agent=agent,
        )
    with open(killed / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"env_steps": 5 * STEPS_PER_ITERATION, "episode_return": 9.0}) + "\n")
        f.write('{"env_steps": 96, "eval_ret')
    (killed / "checkpoints" / ".tmp-interrupted").mkdir()
    # keep_checkpoints may change on resume: only the two newest checkpoints stay.
    resumed = config_from_dict({**values, "keep_checkpoints": 2})
    with compilations() as again:
        summary = train(resumed, killed, progress=False, agent=agent, resume=True)
    # The agent's programs compiled once, on the compile thread (train_iterations from the state's
    # shapes while init ran); none on the main thread (_all_finite may be in memory already from
    # an earlier test); the resumed run's restored state needs no program the first run lacked.
    for program in ("jit(train_iterations)", "jit(evaluate)"):
        assert by_program(whole, program) == {"rmuzero-compile": 1}, (program, dict(whole))
        assert by_program(shorter, program) == {}, (program, dict(shorter))
    for program in ("jit(train_iterations)", "jit(evaluate)", "jit(_all_finite)"):
        assert by_program(whole, program).get("MainThread", 0) == 0, (program, dict(whole))
        assert by_program(again, program).get("MainThread", 0) == 0, (program, dict(again))
    assert summary["env_steps"] == 6 * STEPS_PER_ITERATION
    assert _metrics(killed / "metrics.jsonl") == _metrics(tmp_path / "whole" / "metrics.jsonl")
    steps = sorted(int(p.name) for p in (killed / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [2 * every, 3 * every]


def test_resume_refuses_a_changed_run_and_a_fresh_start_refuses_to_overwrite(tmp_path, agent):
    from rmuzero.checkpoint import CheckpointError

    values = _config(
        total_env_steps=2 * STEPS_PER_ITERATION,
        checkpoint_every=STEPS_PER_ITERATION,
        log_every=STEPS_PER_ITERATION,
        eval_every=2 * STEPS_PER_ITERATION,
    )
    config = config_from_dict(values)
    train(config, tmp_path, progress=False, agent=agent)
    before = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(CheckpointError, match="already holds checkpoints.*add resume=true"):
        train(config, tmp_path, progress=False, agent=agent)
    changed = config_from_dict({**values, "system": {**values["system"], "batch_size": 4}, "seed": 3})
    with pytest.raises(CheckpointError, match=r"trained with other seed, system.batch_size \(only total_env_steps"):
        train(changed, tmp_path, progress=False, resume=True)
    with pytest.raises(CheckpointError, match="holds no checkpoint to resume from"):
        train(config, tmp_path / "empty", progress=False, agent=agent, resume=True)
    assert (tmp_path / "metrics.jsonl").read_text() == before

    # A run saved before the logger / distributed / num_devices options existed resumes.
    saved = tmp_path / "checkpoints" / str(2 * STEPS_PER_ITERATION) / "config.json"
    older = {
        k: v for k, v in json.loads(saved.read_text()).items() if k not in ("logger", "distributed", "num_devices")
    }
    saved.write_text(json.dumps(older))
    longer = config_from_dict({**values, "total_env_steps": 3 * STEPS_PER_ITERATION})
    assert train(longer, tmp_path, progress=False, agent=agent, resume=True)["env_steps"] == 3 * STEPS_PER_ITERATION


class BigReward(DelayedMatch):
    """DelayedMatch paying +-100: beyond the default supports (|x| <= ~1.2)."""

    def step(self, state, action):
        state, timestep = super().step(state, action)
        return state, timestep.replace(reward=100.0 * timestep.reward)


def test_targets_outside_the_support_are_reported_once(tmp_path, capsys, agent):
    """Rewards of +-1 fit the default supports; rewards of +-100 fit them too, in units of the
    return scale (128, rmuzero.replay.targets.return_scale); supports narrowed to |x| <= 0.21
    (support_bound 0.1 after h) cannot hold +-1: that is reported, once."""
    values = _config(
        total_env_steps=4 * STEPS_PER_ITERATION,
        log_every=4 * STEPS_PER_ITERATION,
        eval_every=4 * STEPS_PER_ITERATION,
        checkpoint_every=4 * STEPS_PER_ITERATION,
    )
    narrow = {**values, "network": {**values["network"], "support_bound": 0.1}}
    big, narrow_agent = (
        make_agent(config_from_dict(v), environment=e) for v, e in ((values, BigReward()), (narrow, DelayedMatch()))
    )
    cases = (("small", values, agent), ("big", values, big), ("narrow", narrow, narrow_agent))
    for name, case_values, case_agent in cases:
        train(config_from_dict(case_values), tmp_path / name, progress=False, agent=case_agent)
        lines = [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        outside = [line["targets_outside_support"] for line in lines if "targets_outside_support" in line]
        warnings = capsys.readouterr().err.count("outside the supports")
        if name in ("small", "big"):
            assert outside == [0.0] and warnings == 0, name
        else:
            assert outside[0] > 0.0 and warnings == 1


def test_eval_temperature_reaches_the_evaluation_choice(monkeypatch):
    """config.eval_temperature is the temperature evaluate() hands select_action (traced, not run):
    0 by default (greedy), the configured value otherwise; a negative one is refused."""
    import rmuzero.agent.evaluation as evaluation

    seen = []

    def spy(key, output, *, temperature):
        seen.append(temperature)
        return jnp.zeros(output.action_weights.shape[0], jnp.int32)

    monkeypatch.setattr(evaluation, "select_action", spy)
    for temperature in (None, 0.5):
        values = _config() if temperature is None else {**_config(), "eval_temperature": temperature}
        agent = make_agent(config_from_dict(values), environment=DelayedMatch())
        params = jax.eval_shape(agent.init, jax.random.PRNGKey(0)).params
        jax.eval_shape(agent.evaluate, params, jax.random.PRNGKey(1))
    assert seen == [0.0, 0.5]
    with pytest.raises(ConfigError, match=r"config.eval_temperature=-1.0.*valid"):
        config_from_dict({**_config(), "eval_temperature": -1.0})
