"""Errors of :mod:`opgraph.dcg`: each names the argument at fault and what to do about it."""

from __future__ import annotations

from opgraph.errors import OpgraphError


class DistError(OpgraphError):
    """A distribution, an argument of :func:`opgraph.dcg.evaluate` or a traced function cannot be used."""


class UnboundedWarning(UserWarning):
    """No finite certified W1 bound exists for a result (the warning names the node responsible)."""


class TargetNotMetWarning(UserWarning):
    """``target_w1`` was not reached: the message gives the best bound, its largest terms and what stopped it."""


class AtomsReducedWarning(UserWarning):
    """The requested atoms did not fit ``max_joint``: a smaller certified grid was evaluated instead.

    The message and ``result.info["atoms_reduced"]`` give the requested and the used atoms.
    """
