"""scripts/plot_results.py draws the README's figure from the results folders' metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_script

from rmuzero import cli

ROOT = Path(__file__).resolve().parent.parent
plot_results = load_script("plot_results")


def test_every_default_folder_has_curves():
    for folder in plot_results.DEFAULTS:
        curves = plot_results.eval_curves(ROOT / folder)
        assert curves.get("ffm"), folder
        assert all(len(steps) == len(returns) > 0 for steps, returns in curves["ffm"])


def test_eval_curves_by_hand(tmp_path):
    seed = tmp_path / "gru" / "seed_3"
    seed.mkdir(parents=True)
    (seed / "metrics.jsonl").write_text(
        '{"env_steps": 10, "episode_return": 0.1}\n'
        '{"env_steps": 20, "eval_return": -0.5}\n'
        '{"env_steps": 40, "eval_return": 0.25}\n'
    )
    assert plot_results.eval_curves(tmp_path) == {"gru": [([20, 40], [-0.5, 0.25])]}


def test_writes_the_figure(tmp_path):
    out = tmp_path / "curves.png"
    plot_results.main([f"out={out}", "dirs=results/repeat_previous_easy,results/count_recall_easy"])
    assert out.stat().st_size > 0


def test_unknown_option_is_one_line(capsys):
    with pytest.raises(cli.UsageError, match="valid: out="):
        plot_results.main(["colour=red"])
