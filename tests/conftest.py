"""Suite-wide settings.

The suite is dominated by XLA compilation of small programs on CPU, so the
backend compiles without LLVM optimisation (measured on 2 cores: the memory
model tests 158 s -> 57 s, the learning tests 120 s -> 70 s). Results are the
same programs, only less optimised machine code; set XLA_FLAGS yourself to
override.
"""

import os

if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

# Scripts run by the tests keep no persistent compilation cache unless a test asks for one
# (tests/agent/test_checkpoint_evaluate.py checks the cache in a temporary directory).
os.environ.setdefault("RMUZERO_COMPILATION_CACHE", "off")
