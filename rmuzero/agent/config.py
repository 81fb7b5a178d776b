"""The agent's configuration: typed, frozen, validated once.

``AgentConfig`` is what the library consumes; ``config_from_dict`` builds it
from a plain mapping (what hydra produces, what a checkpoint saves) and rejects
unknown keys and bad values with a one-line message naming the valid ones.
Nothing is mutated after construction; derived values are properties.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from rmuzero.distributed import DistributedConfig
from rmuzero.envs import DIFFICULTIES, list_envs
from rmuzero.envs.sources import SUITES
from rmuzero.networks import MEMORY_MODELS, make_memory
from rmuzero.networks.torso import TORSO_KINDS
from rmuzero.search import SearchConfig
from rmuzero.validation import check_int, check_real


class ConfigError(ValueError):
    """A configuration value is wrong; the message says which and what is valid."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclasses.dataclass(frozen=True)
class LoggerConfig:
    tensorboard: bool = False  # also write TensorBoard event files (tensorboardX) into the run directory

    def __post_init__(self):
        _require(isinstance(self.tensorboard, bool), f"logger.tensorboard={self.tensorboard!r}; valid: true | false")


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    suite: str = "popgym"  # popgym | gymnax | jumanji | popgym_arcade | custom (rmuzero.envs.sources)
    name: str = "popgym/repeat_previous"  # the suite's id: popgym/<family>, CartPole-v1, Snake-v1, CountRecallEasy
    difficulty: str = "easy"  # POPGym's easy | medium | hard
    prev_action: bool = True  # append one_hot(a_{t-1}) to the observation
    prev_reward: bool = True  # append r_{t-1} to the observation
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # gymnax EnvParams fields to change
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # the suite's make() / the factory's arguments
    factory: str | None = None  # custom: package.module:function returning a jumanji env or a gymnax (env, params)

    def __post_init__(self):
        _require(self.suite in SUITES, f"env.suite={self.suite!r}; valid: {', '.join(SUITES)}")
        if self.suite == "popgym":
            _require(self.name in list_envs(), f"env.name={self.name!r}; valid: {', '.join(list_envs())}")
        _require(
            self.difficulty in DIFFICULTIES, f"env.difficulty={self.difficulty!r}; valid: {', '.join(DIFFICULTIES)}"
        )
        for name in ("params", "kwargs"):
            value = getattr(self, name)
            _require(
                value is None or isinstance(value, Mapping),
                f"env.{name}={value!r}; valid: a mapping, e.g. 'env.{name}={{key: value}}'",
            )
            object.__setattr__(self, name, dict(value or {}))


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    memory: str = "ffm"  # memory model of the history encoder
    features: int = 128  # memory width H
    num_layers: int = 1  # memory layers
    latent_size: int = 128  # D
    head_sizes: tuple[int, ...] = (128,)  # hidden sizes of the dynamics / prediction MLPs
    value_bins: int = 101  # categorical support size of the value head
    reward_bins: int = 101  # and of the reward head
    support_bound: float = 0.5  # supports span [-bound, bound] in h-transformed units
    separate_reward_trunk: bool = (
        True  # the reward reads its own MLP, not the next latent's (saved configs without it: False)
    )
    memory_kwargs: Mapping[str, Any] | None = dataclasses.field(default_factory=dict)  # layer options (None: none)
    torso: str = (
        "auto"  # observation leaves -> features: auto (by shape; images / grids through a conv stack) | flatten
    )

    def __post_init__(self):
        _require(
            self.memory in MEMORY_MODELS,
            f"network.memory={self.memory!r}; valid: {', '.join(sorted(MEMORY_MODELS))}",
        )
        for name in ("features", "num_layers", "latent_size"):
            check_int(f"network.{name}", getattr(self, name), error=ConfigError)
        for name in ("value_bins", "reward_bins"):
            check_int(f"network.{name}", getattr(self, name), minimum=2, error=ConfigError)
        object.__setattr__(self, "head_sizes", tuple(self.head_sizes))
        for size in self.head_sizes:
            check_int("network.head_sizes[]", size, error=ConfigError)
        check_real("network.support_bound", self.support_bound, 0.0, 1e6, open_low=True, error=ConfigError)
        _require(
            isinstance(self.separate_reward_trunk, bool),
            f"network.separate_reward_trunk={self.separate_reward_trunk!r}; valid: true | false",
        )
        _require(
            self.memory_kwargs is None or isinstance(self.memory_kwargs, Mapping),
            f"network.memory_kwargs={self.memory_kwargs!r}; valid: a mapping of layer options, "
            "e.g. network.memory_kwargs={memory_size:32}",
        )
        object.__setattr__(self, "memory_kwargs", dict(self.memory_kwargs or {}))
        _require(self.torso in TORSO_KINDS, f"network.torso={self.torso!r}; valid: {', '.join(TORSO_KINDS)}")
        try:  # unknown or bad layer options fail here, in one line, not at trace time
            make_memory(self.memory, features=self.features, num_layers=self.num_layers, **self.memory_kwargs)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"network.memory_kwargs: {error}") from None


