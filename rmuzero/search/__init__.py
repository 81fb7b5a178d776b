"""Search: mctx over a learned model (root_fn / recurrent_fn, action selection)."""

from rmuzero.search.search import (
    DynamicsFn,
    Prediction,
    PredictionFn,
    SearchConfig,
    SearchOutput,
    Transition,
    run_search,
    select_action,
)

__all__ = [
    "DynamicsFn",
    "Prediction",
    "PredictionFn",
    "SearchConfig",
    "SearchOutput",
    "Transition",
    "run_search",
    "select_action",
]
