"""POPGym environments in JAX, exact to the reference ``popgym==1.0.7``.

Every environment is a ``jumanji.env.Environment`` (no auto-reset) whose
observation is a float32 vector: the reference observation with each discrete
component one-hot encoded, in the reference's order. Actions are integers as in
the reference (MultiDiscrete actions are flattened to one integer, see each
module).

    >>> import rmuzero.envs
    >>> env = rmuzero.envs.make("popgym/repeat_previous", difficulty="easy")
"""

from rmuzero.envs.registry import DIFFICULTIES, list_envs, make
from rmuzero.envs.wrappers import AgentEnv, AgentStep, make_agent_env, wrap_env

__all__ = [
    "AgentEnv",
    "AgentStep",
    "DIFFICULTIES",
    "list_envs",
    "make",
    "make_agent_env",
    "wrap_env",
]
