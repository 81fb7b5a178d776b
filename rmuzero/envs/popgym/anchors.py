"""Reference returns for every POPGym family x difficulty: published scores, chance and ceiling.

One entry per ``(name, difficulty)``, ``name`` as in ``rmuzero.envs.list_envs()``
(``"popgym/repeat_previous"``) and ``difficulty`` in ``("easy", "medium", "hard")``.
Every value is an undiscounted episode return on the task's own reward scale
(most families in [-1, 1]). Fields of ``REFERENCES[(name, difficulty)]``:

- ``popgym_gru``, ``popgym_best``, ``popgym_best_model``: the POPGym paper's
  (Morad et al., ICLR 2023) scores for the GRU and for the best of its memory
  models (RLlib PPO, 15M env steps, mean over 3 trials). The metric is the MMER,
  the "max-mean episodic reward" (the S5 paper's words): the largest mean
  episodic return seen during training. Filled only where a copy of the paper's
  table could be read: the five Hard tasks the S5 paper reprints
  (``PUBLISHED_FROM``); None elsewhere (``NOT_FOUND``). Easy and Medium figures
  from a third party's transcription are in ``UNVERIFIED``.
- ``s5``: the S5 paper's (Lu et al., NeurIPS 2023) own S5 result (PPO, 8 seeds,
  MMER); it reports only those five Hard tasks, so None elsewhere.
- ``ffm``: the FFM paper's (Morad et al., NeurIPS 2023) figure for the task;
  None everywhere: no copy of its per-task numbers was found (``NOT_FOUND``).
- ``random``, ``random_stderr``, ``random_episodes``: the mean return of the
  uniform random policy (each action drawn uniformly from the ``A`` actions,
  independently), its standard error, and the number of episodes, measured in
  this project's JAX environments by ``scripts/popgym_random_returns.py``
  (``SOURCES["random"]``).
- ``best_possible``: the ceiling, the best expected return a policy can reach,
  or an upper bound of it; ``best_possible_kind`` says which:
  * ``"exact"``: derived from the env code, and reached by a policy that sees
    only the observations (the card tasks: on every episode, by memory; the
    two CartPoles: on every episode played, by the controllers of
    ``tests/envs/test_anchors.py``);
  * ``"upper bound"``: derived from the env code; no policy's expected return
    is above it, and it may be out of reach (the note says why);
  * ``"upper bound (Monte Carlo)"``: the mean return of a clairvoyant oracle
    that knows the hidden state, measured over many episodes (an upper bound
    of every observation-only policy's expectation, up to its standard error);
  * ``"optimal (Monte Carlo)"``: the mean return of a policy proved optimal,
    measured over many episodes.
  ``best_possible_stderr`` is the Monte Carlo standard error (None when
  derived); ``best_possible_note`` says in one line where the value comes from.

``UNVERIFIED`` holds figures said to be the POPGym paper's that no copy of the
paper confirms: a third party's transcription of its Easy / Medium / Hard GRU
and best-model scores, which agrees with the S5 paper's reprint on all three
cells both hold. Shown apart, marked unverified; never used as a target.

    >>> from rmuzero.envs.popgym.anchors import reference
    >>> reference("popgym/repeat_previous", "hard")["best_possible"]
    1.0
"""

from __future__ import annotations

from rmuzero.envs.registry import DIFFICULTIES, list_envs

__all__ = ["BEST_POSSIBLE_KINDS", "NOT_FOUND", "PUBLISHED_FROM", "REFERENCES", "SOURCES", "UNVERIFIED", "reference"]

