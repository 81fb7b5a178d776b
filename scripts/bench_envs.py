"""Environment steps per second: rmuzero's JAX POPGym vs the reference package.

For each family (at one difficulty):
- JAX: the agent's stack (``rmuzero.envs.wrappers.make_agent_env``: batch-level
  auto-reset, previous action / reward features) over ``--num-envs``
  environments, random actions drawn inside one jitted ``lax.scan`` of
  ``--steps`` steps; the first call (compilation) is excluded; median over
  ``--repeats`` calls. The same for jumanji's ``VmapWrapper(AutoResetWrapper(env))``
  as a second column (under vmap its cond runs ``reset`` on every step).
- Reference: the ``popgym==1.0.7`` class of the same task, one environment
  stepped in Python with ``action_space.sample()`` and a reset when an episode
  ends; median over ``--repeats`` runs of ``--ref-steps`` steps.

Prints a table (family, jax steps/s, jumanji-stack steps/s, reference
steps/s, ratio = jax / reference) and writes it,
with the machine and settings, as JSON to ``out``.

    python scripts/bench_envs.py num_envs=1024 steps=128 repeats=5 \
        families=[repeat_previous,count_recall] out=bench_envs.json

Options: ``num_envs=`` (B, JAX environments stepped together), ``steps=`` (steps per jitted
scan), ``ref_steps=`` (steps per timed run of the reference), ``repeats=`` (timed runs per
measurement, median), ``difficulty=``, ``families=`` (default: every registered one), ``out=``.
"""

from __future__ import annotations

import datetime
import importlib
import inspect
import json
import os
import platform
import statistics
import time
from types import SimpleNamespace

import jax
import jax.numpy as jnp
from jumanji.wrappers import AutoResetWrapper, VmapWrapper

from rmuzero import cli
from rmuzero.envs import DIFFICULTIES, list_envs, make
from rmuzero.envs.wrappers import make_agent_env


def _time_scan(step, state, *, num_envs: int, num_actions: int, steps: int, repeats: int) -> float:
    """Median env steps/s (all B environments counted) of ``step`` in a jitted scan."""

    @jax.jit
    def run(state, key):
        # The checksum keeps XLA from dropping the observation / reward computation.
        def body(carry, step_key):
            state, checksum = carry
            action = jax.random.randint(step_key, (num_envs,), 0, num_actions)
            state, observation, reward = step(state, action)
            return (state, checksum + jnp.sum(observation) + jnp.sum(reward)), None

        (state, checksum), _ = jax.lax.scan(body, (state, jnp.float32(0)), jax.random.split(key, steps))
        return state, checksum

    key = jax.random.PRNGKey(1)
    state, _ = jax.block_until_ready(run(state, key))  # compilation excluded
    seconds = []
    for _ in range(repeats):
        key, run_key = jax.random.split(key)
        start = time.perf_counter()
        state, _ = jax.block_until_ready(run(state, run_key))
        seconds.append(time.perf_counter() - start)
    return num_envs * steps / statistics.median(seconds)


def jax_steps_per_second(name: str, difficulty: str, *, num_envs: int, steps: int, repeats: int) -> float:
    """The agent's stack: ``make_agent_env`` (batch-level auto-reset, features)."""
    agent_env = make_agent_env(name, difficulty=difficulty, num_envs=num_envs)

    def step(state, action):
        state, agent_step = agent_env.step(state, action)
        return state, agent_step.obs, agent_step.reward

    state, _ = jax.jit(agent_env.reset)(jax.random.PRNGKey(0))
    return _time_scan(step, state, num_envs=num_envs, num_actions=agent_env.num_actions, steps=steps, repeats=repeats)


def jumanji_stack_steps_per_second(name: str, difficulty: str, *, num_envs: int, steps: int, repeats: int) -> float:
    """jumanji's own ``VmapWrapper(AutoResetWrapper(env))`` (resets under a vmapped cond)."""
    env = make(name, difficulty)
    batched = VmapWrapper(AutoResetWrapper(env))

    def step(state, action):
        state, timestep = batched.step(state, action)
        return state, timestep.observation, timestep.reward

    state, _ = jax.jit(batched.reset)(jax.random.split(jax.random.PRNGKey(0), num_envs))
    return _time_scan(
        step,
        state,
        num_envs=num_envs,
        num_actions=int(env.action_spec.num_values),
        steps=steps,
        repeats=repeats,
    )


