"""JAX's persistent compilation cache, where the scripts keep it (light: imports jax only,
so tests/conftest.py can use it before anything else starts)."""

from __future__ import annotations

import os
from pathlib import Path

import jax

COMPILATION_CACHE_VARIABLE = "RMUZERO_COMPILATION_CACHE"
DEFAULT_COMPILATION_CACHE = "~/.cache/rmuzero/jax"


def compilation_cache_dir(value: str | None = None) -> Path | None:
    """Where the scripts keep JAX's persistent compilation cache: ``value`` if given, else
    ``$RMUZERO_COMPILATION_CACHE``, else ``~/.cache/rmuzero/jax``; None for "" / "off" / "none"."""
    if value is None:
        value = os.environ.get(COMPILATION_CACHE_VARIABLE, DEFAULT_COMPILATION_CACHE)
    if str(value).strip().lower() in ("", "off", "none", "null", "false"):
        return None
    return Path(os.path.expanduser(str(value)))


def enable_compilation_cache(directory: Path | None) -> None:
    """Turns on JAX's persistent compilation cache in ``directory`` (no-op for None): a second
    run with the same shapes loads its programs instead of compiling them."""
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