SOURCES: dict[str, str] = {
    "popgym": (
        "Morad, Kortvelesy, Bettini, Liwicki, Prorok, 'POPGym: Benchmarking Partially Observable "
        "Reinforcement Learning', ICLR 2023, arXiv:2303.01859, https://openreview.net/forum?id=chDrutUTs0K; "
        "per-task MMER (RLlib PPO, 15M env steps, 3 trials). The paper itself could not be read here (NOT_FOUND); "
        "its Hard figures for five tasks are read from the S5 paper's reprint (PUBLISHED_FROM)."
    ),
    "s5": (
        "Lu, Schroecker, Gu, Parisotto, Foerster, Singh, Behbahani, 'Structured State Space Models for "
        "In-Context Reinforcement Learning', NeurIPS 2023, arXiv:2303.03982; appendix table "
        "'Results in POPGym's suite' (label table:popgym-results-app): MMER of S5, GRU and MLP (popjaxrl PPO, "
        "8 seeds) and, reprinted, 'selected architectures from [the POPGym paper], which also includes the "
        "best-performing one from each environment' (3 trials), Hard only ('the Easy and Medium versions [...] "
        "were not informative'). Read in the paper's LaTeX source as stored in "
        "github.com/BaochaiXue/in-context-RL-papers-reading at 9eaa49c8bd0ea182329a041e399b9a1e245bb015, "
        "papers/Structured State Space Models for In-Context Reinforcement Learning/main.tex (a reading-notes "
        "repository holding the source, not the authors')."
    ),
    "ffm": (
        "Morad, Kortvelesy, Liwicki, Prorok, 'Reinforcement Learning with Fast and Forgetful Memory', "
        "NeurIPS 2023, arXiv:2310.04128; code github.com/proroklab/ffm at "
        "b3f94d2a0f35ba05089faf19ab1df846057cf8b6 (its plotting/ scripts read the results from wandb; "
        "no number is in the repository). Not read here: see NOT_FOUND."
    ),
    "random": (
        "python scripts/popgym_random_returns.py (seed 0, 2000 episodes per task, jax 0.10.2, CPU) on the "
        "environment code of commit 9587714d919b54f58b804653dcd4338e46700e5b"
    ),
    "oracle": "python scripts/popgym_random_returns.py --oracles, same run as 'random'",
    "derived": "derived from the reward code of rmuzero/envs/popgym/<family>.py; one line per family below",
}

# What was looked for, where, and why the published columns are empty.
NOT_FOUND: str = (
    "POPGym / FFM per-task numbers: this workplace has no network but the package registries. The stored "
    "copies of the POPGym and FFM papers (ar5iv, arXiv HTML, the ICLR / SPIQA text dumps) are served only as their "
    "first page, never the appendix or results tables; github.com/proroklab/popgym (all 170 commits: no result "
    "table; its README's leaderboard links to paperswithcode), github.com/proroklab/ffm (b3f94d2: plotting scripts "
    "that read wandb), github.com/luchris429/popjaxrl (12e5d42) and github.com/proroklab/memory-monoids hold code "
    "and figures only; searches of code, issues and documentation found no copy of the POPGym appendix table. What "
    "was found: the S5 paper's LaTeX source (SOURCES['s5']), whose table reprints POPGym's GRU and best model on "
    "five Hard tasks, and a third party's transcription of POPGym's table (UNVERIFIED). Everything else is None."
)

# Where the published fields of an entry were read: (name, difficulty) -> SOURCES key.
PUBLISHED_FROM: dict[tuple[str, str], str] = {
    (f"popgym/{family}", "hard"): "s5"
    for family in (
        "position_only_cartpole",
        "noisy_position_only_cartpole",
        "position_only_pendulum",
        "noisy_position_only_pendulum",
        "repeat_previous",
    )
}
# (POPGym GRU, POPGym best, its model, S5) as printed in SOURCES['s5']'s table, Hard. The table's
# "Stateless" tasks are POPGym's PositionOnly ones (renamed in popgym after the paper).
_PUBLISHED_HARD: dict[str, tuple[float, float, str, float]] = {
    "position_only_cartpole": (1.000, 1.000, "GRU, IndRNN", 1.0),  # "1.000 \pm 0.000" both, bold
    "noisy_position_only_cartpole": (0.390, 0.404, "IndRNN", 0.28),
    "position_only_pendulum": (0.828, 0.828, "GRU", 0.79),
    "noisy_position_only_pendulum": (0.657, 0.657, "GRU", 0.55),
    "repeat_previous": (-0.428, 0.191, "LMU", 0.91),
}