def reference_class(family: str, difficulty: str) -> type:
    """The reference's ``<Family><Difficulty>`` class defined in ``popgym.envs.<family>``."""
    module = importlib.import_module(f"popgym.envs.{family}")
    suffix = difficulty.capitalize()
    found = [
        cls
        for cls_name, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__ and cls_name.endswith(suffix)
    ]
    if len(found) != 1:
        raise ValueError(f"expected one *{suffix} class in {module.__name__}, found {found}")
    return found[0]


def reference_steps_per_second(family: str, difficulty: str, *, steps: int, repeats: int) -> float:
    """Median steps/s of one reference environment stepped in Python."""
    env = reference_class(family, difficulty)()
    env.reset(seed=0)
    env.action_space.seed(0)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        seconds.append(time.perf_counter() - start)
    return steps / statistics.median(seconds)


USAGE = (
    "usage: python scripts/bench_envs.py [num_envs=B] [steps=N] [ref_steps=N] [repeats=N] "
    "[difficulty=<easy|medium|hard>] [families=[...]] [out=<file>]"
)
OPTIONS = {
    "num_envs": 1024,
    "steps": 128,
    "ref_steps": 2000,
    "repeats": 5,
    "difficulty": "easy",
    "families": [],
    "out": "bench_envs.json",
}


def main(argv: list[str]) -> int:
    args = SimpleNamespace(**cli.parse_args(argv, OPTIONS, usage=USAGE, doc=__doc__)[0])
    registered = [name.split("/", 1)[1] for name in list_envs()]
    args.families = [f.strip() for item in args.families for f in str(item).split(",") if f.strip()] or registered
    unknown = sorted(set(args.families) - set(registered))
    if unknown:
        raise cli.UsageError(f"families: unknown {', '.join(unknown)}; valid: {', '.join(registered)}")
    if args.difficulty not in DIFFICULTIES:
        raise cli.UsageError(f"difficulty={args.difficulty}; valid: {', '.join(DIFFICULTIES)}")
    cli.at_least(vars(args), 1, "num_envs", "steps", "ref_steps", "repeats")

    rows = []
    print(
        f"{'family':<30} {'jax steps/s':>13} {'jumanji stack':>14} {'ref steps/s':>12} {'ratio':>8}",
        flush=True,
    )
    for family in args.families:
        name = f"popgym/{family}"
        jax_sps = jax_steps_per_second(
            name, args.difficulty, num_envs=args.num_envs, steps=args.steps, repeats=args.repeats
        )
        jumanji_sps = jumanji_stack_steps_per_second(
            name, args.difficulty, num_envs=args.num_envs, steps=args.steps, repeats=args.repeats
        )
        ref_sps = reference_steps_per_second(family, args.difficulty, steps=args.ref_steps, repeats=args.repeats)
        rows.append(
            {
                "family": family,
                "jax_steps_per_s": jax_sps,
                "jumanji_stack_steps_per_s": jumanji_sps,
                "ref_steps_per_s": ref_sps,
                "ratio": jax_sps / ref_sps,
            }
        )
        print(
            f"{family:<30} {jax_sps:>13,.0f} {jumanji_sps:>14,.0f} {ref_sps:>12,.0f} {jax_sps / ref_sps:>7.1f}x",
            flush=True,
        )

    result = {
        "commit": cli.git_commit(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
            "jax_backend": jax.default_backend(),
            "jax_devices": [str(d) for d in jax.devices()],
            "jax_version": jax.__version__,
        },
        "settings": {
            "difficulty": args.difficulty,
            "num_envs": args.num_envs,
            "steps": args.steps,
            "ref_steps": args.ref_steps,
            "repeats": args.repeats,
        },
        "rows": rows,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    cli.run(main)
