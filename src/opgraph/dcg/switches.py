"""The engine's process-local switches, captured in the caller and set again where the work runs.

Each switch is a :class:`contextvars.ContextVar` of its module (``opgraph.dcg.affine.ENABLED``,
``opgraph.dcg.cancel.ENABLED``, ``opgraph.dcg.exactlaw.ENABLED``, ``opgraph.dcg.exactlaw.REGROUP``,
``opgraph.dcg.carry.ENABLED``, ``opgraph.dcg.carry.FIXED_ATOMS``, ``opgraph.dcg.subcells.ENABLED``,
``opgraph.dcg.engine.SEMI_DISCRETE``, ``opgraph.dcg.taylor.ENABLED``, ``opgraph.dcg.disjoint.ENABLED``,
``opgraph.dcg.keepbest.ENABLED``, ``opgraph.dcg.elastic.ENABLED``, ``opgraph.dcg.centredlog.ENABLED``,
``opgraph.dcg.boxlinear.ENABLED``, ``opgraph.dcg.boxtails.ENABLED``, ``opgraph.dcg.boxvariance.ENABLED``,
``opgraph.dcg.boxsmooth.ENABLED``,
``opgraph.dcg.loglinear.ENABLED``, ``opgraph.dcg.budgetalloc.ENABLED``, ``opgraph.dcg.budgetalloc.FIXED_ATOMS``,
``opgraph.dcg.longmix.ENABLED``, ``opgraph.dcg.subslope.ENABLED``, ``opgraph.dcg.wideleaf.ENABLED``,
``opgraph.dcg.logsubbox.ENABLED``, ``opgraph.dcg.tailpieces.ENABLED``, ``opgraph.dcg.tailaxis.ENABLED``,
``opgraph.dcg.mixfirst.ENABLED``, ``opgraph.dcg.mixfirst.AGAIN``,
``opgraph.dcg.subcentre.ENABLED``, ``opgraph.dcg.polymodel.ENABLED``, ``opgraph.dcg.tailsub.ENABLED``,
``opgraph.dcg.subwalk.ENABLED``, ``opgraph.dcg.subpieces.ENABLED``, ``opgraph.dcg.affstack.ENABLED``,
``opgraph.dcg.roundcredit.ENABLED``, ``opgraph.dcg.planmemo.ENABLED``,
``opgraph.dcg.cellm2.ENABLED``, ``opgraph.dcg.hessdiv.ENABLED``, ``opgraph.dcg.radial.ENABLED``,
``opgraph.dcg.radialchoose.ENABLED``). A
ContextVar does not travel to process-pool or Dask workers, so the chunk jobs of :mod:`opgraph.dcg.chunks` and the
tasks of :func:`opgraph.dcg.evaluate_many` carry :func:`capture`'s values and run under :func:`scope`: the workers
evaluate with the caller's settings on every executor.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping


def _vars() -> dict[str, contextvars.ContextVar[bool]]:
    from opgraph.dcg import (
        affine,
        affstack,
        boxlinear,
        boxsmooth,
        boxtails,
        boxvariance,
        budgetalloc,
        cancel,
        carry,
        cellm2,
        centredlog,
        disjoint,
        elastic,
        engine,
        exactlaw,
        hessdiv,
        keepbest,
        loglinear,
        logsubbox,
        longmix,
        mixfirst,
        planmemo,
        polymodel,
        radial,
        radialchoose,
        roundcredit,
        subcells,
        subcentre,
        subpieces,
        subslope,
        subwalk,
        tailaxis,
        tailpieces,
        tailsub,
        taylor,
        wideleaf,
    )

    return {
        "affine": affine.ENABLED,
        "cancel": cancel.ENABLED,
        "carry": carry.ENABLED,
        "carry_fixed_atoms": carry.FIXED_ATOMS,
        "exact_law": exactlaw.ENABLED,
        "exact_law_regroup": exactlaw.REGROUP,
        "subcells": subcells.ENABLED,
        "semi_discrete": engine.SEMI_DISCRETE,
        "taylor": taylor.ENABLED,
        "disjoint": disjoint.ENABLED,
        "keep_best": keepbest.ENABLED,
        "elastic": elastic.ENABLED,
        "elastic_centred": centredlog.ENABLED,
        "box_linear": boxlinear.ENABLED,
        "box_linear_tails": boxtails.ENABLED,
        "box_linear_variance": boxvariance.ENABLED,
        "box_smooth": boxsmooth.ENABLED,
        "log_linear": loglinear.ENABLED,
        "budget_alloc": budgetalloc.ENABLED,
        "budget_alloc_fixed_atoms": budgetalloc.FIXED_ATOMS,
        "long_mixture": longmix.ENABLED,
        "sub_slope": subslope.ENABLED,
        "wide_leaf": wideleaf.ENABLED,
        "log_sub_box": logsubbox.ENABLED,
        "log_tail_pieces": tailpieces.ENABLED,
        "tail_axis": tailaxis.ENABLED,
        "mixture_first": mixfirst.ENABLED,
        "mixture_first_again": mixfirst.AGAIN,
        "round_credit": roundcredit.ENABLED,
        "plan_memo": planmemo.ENABLED,
        "sub_centred": subcentre.ENABLED,
        "poly_model": polymodel.ENABLED,
        "tail_sub": tailsub.ENABLED,
        "sub_walk": subwalk.ENABLED,
        "sub_pieces": subpieces.ENABLED,
        "affine_stacked": affstack.ENABLED,
        "exact_cell_m2": cellm2.ENABLED,
        "hess_quotient": hessdiv.ENABLED,
        "radial_slope": radial.ENABLED,
        "radial_choose": radialchoose.ENABLED,
    }


def capture() -> dict[str, bool]:
    """The current value of every switch, by name.

    Names: ``affine``, ``cancel``, ``carry``, ``carry_fixed_atoms``, ``exact_law``, ``exact_law_regroup``,
    ``subcells``, ``semi_discrete``, ``taylor``, ``disjoint``, ``keep_best``, ``elastic``, ``elastic_centred``,
    ``box_linear``, ``box_linear_tails``, ``box_linear_variance``, ``box_smooth``, ``log_linear``, ``budget_alloc``,
    ``budget_alloc_fixed_atoms``, ``long_mixture``, ``sub_slope``, ``wide_leaf``, ``log_sub_box``, ``log_tail_pieces``,
    ``tail_axis``,
    ``mixture_first``, ``mixture_first_again``, ``sub_centred``, ``poly_model``, ``tail_sub``, ``sub_walk``, ``sub_pieces``,
    ``affine_stacked``, ``round_credit``, ``plan_memo``, ``exact_cell_m2``,
    ``hess_quotient``, ``radial_slope``, ``radial_choose``.
    """
    return {name: bool(var.get()) for name, var in _vars().items()}


@contextlib.contextmanager
def scope(values: Mapping[str, bool]) -> Iterator[None]:
    """Set the named switches to ``values`` for the block, then restore them (names not given stay as they are)."""
    tokens = [(var, var.set(bool(values[name]))) for name, var in _vars().items() if name in values]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