# (label, value, where it was found): figures said to be the POPGym paper's, not checked against it.
_TRANSCRIPTION = (
    "github.com/bryjudy/fly-critic a93e8b9f3f9ab397c8af4cdf352baa17da4a34b3 flycritic/popgym/results.py, "
    "'POPGym paper [...] Appendix B Table 3 - MMER mean (sd) over 3 trials' (a transcription; equal to the S5 "
    "paper's reprint on RepeatPrevious, PositionOnlyCartPole and NoisyPositionOnlyCartPole Hard)"
)
_TRANSCRIBED = {  # family: ((GRU, best model, best) at easy, medium) as the transcription gives them
    "autoencode": ((-0.283, "GRU", -0.283), (-0.425, "IndRNN", -0.420)),
    "count_recall": ((0.177, "LSTM", 0.509), (-0.528, "PosMLP", -0.519)),
    "higher_lower": ((0.529, "GRU", 0.529), (0.511, "IndRNN", 0.513)),
    "multiarmed_bandit": ((0.619, "Elman", 0.631), (0.538, "TCN", 0.598)),
    "noisy_position_only_cartpole": ((0.995, "GRU", 0.995), (0.642, "IndRNN", 0.659)),
    "repeat_first": ((1.000, "GRU and others", 1.000), (1.000, "GRU", 1.000)),
    "repeat_previous": ((1.000, "GRU and others", 1.000), (-0.315, "LMU", 0.789)),
    "position_only_cartpole": ((1.000, "GRU and others", 1.000), (1.000, "GRU and others", 1.000)),
}
UNVERIFIED: dict[tuple[str, str], list[tuple[str, float, str]]] = {
    (f"popgym/{family}", difficulty): [
        ("POPGym GRU", gru, _TRANSCRIPTION),
        (f"POPGym best ({model})", best, _TRANSCRIPTION),
    ]
    for family, levels in _TRANSCRIBED.items()
    for difficulty, (gru, model, best) in zip(("easy", "medium"), levels)
}

BEST_POSSIBLE_KINDS = ("exact", "upper bound", "upper bound (Monte Carlo)", "optimal (Monte Carlo)")

# Random policy, SOURCES["random"]: (mean, standard error) over 2000 episodes, easy / medium / hard.
# Output of `python scripts/popgym_random_returns.py`, pasted.
_RANDOM_EPISODES = 2000
_RANDOM: dict[str, tuple[tuple[float, float], ...]] = {
    "autoencode": ((-0.5019, 0.0027), (-0.5006, 0.0019), (-0.4996, 0.0015)),
    "battleship": ((-0.4479, 0.0037), (-0.4166, 0.0034), (-0.4006, 0.0033)),
    "concentration": ((-0.1917, 0.0023), (-0.1834, 0.0016), (-0.8365, 0.0019)),
    "count_recall": ((-0.9263, 0.0011), (-0.9262, 0.0008), (-0.8819, 0.0007)),
    "higher_lower": ((0.0018, 0.0029), (0.0003, 0.0021), (-0.0014, 0.0017)),
    "labyrinth_escape": ((-0.4064, 0.0168), (-0.8450, 0.0099), (-0.9469, 0.0059)),
    "labyrinth_explore": ((-0.3569, 0.0042), (-0.6190, 0.0028), (-0.7442, 0.0021)),
    "minesweeper": ((-0.2324, 0.0073), (-0.4019, 0.0029), (-0.4310, 0.0019)),
    "multiarmed_bandit": ((0.0030, 0.0044), (0.0005, 0.0031), (0.0009, 0.0024)),
    "noisy_position_only_cartpole": ((0.1116, 0.0014), (0.1110, 0.0013), (0.1120, 0.0013)),
    "noisy_position_only_pendulum": ((0.2478, 0.0038), (0.2486, 0.0038), (0.2457, 0.0038)),
    "position_only_cartpole": ((0.1122, 0.0013), (0.0569, 0.0007), (0.0373, 0.0004)),
    "position_only_pendulum": ((0.2437, 0.0038), (0.2512, 0.0039), (0.2431, 0.0041)),
    "repeat_first": ((-0.5002, 0.0027), (-0.5009, 0.0009), (-0.5007, 0.0007)),
    "repeat_previous": ((-0.4983, 0.0028), (-0.4983, 0.0022), (-0.5031, 0.0020)),
    "velocity_only_cartpole": ((0.1123, 0.0014), (0.0562, 0.0007), (0.0369, 0.0004)),
}