@dataclasses.dataclass(frozen=True)
class SystemConfig:
    num_envs: int = 16  # environments stepped together while acting
    rollout_length: int = 16  # acting steps per environment per iteration
    updates_per_iteration: int = 16  # learner updates per iteration (configs/system/muzero.yaml: why 16 of 16)
    sample_ahead: int = 1  # updates whose batches (sequences, targets, reanalysis) are prepared together from
    #                        the state before the first of them (one vmapped call); divides updates_per_iteration
    batch_size: int = 16  # sequences per update
    sequence_length: int | None = None  # L: steps per sampled sequence; None: the task's episode length + 1
    #                                     (capped at AUTO_SEQUENCE_CAP), see resolve_sequence_length
    roots_per_sequence: int = 20  # R: unroll roots drawn per sequence (uniform over its loss positions;
    #                               at most L - burn_in: see roots_for)
    burn_in: int = 4  # leading steps of a sequence that starts mid-episode (stored carry) with no loss
    num_unroll_steps: int = 5  # K
    td_steps: int = 5  # n of the n-step value target (used when td_lambda is None)
    td_lambda: float | None = None  # TD(lambda) value targets instead of n-step when set, in [0, 1]
    discount: float = 0.99  # gamma, also the search tree's discount
    replay_length_per_env: int = 8192  # steps kept per environment (CountRecall learnt the count from 16 x 8192,
    #                                    not from 16 x 2048: docs/experiments/2026-12-03-prediction-gradient-and-replay.md)
    store_all_carries: bool = False  # keep every step's memory carry in replay; False: only where a sequence can
    #                                  begin at one, none when the task's episodes fit the sequence length
    learning_rate: float = 1e-3
    max_grad_norm: float = 5.0
    value_loss_weight: float = 0.5
    reward_loss_weight: float = (
        4.0  # the memory learns what to keep mostly from the reward (configs/system/muzero.yaml)
    )
    policy_loss_weight: float = 1.0
    consistency_loss_weight: float = 0.0  # latent consistency: the dynamics' latent k steps on against the
    #                                       encoder's at t + k (stop-gradient), 1 - centred cosine; 0: off
    dynamics_gradient_scale: float = 0.5  # gradient scale into the recurrent dynamics
    prediction_gradient_scale: float = 0.0  # gradient scale from the value and policy losses into the latents
    #                                         (encoder and dynamics); 0: those heads learn on latents that the
    #                                         reward (and consistency) losses alone shape; a reward that comes more
    #                                         than num_unroll_steps after its action needs 1 (docs/experiments/
    #                                         2026-12-03-prediction-gradient-and-replay.md)
    target_update_period: int = 50  # updates between target-network copies (1 with tau < 1: Polyak)
    target_tau: float = 1.0  # 1: hard copy every period; < 1: Polyak step size
    reanalyse_fraction: float = 0.25  # sequences whose policy / bootstrap targets are refreshed by search
    exploration_epsilon: float = 0.05  # acting: each step, with this probability, a uniform valid action
    #                                    replaces the search's (its policy target stays the search's); 0.05
    #                                    keeps wrong answers in the replay (docs/experiments/2026-12-05-exploration.md)

    def __post_init__(self):
        for name in (
            "num_envs",
            "rollout_length",
            "updates_per_iteration",
            "batch_size",
            "roots_per_sequence",
            "num_unroll_steps",
            "td_steps",
            "replay_length_per_env",
            "target_update_period",
            "sample_ahead",
        ):
            check_int(f"system.{name}", getattr(self, name), error=ConfigError)
        _require(
            self.updates_per_iteration % self.sample_ahead == 0,
            f"system.sample_ahead={self.sample_ahead} must divide system.updates_per_iteration="
            f"{self.updates_per_iteration}; valid: one of "
            f"{', '.join(str(d) for d in range(1, self.updates_per_iteration + 1) if self.updates_per_iteration % d == 0)}",
        )
        check_int("system.burn_in", self.burn_in, minimum=0, error=ConfigError)
        _require(
            isinstance(self.store_all_carries, bool),
            f"system.store_all_carries={self.store_all_carries!r}; valid: true | false",
        )
        if self.sequence_length is not None:
            check_int("system.sequence_length", self.sequence_length, minimum=2, error=ConfigError)
            self.check_sequence_length(self.sequence_length)
        check_real("system.discount", self.discount, 0.0, 1.0, open_low=True, error=ConfigError)
        if self.td_lambda is not None:
            check_real("system.td_lambda", self.td_lambda, 0.0, 1.0, error=ConfigError)
        check_real("system.learning_rate", self.learning_rate, 0.0, 1.0, open_low=True, error=ConfigError)
        check_real("system.max_grad_norm", self.max_grad_norm, 0.0, 1e9, open_low=True, error=ConfigError)
        for name in ("value_loss_weight", "reward_loss_weight", "policy_loss_weight", "consistency_loss_weight"):
            check_real(f"system.{name}", getattr(self, name), 0.0, 1e6, error=ConfigError)
        check_real("system.dynamics_gradient_scale", self.dynamics_gradient_scale, 0.0, 1.0, error=ConfigError)
        check_real("system.prediction_gradient_scale", self.prediction_gradient_scale, 0.0, 1.0, error=ConfigError)
        check_real("system.target_tau", self.target_tau, 0.0, 1.0, open_low=True, error=ConfigError)
        check_real("system.reanalyse_fraction", self.reanalyse_fraction, 0.0, 1.0, error=ConfigError)
        check_real("system.exploration_epsilon", self.exploration_epsilon, 0.0, 1.0, error=ConfigError)

    @property
    def reanalysed_sequences(self) -> int:
        """Sequences of each batch whose targets come from a fresh search."""
        return int(round(self.reanalyse_fraction * self.batch_size))

    def check_sequence_length(self, length: int, origin: str = "system.sequence_length") -> None:
        """One-line ConfigError unless burn-in and replay fit sequences of ``length`` steps."""
        _require(self.burn_in < length, f"system.burn_in={self.burn_in} must be < {origin}={length}")
        _require(
            length <= self.replay_length_per_env,
            f"{origin}={length} must be <= system.replay_length_per_env={self.replay_length_per_env}",
        )


