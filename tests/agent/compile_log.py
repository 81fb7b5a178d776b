"""Counts XLA compilations by program and thread, from jax's compile log ("Finished XLA
compilation of <program> in ..." on the ``jax._src.dispatch`` logger, on with ``jax_log_compiles``).
A program taken from the persistent compilation cache is logged too: the count is how often jit
had no executable in memory for a call, which is what a program compiled twice would show."""

from __future__ import annotations

import collections
import contextlib
import logging
import re

import jax

_FINISHED = re.compile(r"Finished XLA compilation of (\S+) in")


@contextlib.contextmanager
def compilations():
    """Yields a Counter of ``(program, thread name)`` filled while the block runs (every thread:
    the flag is set globally, not with jax's thread-local context manager)."""
    counts: collections.Counter = collections.Counter()

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found = _FINISHED.match(record.getMessage())
            if found:
                counts[found.group(1), record.threadName] += 1

    logger = logging.getLogger("jax._src.dispatch")
    handler, propagate, flag = Count(), logger.propagate, jax.config.jax_log_compiles
    logger.addHandler(handler)
    logger.propagate = False  # counted, not printed
    jax.config.update("jax_log_compiles", True)
    try:
        yield counts
    finally:
        jax.config.update("jax_log_compiles", flag)
        logger.removeHandler(handler)
        logger.propagate = propagate


def by_program(counts: collections.Counter, program: str) -> dict[str, int]:
    """``{thread name: compilations}`` of one program (e.g. ``jit(train_iterations)``)."""
    return {thread: n for (name, thread), n in counts.items() if name == program}
