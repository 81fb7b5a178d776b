"""Train rmuzero: python scripts/train.py env=popgym/repeat_previous [overrides].

Thin: hydra composes the config, the library validates it and trains. Writes
metrics.jsonl and checkpoints/ into the hydra run directory.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from rmuzero.distributed import DistributedConfig, initialize, split_cpu

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "configs")


@hydra.main(config_path=CONFIG_DIR, config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax's per-save INFO chatter
    values = OmegaConf.to_container(cfg, resolve=True)
    progress = bool(values.pop("progress", True))
    cache = values.pop("compilation_cache", None)
    resume = bool(values.pop("resume", False))
    cpu_devices = values.pop("cpu_devices", 1)
    try:  # before anything starts JAX (importing jumanji does): join several processes, or split the CPU
        distributed = DistributedConfig(**(values.get("distributed") or {}))
    except (TypeError, ValueError) as error:
        print(f"error: distributed: {error}", file=sys.stderr)
        sys.exit(2)
    if distributed.enabled:
        initialize(distributed)
    else:
        try:
            split_cpu(cpu_devices)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
    from rmuzero.agent.config import ConfigError, config_from_dict
    from rmuzero.agent.train import TrainingError, compilation_cache_dir, enable_compilation_cache, train
    from rmuzero.checkpoint import CheckpointError

    try:
        config = config_from_dict(values)
        enable_compilation_cache(compilation_cache_dir(cache))

        summary = train(config, HydraConfig.get().runtime.output_dir, progress=progress, resume=resume)
    except (ConfigError, CheckpointError, TrainingError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(summary))


def env_configs() -> list[str]:
    """The env= choices: configs/env/<name>.yaml (the same names as rmuzero.envs.list_envs(),
    read from files so that nothing starts JAX before a multi-process run has joined)."""
    root = Path(CONFIG_DIR) / "env"
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def precheck(argv: list[str]) -> str | None:
    """Errors hydra would report late or badly, found before hydra writes anything.

    An unknown ``env=`` (hydra cannot list the nested options) and a
    ``hydra.run.dir=`` that already holds checkpoints without ``resume=true``
    (hydra would rewrite its ``.hydra/`` record before the run refuses).
    """
    resume = any(token.lstrip("+~").lower() in ("resume=true", "resume=1", "resume=yes") for token in argv)
    for token in argv:
        key, _, value = token.partition("=")
        key = key.lstrip("+~")
        if key == "env" and value not in env_configs():
            return f"env={value!r}; valid: {', '.join(env_configs())}"
        if key == "hydra.run.dir" and not resume:
            checkpoints = Path(value) / "checkpoints"
            if checkpoints.is_dir() and any(checkpoints.iterdir()):
                return (
                    f"{checkpoints} already holds checkpoints; choose another hydra.run.dir=, or add "
                    "resume=true to continue that run (nothing was overwritten)"
                )
    return None


if __name__ == "__main__":
    problem = precheck(sys.argv[1:])
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    main()
