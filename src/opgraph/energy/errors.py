"""Errors of the energy system; all are :class:`opgraph.errors.OpgraphError` so the CLI prints one line."""

from __future__ import annotations

from opgraph.errors import OpgraphError


class EnergyError(OpgraphError):
    """Bad input to the energy system (a callable, an argument, a saved run)."""


class OutputMismatchError(EnergyError):
    """The two implementations compute different outputs, so their costs cannot be compared."""


class BackendError(EnergyError):
    """A measurement backend was asked for but cannot run here."""
