"""opgraph.dcg: distributional computational graphs with certified Wasserstein-1 bounds.

Run ordinary Python/NumPy code on probability distributions: inputs are quantized with an exactly known W1 error,
the traced graph is evaluated with exact dependence between shared inputs, and every result carries a certified
bound ``W1(exact output law, result) <= result.w1_bound``.

>>> from opgraph import dcg as od
>>> r = od.evaluate(lambda x, y: x * y, od.Uniform(0, 1), od.Uniform(0, 1), atoms=64)
>>> r.w1_bound > 0
True
"""

from opgraph.dcg.api import evaluate, evaluate_many, rv_graph
from opgraph.dcg.band import CdfBand
from opgraph.dcg.distributions import (
    Beta,
    Discrete,
    Distribution,
    Empirical,
    Exponential,
    Gamma,
    LogNormal,
    Normal,
    Quantized,
    Uniform,
    from_scipy,
)
from opgraph.dcg.errors import AtomsReducedWarning, DistError, TargetNotMetWarning, UnboundedWarning
from opgraph.dcg.result import DistResult
from opgraph.dcg.rv import (
    RandomVariable,
    arccos,
    arcsin,
    arctan,
    arctan2,
    cbrt,
    ceil,
    cos,
    cosh,
    erf,
    exp,
    expm1,
    floor,
    hypot,
    log,
    log1p,
    log2,
    log10,
    maximum,
    minimum,
    relu,
    sigmoid,
    sign,
    sin,
    sinh,
    sqrt,
    square,
    tan,
    tanh,
    where,
)
from opgraph.dcg.truncation import Truncated
from opgraph.dcg.w1 import w1_discrete, w1_to_continuous
from opgraph.graph.arrays import vectorized

__all__ = [
    "AtomsReducedWarning",
    "Beta",
    "CdfBand",
    "Discrete",
    "DistError",
    "DistResult",
    "Distribution",
    "Empirical",
    "Exponential",
    "Gamma",
    "LogNormal",
    "Normal",
    "Quantized",
    "RandomVariable",
    "TargetNotMetWarning",
    "Truncated",
    "UnboundedWarning",
    "Uniform",
    "arccos",
    "arcsin",
    "arctan",
    "arctan2",
    "cbrt",
    "ceil",
    "cos",
    "cosh",
    "erf",
    "evaluate",
    "evaluate_many",
    "exp",
    "expm1",
    "floor",
    "from_scipy",
    "hypot",
    "log",
    "log1p",
    "log2",
    "log10",
    "maximum",
    "minimum",
    "relu",
    "rv_graph",
    "sigmoid",
    "sign",
    "sin",
    "sinh",
    "sqrt",
    "square",
    "tan",
    "tanh",
    "vectorized",
    "w1_discrete",
    "w1_to_continuous",
    "where",
]
