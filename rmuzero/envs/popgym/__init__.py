"""One module per reference POPGym family; see ``rmuzero.envs.registry``."""