# Ceilings: family -> (kind, (value or (mean, stderr)) for easy / medium / hard, one-line note).
_EXACT_ONE = ("exact", (1.0, 1.0, 1.0))
_PENDULUM_NOTE = "per-step reward <= 1/L, = 1/L only upright at rest without torque; starts at a random angle"
_BEST: dict[str, tuple[str, tuple, str]] = {
    # +1/N for each of the N recited suits, all of them in the history.
    "autoencode": (*_EXACT_ONE, "+1/N per right suit on the N play steps; the deck was shown, memory answers all"),
    # 1/12 per hit and 12 ship cells end the episode: 1 only if no shot misses, and the ships are hidden.
    "battleship": (
        "upper bound",
        (1.0, 1.0, 1.0),
        "1/12 per hit, 12 hits end it; 1 needs no miss, and the board is hidden",
    ),
    # +1/(N/2) per pair found: 1 only if no turn misses, and the first flips are blind.
    "concentration": (
        "upper bound",
        (1.0, 1.0, 1.0),
        "+1/(N/2) per pair found; 1 needs no missed turn, and cards start face down",
    ),
    # The count asked for is a function of the cards shown: +1/(N-1) on each of the N-1 steps.
    "count_recall": (*_EXACT_ONE, "+1/(N-1) per right count on each of the N-1 steps; the history gives the counts"),
    # The action never changes the cards, so guessing by the unseen cards' counts is optimal (12/13 for a clairvoyant).
    "higher_lower": (
        "optimal (Monte Carlo)",
        ((0.5251, 0.0022), (0.5147, 0.0015), (0.5114, 0.0013)),
        "card counting (guess the side with more unseen cards) is optimal as actions never change the deck; "
        "a clairvoyant gets (N - 4d)/N = 12/13 = 0.923 with d decks",
    ),
    # Clairvoyant shortest path, 1 - d/L; analytic bound 1 - D/L, D = 10 / 14 / 18 rows between the doors.
    "labyrinth_escape": (
        "upper bound (Monte Carlo)",
        ((0.9788, 0.0002), (0.9650, 0.0003), (0.9486, 0.0004)),
        "clairvoyant shortest path: 1 - d/L with L = 1024; analytic bound 1 - D/L = 0.990 / 0.986 / 0.982",
    ),
    # Clairvoyant tour of the maze tree: F new cells (+1/F each), F - depth revisits (-1/L each).
    "labyrinth_explore": (
        "upper bound (Monte Carlo)",
        ((0.9823, 0.0001), (0.9576, 0.0003), (0.9187, 0.0004)),
        "clairvoyant tour: 1 - (F - depth)/L (F free cells, depth of the deepest cell, L = 1024); analytic bound 1",
    ),
    # The first click is blind and mines are uniform: a mine (prob q = m/HW) ends it at -0.5 - 1/L, else at most 1.
    "minesweeper": (
        "upper bound",
        (
            (1 - 2 / 16) + (2 / 16) * (-0.5 - 1 / 14),  # 4x4, 2 mines, L = 14: 0.8036
            (1 - 6 / 36) + (6 / 36) * (-0.5 - 1 / 30),  # 6x6, 6 mines, L = 30: 0.7444
            (1 - 10 / 64) + (10 / 64) * (-0.5 - 1 / 54),  # 8x8, 10 mines, L = 54: 0.7627
        ),
        "(1 - q) + q(-0.5 - 1/L): the first click is blind and hits a mine with q = mines/tiles; 1 needs no mine",
    ),
    # A clairvoyant pulls the best arm: 2 E[max of A uniform p] - 1 = (A - 1)/(A + 1), A = 10 / 20 / 30.
    "multiarmed_bandit": (
        "upper bound",
        (9 / 11, 19 / 21, 29 / 31),
        "clairvoyant: each pull returns (2p - 1)/L, E[max p over A arms] = A/(A+1), so (A-1)/(A+1)",
    ),
    # 1/L per step for at most L steps; with noisy observations no policy was shown to reach it.
    "noisy_position_only_cartpole": (
        "upper bound",
        (1.0, 1.0, 1.0),
        "1/L per step, at most L steps; with noisy (x, theta) not shown reachable",
    ),
    # Per-step reward (gym + 8.14)/8.14/L <= 1/L, equality only upright at rest; starts at a random angle.
    "noisy_position_only_pendulum": ("upper bound", (1.0, 1.0, 1.0), _PENDULUM_NOTE),
    # 1/L per step; a controller on (x, theta) and their differences keeps the pole up (tests/envs/test_anchors.py).
    "position_only_cartpole": (
        *_EXACT_ONE,
        "1/L per step for L steps; reached by a linear controller on (x, theta) and their differences",
    ),
    # As the noisy pendulum: the per-step reward is at most 1/L, reached only upright at rest.
    "position_only_pendulum": ("upper bound", (1.0, 1.0, 1.0), _PENDULUM_NOTE),
    # Every answer is the first card's suit: +1/(N-1) on each of the N-1 steps.
    "repeat_first": (*_EXACT_ONE, "+1/(N-1) per right suit on each of the N-1 steps; the answer is the first card"),
    # Every answer is a suit shown k-1 observations before: +1/(N-k) on each of the N-k scored steps.
    "repeat_previous": (
        *_EXACT_ONE,
        "+1/(N-k) per right suit on each of the N-k scored steps; the answer was shown k-1 steps before",
    ),
    # 1/L per step; a controller on integrated velocities keeps the pole up (tests/envs/test_anchors.py).
    "velocity_only_cartpole": (
        *_EXACT_ONE,
        "1/L per step for L steps; reached by a linear controller on the velocities and their sums",
    ),
}