AUTO_SEQUENCE_CAP = 256  # longest sequence chosen automatically; longer episodes are split into segments


def resolve_sequence_length(system: SystemConfig, max_episode_length: int | None) -> int:
    """The sequence length L the learner samples.

    ``system.sequence_length`` when set; otherwise the task's episode length + 1
    (a whole episode from its first step, and the next episode's first
    observation, so the episode's end lies inside the sequence), capped at
    ``AUTO_SEQUENCE_CAP``; 64 for an environment that declares no
    ``max_episode_length``. Episodes longer than L are learnt in segments from
    stored carries (``rmuzero.replay.buffer``).
    """
    if system.sequence_length is not None:
        return system.sequence_length
    length = 64 if max_episode_length is None else min(int(max_episode_length) + 1, AUTO_SEQUENCE_CAP)
    system.check_sequence_length(length, origin="the automatic sequence length (episode length + 1)")
    return length


def roots_for(system: SystemConfig, sequence_length: int) -> int:
    """Roots drawn per sequence: ``roots_per_sequence``, at most the ``L - burn_in``
    positions every sequence has with a loss (short episodes, e.g. MineSweeper Easy)."""
    return min(system.roots_per_sequence, sequence_length - system.burn_in)


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    env: EnvConfig = dataclasses.field(default_factory=EnvConfig)
    network: NetworkConfig = dataclasses.field(default_factory=NetworkConfig)
    search: SearchConfig = dataclasses.field(default_factory=SearchConfig)
    system: SystemConfig = dataclasses.field(default_factory=SystemConfig)
    distributed: DistributedConfig = dataclasses.field(default_factory=DistributedConfig)
    logger: LoggerConfig = dataclasses.field(default_factory=LoggerConfig)
    seed: int = 0
    total_env_steps: int = 100_000  # training budget in environment steps (all envs together)
    eval_every: int = 5_000  # environment steps between evaluations
    eval_episodes: int = 32  # episodes per evaluation (greedy search; unfinished ones reported apart)
    eval_envs: int | None = None  # parallel evaluation environments; None: one per episode
    eval_temperature: float = 0.0  # evaluation's choice from the search's improved policy: 0 its argmax (greedy),
    #                                T > 0 a sample from action_weights ** (1 / T) (1: the improved policy itself)
    log_every: int = 2_000  # environment steps between training log lines
    checkpoint_every: int = 50_000  # environment steps between checkpoints
    keep_checkpoints: int | None = None  # keep only the newest N checkpoints (the final one among them); None: all
    iterations_per_call: int = 1  # training iterations fused into one jitted call (logging waits for the call)
    num_seeds: int = 1  # seeds seed .. seed + N - 1 trained together, vmapped, in one process
    num_devices: int | None = (
        None  # devices the training step is split over (data parallel); None: the most visible ones
    )
    #                                 num_envs and batch_size divide over (every device with several processes)
    early_stop_return: float | None = None  # stop once every evaluation for early_stop_env_steps has been at least
    #                                         this (within 1e-4); None: train to total_env_steps
    early_stop_env_steps: int = 100_000  # how long the evaluations must hold early_stop_return

    def __post_init__(self):
        check_int("config.seed", self.seed, minimum=0, error=ConfigError)
        for name in (
            "total_env_steps",
            "eval_every",
            "eval_episodes",
            "log_every",
            "checkpoint_every",
            "iterations_per_call",
            "num_seeds",
        ):
            check_int(f"config.{name}", getattr(self, name), error=ConfigError)
        if self.eval_envs is not None:
            check_int("config.eval_envs", self.eval_envs, error=ConfigError)
        check_real("config.eval_temperature", self.eval_temperature, 0.0, 100.0, error=ConfigError)
        if self.num_devices is not None:
            check_int("config.num_devices", self.num_devices, error=ConfigError)
        if self.keep_checkpoints is not None:
            check_int("config.keep_checkpoints", self.keep_checkpoints, error=ConfigError)
        if self.early_stop_return is not None:
            check_real("config.early_stop_return", self.early_stop_return, -1e9, 1e9, error=ConfigError)
        check_int("config.early_stop_env_steps", self.early_stop_env_steps, error=ConfigError)
        _require(
            self.search.discount == self.system.discount,
            f"search.discount={self.search.discount} must equal system.discount={self.system.discount} "
            "(the tree discounts with the same gamma as the targets)",
        )

    @property
    def env_steps_per_iteration(self) -> int:
        return self.system.num_envs * self.system.rollout_length


