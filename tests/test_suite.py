"""scripts/suite.py: runs, skips what finished, and writes results.csv / results.md / curves.png."""

from __future__ import annotations

import csv
import json
import shutil
import statistics
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import suite  # noqa: E402

TINY = ["network.features=8", "network.latent_size=8", "network.head_sizes=[8]", "network.value_bins=11",
        "network.reward_bins=11", "search.num_simulations=2", "search.max_num_considered_actions=2",
        "system.num_envs=4", "system.rollout_length=4", "system.batch_size=2", "system.sequence_length=6",
        "system.roots_per_sequence=2", "system.burn_in=0", "system.num_unroll_steps=1", "system.td_steps=1",
        "system.replay_length_per_env=32", "system.updates_per_iteration=1", "system.reanalyse_fraction=0.0",
        "eval_episodes=2", "total_env_steps=64", "eval_every=32", "log_every=16", "checkpoint_every=32"]
TIMINGS = ("wall_time", "env_steps_per_second", "updates_per_second")


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_suite_on_a_tiny_budget_writes_one_row_per_run_and_skips_finished_runs(tmp_path, capsys):
    out = tmp_path / "suite"
    # In-process, after pytest started JAX on one CPU device: --cpu-devices 1 keeps that device.
    args = ["--tasks", "repeat_previous:easy", "--networks", "ffm", "--seeds", "0", "1", "--out", str(out),
            "--cpu-devices", "1"]
    for assignment in TINY:
        args += ["--set", assignment]
    suite.main(args)
    rows = _read_csv(out / "results.csv")
    assert [(r["task"], r["difficulty"], r["network"], r["seed"], r["env_steps"]) for r in rows] == [
        ("repeat_previous", "easy", "ffm", "0", "64"), ("repeat_previous", "easy", "ffm", "1", "64")]
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


def _untimed_text(text: str) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMINGS} for line in text.splitlines()]


def _untimed(path: Path) -> list[dict]:
    return _untimed_text(path.read_text())


def _write_run(out: Path, network: str, seed: int, evals: list[tuple[int, float, float]]) -> None:
    directory = out / "runs" / "repeat_previous-medium" / network / f"seed_{seed}"
    directory.mkdir(parents=True)
    lines = []
    for steps, value, wall in evals:
        lines.append({"env_steps": steps, "episode_return": value, "env_steps_per_second": 100.0 + seed,
                      "updates_per_second": 10.0, "updates": steps // 8, "wall_time": wall - 1})
        lines.append({"env_steps": steps, "eval_return": value, "wall_time": wall})
    (directory / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_tables_and_plot_from_metrics_files(tmp_path):
    """Hand-made metrics: the numbers in results.csv / results.md are checked by hand."""
    _write_run(tmp_path, "ffm", 0, [(1000, -0.5, 10.0), (2000, 0.96, 20.0), (3000, 0.90, 30.0)])
    _write_run(tmp_path, "ffm", 1, [(1000, -0.4, 11.0), (2000, 0.50, 21.0), (3000, 0.97, 31.0)])
    _write_run(tmp_path, "gru", 0, [(1000, -0.5, 9.0), (2000, -0.45, 19.0), (3000, -0.3, 29.0)])
    rows = suite.write_results(tmp_path, [("repeat_previous", "medium")], ["ffm", "gru"], [0, 1],
                               threshold=0.95, command="python scripts/suite.py (fixture)", machine="fixture")
    table = _read_csv(tmp_path / "results.csv")
    assert len(rows) == len(table) == 3  # gru seed 1 never ran
    ffm0, ffm1, gru0 = table
    assert (ffm0["best_eval_return"], ffm0["final_eval_return"], ffm0["steps_to_threshold"],
            ffm0["seconds_to_threshold"]) == ("0.96", "0.9", "2000", "20.0")
    assert (ffm1["steps_to_threshold"], ffm1["env_steps_per_second"]) == ("3000", "101.0")
    assert (gru0["steps_to_threshold"], gru0["seconds_to_threshold"]) == ("", "")

    markdown = (tmp_path / "results.md").read_text()
    final = f"{statistics.mean([0.90, 0.97]):.3f} ± {statistics.stdev([0.90, 0.97]):.3f}"  # 0.935 ± 0.049
    assert f"| repeat_previous medium | ffm | 0,1 | 3,000 | {final} | 0.965 ± 0.007 | 2,500 (2/2) | GRU -0.315; best PPO model 0.789 |" in markdown
    assert "| repeat_previous medium | gru | 0 | 3,000 | -0.300 | -0.300 | - (0/1) |" in markdown
    assert "Morad et al., POPGym" in markdown
    assert (tmp_path / "curves.png").stat().st_size > 10_000
