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

from rmuzero.agent.config import ConfigError, config_from_dict
from rmuzero.checkpoint import CheckpointError

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "configs")


@hydra.main(config_path=CONFIG_DIR, config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax's per-save INFO chatter
    values = OmegaConf.to_container(cfg, resolve=True)
    progress = bool(values.pop("progress", True))
    try:
        config = config_from_dict(values)
        from rmuzero.agent.train import train

        summary = train(config, HydraConfig.get().runtime.output_dir, progress=progress)
    except (ConfigError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
