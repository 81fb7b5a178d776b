"""``python -m rmuzero.envs``: every environment name of the installed suites, a suite per block.

Train on one with ``python scripts/train.py env=<suite> env.name=<name>`` (POPGym:
``env=popgym/<family>``); a suite that is not installed says which extra installs it.
"""

from __future__ import annotations

from rmuzero.envs.sources import SUITES, EnvError, list_names


def main() -> None:
    for suite in SUITES:
        if suite == "custom":
            print(
                "custom: env=custom env.factory=package.module:function (returns a jumanji environment "
                "or a gymnax (env, params) pair)"
            )
            continue
        try:
            names = list_names(suite)
        except EnvError as error:
            print(f"{suite}: not installed ({str(error).split('; ')[-1]})")
            continue
        print(f"{suite} ({len(names)}): {', '.join(names)}")


if __name__ == "__main__":
    main()