def _build() -> dict[tuple[str, str], dict]:
    references = {}
    for name in list_envs():
        family = name.split("/", 1)[1]
        kind, values, note = _BEST[family]
        for index, difficulty in enumerate(DIFFICULTIES):
            random_mean, random_stderr = _RANDOM[family][index]
            value = values[index]
            best, best_stderr = value if isinstance(value, tuple) else (float(value), None)
            gru, best_published, best_model, s5 = (
                _PUBLISHED_HARD[family] if (name, difficulty) in PUBLISHED_FROM else (None, None, None, None)
            )
            references[(name, difficulty)] = {
                "popgym_gru": gru,  # None: NOT_FOUND
                "popgym_best": best_published,
                "popgym_best_model": best_model,
                "s5": s5,
                "ffm": None,  # NOT_FOUND
                "random": random_mean,
                "random_stderr": random_stderr,
                "random_episodes": _RANDOM_EPISODES,
                "best_possible": best,
                "best_possible_kind": kind,
                "best_possible_stderr": best_stderr,
                "best_possible_note": note,
            }
    return references


REFERENCES: dict[tuple[str, str], dict] = _build()


def reference(name: str, difficulty: str) -> dict:
    """The entry of ``name`` (``"popgym/<family>"``) at ``difficulty`` (a copy).

    Raises:
      ValueError: for an unknown name or difficulty, listing the valid ones.
    """
    if (name, difficulty) not in REFERENCES:
        raise ValueError(
            f"no reference for {name!r} at {difficulty!r}; names: {', '.join(list_envs())}; "
            f"difficulties: {', '.join(DIFFICULTIES)}"
        )
    return dict(REFERENCES[(name, difficulty)])
