"""Sequence replay with start flags and the target math (one place for each)."""

from rmuzero.replay.buffer import Replay, ReplayState, Sequences, StepRecord, make_replay
from rmuzero.replay.targets import UnrollTargets, batched_unroll_targets, unroll_targets

__all__ = [
    "Replay",
    "ReplayState",
    "Sequences",
    "StepRecord",
    "UnrollTargets",
    "batched_unroll_targets",
    "make_replay",
    "unroll_targets",
]
