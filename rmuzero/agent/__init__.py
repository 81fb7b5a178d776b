"""The agent: configuration, acting / learning / reanalysis, and the training run.

    from rmuzero.agent import AgentConfig, make_agent, train
    summary = train(AgentConfig(), "runs/example")
"""

from rmuzero.agent.agent import Agent, TrainState, make_agent
from rmuzero.agent.config import (
    AgentConfig,
    ConfigError,
    EnvConfig,
    NetworkConfig,
    SystemConfig,
    config_from_dict,
    config_to_dict,
)
from rmuzero.agent.train import load_trained, train

__all__ = sorted(
    [
        "Agent",
        "AgentConfig",
        "ConfigError",
        "EnvConfig",
        "NetworkConfig",
        "SystemConfig",
        "TrainState",
        "config_from_dict",
        "config_to_dict",
        "load_trained",
        "make_agent",
        "train",
    ]
)