_SECTIONS = {
    "env": EnvConfig,
    "network": NetworkConfig,
    "search": SearchConfig,
    "system": SystemConfig,
    "distributed": DistributedConfig,
    "logger": LoggerConfig,
}


def _build(cls, owner: str, values: Mapping[str, Any]):
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    _require(not unknown, f"unknown {owner} option(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}")
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{owner}: {error}") from None


def config_from_dict(values: Mapping[str, Any]) -> AgentConfig:
    """Builds and validates an :class:`AgentConfig` from nested plain mappings.

    ``search.discount`` defaults to ``system.discount`` when not given.
    """
    values = dict(values)
    sections = {}
    for name, cls in _SECTIONS.items():
        section = dict(values.pop(name, {}) or {})
        if name == "search" and "discount" not in section:
            section["discount"] = dict(values.get("system", {}) or {}).get("discount", SystemConfig.discount)
        sections[name] = _build(cls, name, section)
    return _build(AgentConfig, "config", {**values, **sections})


# Options whose default changed, with the value that reproduces a config saved before they
# existed (a checkpoint's config.json lacks them): (section, key) -> that value.
_BEFORE_OPTION = {
    ("network", "separate_reward_trunk"): False,
    ("system", "store_all_carries"): True,
    ("system", "prediction_gradient_scale"): 1.0,
    ("system", "exploration_epsilon"): 0.0,
}


def saved_config_from_dict(values: Mapping[str, Any]) -> AgentConfig:
    """:func:`config_from_dict` for a config saved with a checkpoint: an option added since
    takes the value that reproduces the saved network (``_BEFORE_OPTION``), not today's default."""
    values = {key: dict(value) if isinstance(value, Mapping) else value for key, value in values.items()}
    for (section, key), before in _BEFORE_OPTION.items():
        if isinstance(values.get(section), dict):
            values[section].setdefault(key, before)
    return config_from_dict(values)


def config_to_dict(config: AgentConfig) -> dict[str, Any]:
    """Plain nested dict of ``config`` (JSON-serialisable); inverse of :func:`config_from_dict`."""
    out = dataclasses.asdict(config)
    out["network"]["head_sizes"] = list(config.network.head_sizes)
    return out
