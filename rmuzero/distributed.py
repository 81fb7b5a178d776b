"""Before JAX starts: several processes (hosts) in one run (``jax.distributed.initialize``),
and a CPU host split into several JAX devices (``split_cpu``).

Importing this module starts nothing (it must run before jumanji, whose import creates
arrays). Every process runs the same command with its own ``process_id``; the devices of
all processes then form one mesh (``rmuzero.agent.parallel``). On CPU the collectives go
through gloo.
"""

from __future__ import annotations

import dataclasses
import os
import re

import jax

from rmuzero.validation import check_int

__all__ = ["DistributedConfig", "initialize", "split_cpu"]


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
    """The ``distributed`` config section: all three set (several processes) or all None."""

    coordinator_address: str | None = None  # host:port of process 0, e.g. 10.0.0.1:1234
    num_processes: int | None = None
    process_id: int | None = None  # 0 .. num_processes - 1; process 0 writes metrics and checkpoints

    def __post_init__(self):
        given = [v is not None for v in (self.coordinator_address, self.num_processes, self.process_id)]
        if any(given) and not all(given):
            raise ValueError(
                "coordinator_address, num_processes and process_id are set together (several "
                "processes) or all null (one process)"
            )
        if all(given):
            if not (isinstance(self.coordinator_address, str) and ":" in self.coordinator_address):
                raise ValueError(f"coordinator_address={self.coordinator_address!r}; valid: host:port")
            check_int("num_processes", self.num_processes, 1)
            check_int("process_id", self.process_id, 0)
            if self.process_id >= self.num_processes:
                raise ValueError(
                    f"process_id={self.process_id}; valid: 0 .. {self.num_processes - 1} "
                    f"(num_processes={self.num_processes})"
                )

    @property
    def enabled(self) -> bool:
        return self.num_processes is not None


def _backend_started() -> bool:
    from jax._src import xla_bridge

    return bool(xla_bridge._backends)


def initialize(config: DistributedConfig) -> None:
    """Joins the run of ``config.num_processes`` processes coordinated at
    ``config.coordinator_address`` (host:port of process 0); a no-op for one process or
    when already joined.

    Raises:
      RuntimeError: JAX already started in this process (initialize first, before importing
        ``rmuzero.agent``, jumanji or anything else that creates arrays).
    """
    if not config.enabled or jax.distributed.is_initialized():
        return
    if _backend_started():
        raise RuntimeError(
            "distributed.* is set but JAX has already started in this process; call "
            "rmuzero.distributed.initialize(...) before importing rmuzero.agent or jumanji (scripts/train.py does)"
        )
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives across processes
    jax.distributed.initialize(
        coordinator_address=config.coordinator_address, num_processes=config.num_processes, process_id=config.process_id
    )


def available_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def split_cpu(count: int) -> int:
    """Makes JAX's CPU backend ``min(count, available_cores())`` devices; returns that number.
    ``XLA_FLAGS=--xla_force_host_platform_device_count=N``, when set, wins (N is returned).

    One XLA CPU device runs most of a small update's operations on one core; with one device
    per core the data-parallel training step (``num_devices``) uses them all. A GPU or TPU host
    keeps its accelerators as the default devices, so this changes nothing there.

    Raises:
      ValueError: ``count`` is not an integer >= 1.
      RuntimeError: JAX already started in this process with another number of CPU devices.
    """
    check_int("cpu_devices", count, 1)
    forced = re.search(r"--xla_force_host_platform_device_count=(\d+)", os.environ.get("XLA_FLAGS", ""))
    if forced:  # the environment's explicit choice wins
        return int(forced.group(1))
    count = min(count, available_cores())
    if _backend_started():
        if len(jax.devices("cpu")) != count:
            raise RuntimeError(
                f"cpu_devices={count} but JAX has already started in this process; call "
                "rmuzero.distributed.split_cpu(...) before importing rmuzero.agent or jumanji (scripts/train.py does)"
            )
        return count
    jax.config.update("jax_num_cpu_devices", count)
    return count
