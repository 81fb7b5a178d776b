"""The benchmark scripts: their data by hand, their grids from configs/, their errors (configs
compose through rmuzero.cli, tested in tests/test_cli.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jax
import pytest
from conftest import load_script

from rmuzero import cli

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def test_count_probe_labels_by_hand():
    """bench_recall --task count: the label at t counts the value kinds 0..t equal to the query at t."""
    import jax.numpy as jnp
    import numpy as np

    KINDS, count_batch = (getattr(load_script("bench_recall"), name) for name in ("KINDS", "count_batch"))

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

    bench_recall = load_script("bench_recall")
    DECK, KINDS, count_labels, count_recall_batch = (
        bench_recall.DECK,
        bench_recall.KINDS,
        bench_recall.count_labels,
        bench_recall.count_recall_batch,
    )

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

    bench_recall = load_script("bench_recall")
    DECK, KINDS, pooled_deals = bench_recall.DECK, bench_recall.KINDS, bench_recall.pooled_deals

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


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv, error",
    [
        (
            ["system.batch_size=16"],
            "error: system.batch_size=16: system.batch_size is a grid axis here; valid: "
            "batch_sizes=[...] (the grid would replace it)",
        ),
        (
            ["--set", "system.batch_size=16"],
            "error: system.batch_size=16: system.batch_size is a grid axis here; "
            "valid: batch_sizes=[...] (the grid would replace it)",
        ),
        (["pairs=true", "num_envs=[16,64]"], "error: pairs=true needs as many num_envs (2) as batch_sizes (1)"),
    ],
)
def test_throughput_refuses_a_key_that_its_grid_would_replace(argv, error):
    """`bench_throughput.py --set system.batch_size=16` once measured batch 32 (the grid's default)
    while its table said nothing: a key the grid sets is refused, naming the grid's option, in the
    key=value form and the old --set form alike."""
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench_throughput.py"), *argv], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == error


def test_throughput_grid_defaults_are_the_configs():
    """With no num_envs / batch_sizes / simulations the grid is the default run's point (read
    here from the yaml files), and a given axis stays as given."""
    import yaml

    system = yaml.safe_load((SCRIPTS.parent / "configs" / "system" / "muzero.yaml").read_text())
    search = yaml.safe_load((SCRIPTS.parent / "configs" / "search" / "gumbel.yaml").read_text())
    bench_throughput = load_script("bench_throughput")
    args, _ = cli.parse_args(["batch_sizes=[8,64]"], bench_throughput.OPTIONS, usage="", overrides=True)
    bench_throughput.fill_grid_defaults(args, cli.compose())
    assert args["num_envs"] == [system["num_envs"]] and args["simulations"] == [search["num_simulations"]]
    assert args["batch_sizes"] == [8, 64]


def test_throughput_names_the_task_of_every_suite():
    """The table's first line once read ``env['difficulty']``, which only POPGym's config has: a
    gymnax run stopped with a KeyError after measuring nothing."""
    label = load_script("bench_throughput").task_label
    assert label(cli.compose(["env=gymnax", "env.name=Breakout-MinAtar"])["env"]) == "Breakout-MinAtar"
    assert label(cli.compose(["env.difficulty=hard"])["env"]) == "popgym/repeat_previous hard"


def test_no_script_imports_another_or_patches_sys_path():
    """STYLE: scripts share rmuzero.cli; a script never imports another script, nothing patches sys.path."""
    import re

    scripts = "|".join(p.stem for p in SCRIPTS.glob("*.py"))
    for path in [*SCRIPTS.glob("*.py"), *(SCRIPTS.parent / "benchmarks").glob("*/*.py")]:
        text = path.read_text()
        assert "sys.path" not in text, path
        imported = re.findall(rf"^\s*(?:import|from)\s+({scripts})\b", text, flags=re.M)
        assert not imported, f"{path} imports the script(s) {imported}"
