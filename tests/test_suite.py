"""scripts/suite.py: runs, skips what finished, and writes results.csv / results.md / curves.png."""

from __future__ import annotations

import csv
import json
import shutil
import statistics
from pathlib import Path

import pytest
from conftest import load_script

from rmuzero import cli

suite = load_script("suite")

TINY = [
    "network.features=8",
    "network.latent_size=8",
    "network.head_sizes=[8]",
    "network.value_bins=11",
    "network.reward_bins=11",
    "search.num_simulations=2",
    "search.max_num_considered_actions=2",
    "system.num_envs=4",
    "system.rollout_length=4",
    "system.batch_size=2",
    "system.sequence_length=6",
    "system.roots_per_sequence=2",
    "system.burn_in=0",
    "system.num_unroll_steps=1",
    "system.td_steps=1",
    "system.replay_length_per_env=32",
    "system.updates_per_iteration=1",
    "system.reanalyse_fraction=0.0",
    "eval_episodes=2",
    "total_env_steps=64",
    "eval_every=32",
    "log_every=16",
    "checkpoint_every=32",
]
TIMINGS = ("wall_time", "env_steps_per_second", "updates_per_second")


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_suite_on_a_tiny_budget_writes_one_row_per_run_and_skips_finished_runs(tmp_path, capsys):
    out = tmp_path / "suite"
    # In-process, after pytest started JAX on one CPU device: cpu_devices=1 keeps that device.
    args = ["tasks=[repeat_previous:easy]", "networks=[ffm]", "seeds=[0,1]", f"out={out}", "cpu_devices=1", *TINY]
    suite.main(args)
    rows = _read_csv(out / "results.csv")
    assert [(r["task"], r["difficulty"], r["network"], r["seed"], r["env_steps"]) for r in rows] == [
        ("repeat_previous", "easy", "ffm", "0", "64"),
        ("repeat_previous", "easy", "ffm", "1", "64"),
    ]
    assert all(-1.0 <= float(r["final_eval_return"]) <= 1.0 for r in rows)
    assert "| repeat_previous easy | ffm | 0,1 | 64 |" in (out / "results.md").read_text()
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = (out / "runs" / "repeat_previous-easy" / "ffm" / "seed_1" / "metrics.jsonl").read_text()

    suite.main(args)  # the same --out: nothing trains again, the files are rewritten alike
    assert "done already: repeat_previous:easy ffm seeds [0, 1]" in capsys.readouterr().out
    assert (out / "runs" / "repeat_previous-easy" / "ffm" / "seed_1" / "metrics.jsonl").read_text() == metrics
    assert _read_csv(out / "results.csv") == rows

    # As if killed after the checkpoint at 32 steps: the rerun resumes and ends as the whole run did.
    runs = out / "runs" / "repeat_previous-easy" / "ffm"
    for seed in (0, 1):
        (runs / f"seed_{seed}" / "done.json").unlink()
        shutil.rmtree(runs / f"seed_{seed}" / "checkpoints" / "64")
    suite.main(args)
    assert "resuming: repeat_previous:easy ffm seeds [0, 1]" in capsys.readouterr().out
    assert _untimed(runs / "seed_1" / "metrics.jsonl") == _untimed_text(metrics)
    assert (runs / "seed_0" / "done.json").exists()
    config = json.loads((runs / "seed_1" / "config.json").read_text())
    assert (config["seed"], config["num_seeds"], config["total_env_steps"]) == (0, 2, 64)
    assert (runs / "seed_1" / "commit.txt").read_text().strip() == cli.git_commit()


def _untimed_text(text: str) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMINGS} for line in text.splitlines()]


def _untimed(path: Path) -> list[dict]:
    return _untimed_text(path.read_text())


