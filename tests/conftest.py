"""Suite-wide settings.

The suite is dominated by XLA compilation of small programs on CPU, so:

- the backend compiles without LLVM optimisation (measured on 2 cores: the memory model tests
  158 s -> 57 s, the learning tests 120 s -> 70 s) and with XLA's older loop emitters for
  fusions instead of its MLIR fusion emitters (the agent's training iteration: XLA compile
  10.3 s -> 5.7 s), and in one piece instead of XLA's default 32 split for parallel codegen,
  which on 2 cores busy with two workers only adds work (the whole suite, idle, in one run of
  each: 555 s -> 503 s). Results are the same programs, only less optimised machine code; a flag
  set in XLA_FLAGS yourself wins. Tests that start a Python process pass the same flags on
  (``subprocess_env``).
- every process of one test run (both pytest workers, and the scripts and checks they start)
  shares one persistent JAX compilation cache in a temporary directory, removed when the run
  ends: many tests train the same tiny agent with ``train()``, which builds fresh jitted
  functions each call, and each would otherwise compile the same programs again. A program
  loaded from the cache is the one the compiler produced for that input (the scripts keep
  such a cache by default, so this is the path users take too). ``RMUZERO_TEST_CACHE=off``
  turns it off. No file lock (JAX takes one only with a size bound, and the workers then
  waited on each other: 15:53 against 13:42): an entry read while another process writes it
  fails to decompress, which JAX reports as a warning and answers by compiling.
"""

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

from rmuzero.compilation_cache import COMPILATION_CACHE_VARIABLE, compilation_cache_dir, enable_compilation_cache

FAST_COMPILE_FLAGS = {
    "xla_backend_optimization_level": "0",
    "xla_cpu_use_fusion_emitters": "false",
    "xla_cpu_parallel_codegen_split_count": "1",
}
# XLA's own defaults, for the few programs whose running, not compiling, dominates a test:
# ``jax.jit(f, compiler_options=OPTIMISED)`` (MuZero's 512-simulation search: 24 s -> 4 s).
OPTIMISED = {"xla_backend_optimization_level": 2, "xla_cpu_use_fusion_emitters": True}
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
CACHE_VARIABLE = "RMUZERO_TEST_CACHE"  # set by the first process of a run, inherited by the rest


def with_fast_compile(flags: str) -> str:
    """``flags`` (an XLA_FLAGS value) with each of FAST_COMPILE_FLAGS that it does not set."""
    added = [f"--{name}={value}" for name, value in FAST_COMPILE_FLAGS.items() if name not in flags]
    return " ".join([flags, *added]).strip()


os.environ["XLA_FLAGS"] = with_fast_compile(os.environ.get("XLA_FLAGS", ""))

_created_cache = False
if CACHE_VARIABLE not in os.environ:
    os.environ[CACHE_VARIABLE] = tempfile.mkdtemp(prefix="rmuzero-test-jax-cache-")
    _created_cache = True
CACHE = compilation_cache_dir(os.environ[CACHE_VARIABLE])  # None: off

# Scripts run by the tests use the run's cache (or none), never the user's ~/.cache/rmuzero.
os.environ[COMPILATION_CACHE_VARIABLE] = "off" if CACHE is None else str(CACHE)
enable_compilation_cache(CACHE)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a Python process started by a test: this one's, with the fast-compile
    flags kept in XLA_FLAGS next to any flags given in ``XLA_FLAGS``."""
    env = {**os.environ, **extra}
    env["XLA_FLAGS"] = with_fast_compile(env.get("XLA_FLAGS", ""))
    return env


def load_script(name: str):
    """``scripts/<name>.py`` as a module (scripts are not a package, and nothing patches
    sys.path), loaded once per process, registered first as an import does (dataclasses look
    their module up there)."""
    module_name = f"rmuzero_script_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, SCRIPTS / f"{name}.py")
        sys.modules[module_name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[module_name])
    return sys.modules[module_name]


def pytest_unconfigure(config):
    if _created_cache and CACHE is not None and not hasattr(config, "workerinput"):
        shutil.rmtree(CACHE, ignore_errors=True)
