"""Suite-wide settings.

The suite is dominated by XLA compilation of small programs on CPU, so:

- the backend compiles without LLVM optimisation (measured on 2 cores: the memory model tests
  158 s -> 57 s, the learning tests 120 s -> 70 s). Results are the same programs, only less
  optimised machine code; set XLA_FLAGS yourself to override. Tests that start a Python
  process pass the same flag on (``subprocess_env``).
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

import os
import shutil
import tempfile

from rmuzero.compilation_cache import COMPILATION_CACHE_VARIABLE, compilation_cache_dir, enable_compilation_cache

OPTIMISATION_FLAG = "--xla_backend_optimization_level=0"
CACHE_VARIABLE = "RMUZERO_TEST_CACHE"  # set by the first process of a run, inherited by the rest

if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + OPTIMISATION_FLAG).strip()

_created_cache = False
if CACHE_VARIABLE not in os.environ:
    os.environ[CACHE_VARIABLE] = tempfile.mkdtemp(prefix="rmuzero-test-jax-cache-")
    _created_cache = True
CACHE = compilation_cache_dir(os.environ[CACHE_VARIABLE])  # None: off

# Scripts run by the tests use the run's cache (or none), never the user's ~/.cache/rmuzero.
os.environ[COMPILATION_CACHE_VARIABLE] = "off" if CACHE is None else str(CACHE)
enable_compilation_cache(CACHE)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a Python process started by a test: this one's, with the
    unoptimised backend kept in XLA_FLAGS next to any flags given in ``XLA_FLAGS``."""
    env = {**os.environ, **extra}
    flags = env.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags:
        env["XLA_FLAGS"] = (flags + " " + OPTIMISATION_FLAG).strip()
    return env


def pytest_unconfigure(config):
    if _created_cache and CACHE is not None and not hasattr(config, "workerinput"):
        shutil.rmtree(CACHE, ignore_errors=True)