def _write_run(out: Path, network: str, seed: int, evals: list[tuple[int, float, float]], done: bool = True) -> None:
    directory = out / "runs" / "repeat_previous-medium" / network / f"seed_{seed}"
    directory.mkdir(parents=True)
    lines = []
    for steps, value, wall in evals:
        lines.append(
            {
                "env_steps": steps,
                "episode_return": value,
                "env_steps_per_second": 100.0 + seed,
                "updates_per_second": 10.0,
                "updates": steps // 8,
                "wall_time": wall - 1,
            }
        )
        lines.append({"env_steps": steps, "eval_return": value, "wall_time": wall})
    (directory / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    if done:  # what run_one writes when train() returns
        (directory / "done.json").write_text(json.dumps({"stopped_early": False}))


def test_tables_and_plot_from_metrics_files(tmp_path):
    """Hand-made metrics: the numbers in results.csv / results.md are checked by hand."""
    _write_run(tmp_path, "ffm", 0, [(1000, -0.5, 10.0), (2000, 0.96, 20.0), (3000, 0.90, 30.0)])
    _write_run(tmp_path, "ffm", 1, [(1000, -0.4, 11.0), (2000, 0.50, 21.0), (3000, 0.97, 31.0)])
    _write_run(tmp_path, "gru", 0, [(1000, -0.5, 9.0), (2000, -0.45, 19.0), (3000, -0.3, 29.0)], done=False)
    rows = suite.write_results(
        tmp_path,
        [("repeat_previous", "medium")],
        ["ffm", "gru"],
        [0, 1],
        threshold=0.95,
        command="python scripts/suite.py (fixture)",
        machine="fixture",
    )
    table = _read_csv(tmp_path / "results.csv")
    assert len(rows) == len(table) == 3  # gru seed 1 never ran
    ffm0, ffm1, gru0 = table
    assert (
        ffm0["best_eval_return"],
        ffm0["final_eval_return"],
        ffm0["steps_to_threshold"],
        ffm0["seconds_to_threshold"],
    ) == ("0.96", "0.9", "2000", "20.0")
    assert (ffm1["steps_to_threshold"], ffm1["env_steps_per_second"]) == ("3000", "101.0")
    assert (gru0["steps_to_threshold"], gru0["seconds_to_threshold"]) == ("", "")

    markdown = (tmp_path / "results.md").read_text()
    final = f"{statistics.mean([0.90, 0.97]):.3f} ± {statistics.stdev([0.90, 0.97]):.3f}"  # 0.935 ± 0.049
    from rmuzero.envs.popgym.anchors import reference

    random = reference("popgym/repeat_previous", "medium")["random"]
    ffm_score, gru_score = (0.935 - random) / (1.0 - random), (-0.3 - random) / (1.0 - random)
    # Both ffm seeds settle at 3,000: their 2,000 evaluations (0.96, 0.50) are more than 0.05 from the final.
    assert (
        f"| repeat_previous medium | ffm | 0,1 | 3,000 | {final} | 0.965 ± 0.007 | 3,000 | 2,500 (2/2) "
        f"| {random:.3f} | 1.000 (exact) | {ffm_score:.2f} | POPGym GRU -0.315 (unverified); "
        "POPGym best (LMU) 0.789 (unverified) |"
    ) in markdown
    assert (
        f"| repeat_previous medium | gru | 0 | 3,000 (not finished) | -0.300 | -0.300 | 3,000 | - (0/1) | {random:.3f} "
        f"| 1.000 (exact) | {gru_score:.2f} |"
    ) in markdown
    assert f"ffm {ffm_score:.3f} over 1 tasks, gru {gru_score:.3f} over 1 tasks" in markdown
    assert "Morad, Kortvelesy, Bettini, Liwicki, Prorok, 'POPGym" in markdown
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_tables_only_writes_the_tables_of_the_runs_there_and_trains_nothing(tmp_path, capsys):
    """tables_only=true: results.csv / results.md / curves.png from the metrics already under
    out (one run finished, one not), no run started, nothing else written."""
    _write_run(tmp_path, "ffm", 0, [(1000, -0.5, 10.0), (2000, 0.96, 20.0)])
    _write_run(tmp_path, "ffm", 1, [(1000, -0.4, 11.0)], done=False)
    args = ["tasks=[repeat_previous:medium,count_recall:easy]", "networks=[ffm]", "seeds=[0,1]", f"out={tmp_path}"]
    suite.main([*args, "tables_only=true", "cpu_devices=1"])
    assert "training:" not in capsys.readouterr().out
    rows = _read_csv(tmp_path / "results.csv")
    assert [(r["task"], r["seed"], r["env_steps"], r["final_eval_return"]) for r in rows] == [
        ("repeat_previous", "0", "2000", "0.96"),
        ("repeat_previous", "1", "1000", "-0.4"),
    ]
    assert "| repeat_previous medium | ffm | 0,1 | 2,000 (not finished) |" in (tmp_path / "results.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "results.csv", "results.md", "runs"]
    assert not list(tmp_path.glob("runs/*/*/*/checkpoints"))


def test_settling_point_and_normalised_score_by_hand():
    assert suite.steps_to_final([(10, 0.1), (20, 0.5), (30, 0.52), (40, 0.49)]) == 20
    assert suite.steps_to_final([(10, 0.5), (20, 0.9)]) == 20
    assert suite.steps_to_final([]) is None
    assert suite.normalised(0.25, -0.5, 1.0) == 0.5
    assert suite.normalised(0.25, None, 1.0) is None


def test_the_preset_runs_into_the_folders_it_always_did():
    """preset=popgym-easy (and the old --preset form) is every POPGym family at Easy into
    results/popgym-easy/runs/<task>-easy/ffm/seed_0/, with the preset's overrides for every run;
    options given beside it win, overrides given beside it come after its own."""
    args, overrides = suite.parse(["preset=popgym-easy"])
    assert args["tasks"] == [f"{family}:easy" for family in suite.POPGYM_FAMILIES]
    assert (args["networks"], args["seeds"], args["out"]) == (["ffm"], [0], "results/popgym-easy")
    assert overrides == suite.PRESETS["popgym-easy"]["set"]
    assert suite.run_dir(Path(args["out"]), "autoencode", "easy", "ffm") == Path(
        "results/popgym-easy/runs/autoencode-easy/ffm"
    )
    assert suite.parse(cli.translate_legacy(["--preset", "popgym-easy"])) == (args, overrides)
    args, overrides = suite.parse(["preset=popgym-easy", "seeds=[1,2]", "out=elsewhere", "eval_every=5000"])
    assert (args["seeds"], args["out"], overrides[-1]) == ([1, 2], "elsewhere", "eval_every=5000")
    config = cli.agent_config(cli.compose(suite.run_overrides("count_recall", "easy", "ffm", [0], overrides)))
    assert (config.env.name, config.early_stop_return, config.eval_every) == ("popgym/count_recall", 1.0, 5000)


@pytest.mark.parametrize(
    "argv, named",
    [
        ([], ["out= is required", "popgym-easy"]),
        (["preset=nope"], ["preset=nope", "popgym-easy"]),
        (["out=x", "env.difficulty=hard"], ["env.difficulty=hard", "tasks="]),
        (["out=x", "seed=3"], ["seed=3", "seeds="]),
        (["out=x", "resume=true"], ["resume=true"]),
        (["out=x", "networks=[]"], ["networks=[]"]),
        (["out=x", "system.batchsize=3"], ["system.batch_size", "tasks="]),
    ],
)
def test_a_bad_command_line_is_one_line_naming_the_valid_ones(argv, named):
    with pytest.raises(cli.UsageError) as error:
        suite.parse(argv)
    assert "\n" not in str(error.value) and all(name in str(error.value) for name in named), str(error.value)
