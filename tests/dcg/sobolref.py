"""Scrambled-Sobol references shared by the dcg tests (not a test module: pytest collects ``test_*.py`` only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def sobol_reference(
    fn: Callable[..., Any], laws: Sequence[Any], log2: int = 16, seed: int = 40, clip: float = 1e-12
) -> tuple[np.ndarray, float]:
    """Two scrambles of ``2**log2`` Sobol points through the inputs' quantiles (``law.to_scipy().ppf``).

    Args:
        fn: The program, vectorised over its inputs (one array per input).
        laws: The input laws (opgraph.dcg distributions).
        log2: Points per scramble, as a power of two.
        seed: Seed of the first scramble (the second uses ``seed + 1``).
        clip: The uniforms are clipped into ``[clip, 1 - clip]`` (finite quantiles of unbounded laws).

    Returns:
        The pooled sorted sample and an estimate of its W1 error (half the W1 between the two scrambles).
    """
    from scipy.stats import qmc

    reps = []
    for s in range(2):
        u = np.clip(qmc.Sobol(len(laws), scramble=True, seed=seed + s).random_base2(log2), clip, 1 - clip)
        reps.append(np.sort(fn(*[law.to_scipy().ppf(u[:, k]) for k, law in enumerate(laws)])))
    return np.sort(np.concatenate(reps)), float(np.mean(np.abs(reps[0] - reps[1]))) / 2
