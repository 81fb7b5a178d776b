"""Bad command lines of the scripts (train.py, evaluate.py, diagnose_search.py, suite.py and the
benchmarks, all through rmuzero.cli) fail fast with one clear error (docs/design.md section 6;
STYLE: "bad input gets a one-line error saying what was wrong and what is valid").

Every case must: exit with status 2; print no traceback; print its error as one line
``error: ...`` (JAX's compilation log aside); name the bad value and the valid ones; and stop
before the agent is built: no compilation of the agent's jitted functions and nothing written
to the run directory.

``PROCESS_CASES`` (each script at least once, and every case that is about the process, such as
a suite that cannot be imported) run the script in a fresh process, as a user does, a few at a
time (``JAX_LOG_COMPILES=1`` logs every compilation). The other cases call the same script's
``main`` through ``cli.run`` in this process, where JAX has started already (so ``cpu_devices=1``,
the device count it has, is added where the script sets devices up): the same code raising the
same error, without the ~5 s each process spends importing JAX and the agent.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from compile_log import compilations
from conftest import load_script

from rmuzero import cli
from rmuzero.envs import list_envs

REPO = Path(__file__).resolve().parents[2]
CONCURRENT = 4
AGENT_PROGRAMS = r"jit\((init|collect|train_iterations?|can_sample|evaluate)\)"
AGENT_COMPILE = re.compile(rf"Compiling {AGENT_PROGRAMS}")
JAX_LOG = re.compile(r"(\[[^\n]*\]\s*-\s*)?(Finished |Compiling )")  # JAX_LOG_COMPILES lines

NETWORKS = sorted(p.stem for p in (REPO / "configs" / "network").glob("*.yaml"))
SEARCHES = sorted(p.stem for p in (REPO / "configs" / "search").glob("*.yaml"))

# name -> (script, arguments, strings the error output must contain: the bad value, the valid ones)
TRAIN_CASES = {
    "unknown_env": (["env=popgym/nope"], ["popgym/nope", *list_envs()]),
    "unknown_network": (["network=transformer"], ["transformer", *NETWORKS]),
    "unknown_search": (["search=alphazero"], ["alphazero", *SEARCHES]),
    "zero_budget": (["total_env_steps=0"], ["total_env_steps=0", "valid", ">= 1"]),
    "zero_simulations": (["search.num_simulations=0"], ["num_simulations=0", "valid", "> 0"]),
    "negative_batch": (["system.batch_size=-1"], ["batch_size=-1", "valid", ">= 1"]),
    "unknown_difficulty": (["env.difficulty=extreme"], ["extreme", "easy", "medium", "hard"]),
    "zero_cpu_devices": (["cpu_devices=0"], ["cpu_devices=0", "valid", ">= 1"]),
    "misspelt_memory_option": (
        ["network.memory_kwargs={memroy_size:32}"],
        ["memroy_size", "memory_size", "context_size", "min_period"],
    ),
    "misspelt_key": (["system.batchsize=8"], ["system.batchsize", "system.batch_size"]),
    "not_key_value": (["seed"], ["'seed'", "key=value"]),
}
# Bad environments (rmuzero/envs/sources.py): name -> (arguments, strings the error must contain).
ENV_CASES = {
    "env_unknown_gymnax_id": (["env=gymnax", "env.name=CartPol"], ["CartPol", "CartPole-v1", "MemoryChain-bsuite"]),
    "env_unknown_jumanji_id": (["env=jumanji", "env.name=Snake"], ["Snake", "Snake-v1", "Minesweeper-v0"]),
    "env_suite_not_installed": (["env=popgym_arcade"], ["popgym_arcade", "pip install -e '.[arcade]'"]),
    "env_continuous_actions": (["env=gymnax", "env.name=Pendulum-v1"], ["Pendulum-v1", "discrete actions"]),
    "env_factory_not_importable": (
        ["env=custom", "env.factory=no_such_package.envs:make"],
        ["no_such_package.envs:make", "cannot import"],
    ),
    "env_factory_returns_other": (
        ["env=custom", "env.factory=builtins:dict"],
        ["builtins:dict", "returned dict", "jumanji.Environment", "gymnax (env, params)"],
    ),
    "env_unknown_params": (
        ["env=gymnax", "env.name=CartPole-v1", "env.params={memory_length: 100}"],
        ["memory_length", "max_steps_in_episode", "gravity"],
    ),
}
NOT_INSTALLED = "popgym_arcade"  # env_suite_not_installed runs with a stand-in package that fails to import

# name -> (script, arguments, strings the error must contain): the scripts that are not train.py's
OTHER_CASES = {
    "suite_unknown_preset": ("suite.py", ["preset=popgym-hard"], ["preset=popgym-hard", "popgym-easy"]),
    "suite_sets_env_itself": (
        "suite.py",
        ["out=/nonexistent/suite", "env.difficulty=hard"],
        ["env.difficulty=hard", "tasks="],
    ),
    "suite_unknown_task": (
        "suite.py",
        ["out=/nonexistent/suite", "tasks=[repeat_prev:easy]"],
        ["repeat_prev", "repeat_previous", "easy | medium | hard"],
    ),
    "suite_old_form_unknown_task": (
        "suite.py",
        ["--tasks", "repeat_prev:easy", "--out", "/nonexistent/suite"],
        ["repeat_prev", "repeat_previous"],
    ),
    "learning_sets_network_itself": ("bench_learning.py", ["network=gru"], ["network=gru", "networks="]),
    "throughput_zero_devices": ("bench_throughput.py", ["devices=[0]"], ["devices=0", ">= 1"]),
    "encoder_unknown_model": ("bench_encoder.py", ["models=[gpt]"], ["gpt", "ffm", "gru"]),
    "envs_unknown_family": ("bench_envs.py", ["families=[nope]"], ["nope", "repeat_previous"]),
    "recall_unknown_task": ("bench_recall.py", ["task=sort"], ["task=sort", "recall", "count_recall"]),
}


def _evaluate_cases(tmp: Path) -> dict:
    empty = tmp / "empty_run"
    empty.mkdir()
    missing = tmp / "no_such_run"
    return {
        "missing_checkpoint": ([f"checkpoint={missing}", "episodes=3"], [str(missing), "does not exist"]),
        "empty_checkpoint_dir": ([f"checkpoint={empty}", "episodes=3"], [str(empty), "checkpoints/<step>"]),
        "zero_episodes": ([f"checkpoint={empty}", "episodes=0"], ["episodes=0", "valid", ">= 1"]),
        "negative_temperature": ([f"checkpoint={empty}", "temperature=-1"], ["temperature=-1", "valid", "greedy"]),
    }


def _diagnose_cases(tmp: Path) -> dict:
    missing = tmp / "no_such_run"
    return {
        "diagnose_missing_checkpoint": ([f"checkpoint={missing}"], [str(missing), "does not exist"]),
        "diagnose_zero_envs": ([f"checkpoint={missing}", "envs=0"], ["envs=0", "valid", ">= 1"]),
        "diagnose_unknown_option": (
            [f"checkpoint={missing}", "episodes=3"],
            ["episodes=3", "checkpoint=", "steps=", "envs=", "seed="],
        ),
    }


# Run as a fresh process: one case per script at least, and the process-level cases.
PROCESS_CASES = (
    "unknown_env",  # train.py
    "env_suite_not_installed",  # a suite shadowed by a module that fails to import
    "missing_checkpoint",  # evaluate.py
    "diagnose_missing_checkpoint",
    "suite_old_form_unknown_task",  # suite.py; the --option form: cpu_devices=1 cannot be added to it
    "throughput_zero_devices",
)
IN_PROCESS_EXTRA = {"train.py": ["cpu_devices=1"], "suite.py": ["cpu_devices=1"]}  # the devices JAX has here


def _env(shadow: Path | None = None) -> dict:
    env = dict(os.environ)
    env["JAX_PLATFORMS"] = "cpu"
    env["JAX_LOG_COMPILES"] = "1"
    if shadow is not None:  # a package of this name that raises ImportError, first on the path
        env["PYTHONPATH"] = os.pathsep.join([str(shadow), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict:
    """name -> (script, arguments, strings the error must contain, run directory or None)."""
    tmp = tmp_path_factory.mktemp("cli")
    out = {}
    for name, (args, expected) in {**TRAIN_CASES, **ENV_CASES}.items():
        run_dir = tmp / name
        out[name] = ("train.py", [*args, f"hydra.run.dir={run_dir}", "progress=false"], expected, run_dir)
    for name, (args, expected) in _evaluate_cases(tmp).items():
        out[name] = ("evaluate.py", args, expected, None)
    for name, (args, expected) in _diagnose_cases(tmp).items():
        out[name] = ("diagnose_search.py", args, expected, None)
    for name, (script, args, expected) in OTHER_CASES.items():
        out[name] = (script, args, expected, None)
    return out


@pytest.fixture(scope="module")
def results(cases, tmp_path_factory):
    """The PROCESS_CASES, run concurrently (a few at a time): name -> what the process did."""
    shadow = tmp_path_factory.mktemp("shadow")
    (shadow / NOT_INSTALLED).mkdir(parents=True)
    (shadow / NOT_INSTALLED / "__init__.py").write_text("raise ImportError('not installed (a test stand-in)')\n")
    out, pending, running = {}, list(PROCESS_CASES), {}
    while pending or running:
        while pending and len(running) < CONCURRENT:
            name = pending.pop(0)
            script, args, _, _ = cases[name]
            process = subprocess.Popen(
                [sys.executable, f"scripts/{script}", *args],
                cwd=REPO,
                env=_env(shadow if name == "env_suite_not_installed" else None),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            running[name] = process
        name = next(iter(running))
        process = running.pop(name)
        stdout, stderr = process.communicate(timeout=300)
        compiled = re.findall(AGENT_COMPILE, stdout + stderr)
        out[name] = dict(returncode=process.returncode, stdout=stdout, stderr=stderr, compiled=compiled)
    return out


def _in_process(script: str, args: list[str], monkeypatch) -> dict:
    """``cli.run(main, args)`` of ``script`` here: its exit status, output and agent compilations."""
    monkeypatch.chdir(REPO)
    stdout, stderr = io.StringIO(), io.StringIO()
    with compilations() as counts, contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        with pytest.raises(SystemExit) as exit_status:
            given = {arg.partition("=")[0] for arg in args}
            extra = [arg for arg in IN_PROCESS_EXTRA.get(script, []) if arg.partition("=")[0] not in given]
            cli.run(load_script(script.removesuffix(".py")).main, [*args, *extra])
    compiled = [program for program, _ in counts if re.fullmatch(AGENT_PROGRAMS, program)]
    return dict(
        returncode=exit_status.value.code, stdout=stdout.getvalue(), stderr=stderr.getvalue(), compiled=compiled
    )


def _message(text: str) -> str:
    """The output without JAX's compilation log lines."""
    return "\n".join(line for line in text.splitlines() if not JAX_LOG.match(line))


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        *TRAIN_CASES,
        *ENV_CASES,
        "missing_checkpoint",
        "empty_checkpoint_dir",
        "zero_episodes",
        "diagnose_missing_checkpoint",
        "diagnose_zero_envs",
        "diagnose_unknown_option",
        *OTHER_CASES,
    ],
)
def test_bad_command_line_fails_fast_with_a_one_line_error(cases, results, name, monkeypatch):
    script, args, expected, run_dir = cases[name]
    result = results[name] if name in PROCESS_CASES else _in_process(script, args, monkeypatch)
    stderr = _message(result["stderr"])
    report = f"{name}: rc={result['returncode']}\nstderr:\n{stderr[-3000:]}"
    assert result["returncode"] == 2, report
    assert "Traceback" not in result["stderr"] + result["stdout"], report
    errors = [line for line in stderr.splitlines() if not line.startswith("note: the --option form")]
    assert len(errors) == 1 and errors[0].startswith("error: ") and len(errors[0]) <= 2500, (
        f"not one line 'error: ...'; {report}"
    )
    missing = [s for s in expected if s not in stderr]
    assert not missing, f"the error does not name {missing}; {report}"
    assert not result["compiled"], f"{name}: compiled {result['compiled']} before failing"
    assert run_dir is None or not run_dir.exists(), f"{name}: wrote into the run directory"


def test_every_script_is_run_as_a_process_by_one_case_at_least(cases):
    assert set(PROCESS_CASES) <= set(cases)
    assert {cases[name][0] for name in PROCESS_CASES} >= {"train.py", "evaluate.py", "diagnose_search.py", "suite.py"}
