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
from rmuzero.agent.diagnostics import SearchDiagnosis, diagnose_search
from rmuzero.agent.train import load_trained, train

__all__ = [
    "Agent",
    "AgentConfig",
    "ConfigError",
    "EnvConfig",
    "NetworkConfig",
    "SearchDiagnosis",
    "SystemConfig",
    "TrainState",
    "config_from_dict",
    "config_to_dict",
    "diagnose_search",
    "load_trained",
    "make_agent",
    "train",
]
