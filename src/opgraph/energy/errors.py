"""Errors of the energy system; all are :class:`opgraph.errors.OpgraphError` so the CLI prints one line."""

from __future__ import annotations

from opgraph.errors import OpgraphError


class EnergyError(OpgraphError):
    """Bad input to the energy system (a callable, an argument, a saved run)."""


class OutputMismatchError(EnergyError):
    """The two implementations compute different outputs, so their costs cannot be compared."""


class BackendError(EnergyError):
    """A measurement backend was asked for but cannot run here."""


def seconds_field(data: object, key: str, where: str) -> float:
    """``data[key]`` of a saved run's JSON as a finite number of seconds >= 0 (absent: 0.0).

    Raises:
        EnergyError: the value is not such a number (the file was edited or damaged).
    """
    value = data.get(key, 0.0) if isinstance(data, dict) else 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        raise EnergyError(f"{where}: {key!r} is {value!r}, not a number of seconds >= 0; save the run again")
    return float(value)
