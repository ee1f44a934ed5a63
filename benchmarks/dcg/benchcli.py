"""Command lines of the dcg A/B benchmark drivers (``benchmarks/dcg/*_bench.py``): their shared options, parsed once.

Each driver keeps its own defaults, help texts and option order (its ``--help`` reads as before); this module adds
the options they share (:func:`add`, :func:`add_case_atoms`) and turns the comma-separated values into lists
(:func:`items`, :func:`ints`, :func:`case_row`), the UQ cases they name (:func:`uq_cases`) and the ``target_w1`` and
fixed-atoms calls of ``--eps`` and ``--atoms`` (:func:`uq_calls`, :func:`call_label`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from typing import Any

#: The shared options: name (as a keyword of :func:`add`) -> (flag, type of its value).
OPTIONS: dict[str, tuple[str, type]] = {
    "only": ("--only", str),  # comma-separated uq.py case ids
    "eps": ("--eps", str),  # comma-separated target_w1 accuracies (x the output's std)
    "atoms": ("--atoms", str),  # comma-separated fixed atoms per input
    "rows": ("--rows", str),  # comma-separated CASE:ATOMS
    "cases": ("--cases", str),  # comma-separated CASE:ATOMS
    "rounds": ("--rounds", int),  # interleaved A/B rounds
    "limit": ("--limit", float),  # CPU (or wall) seconds per call or case
    "modes": ("--modes", str),  # comma-separated A/B modes
    "out_json": ("--out-json", str),  # a JSON file of the rows ('' for none)
    "out": ("--out", str),  # the same, under its older name
}


def parser(doc: str | None, summary: bool = False) -> argparse.ArgumentParser:
    """A driver's parser: its module docstring ``doc`` as the description (only its first line with ``summary``)."""
    return argparse.ArgumentParser(description=(doc or "").splitlines()[0] if summary else doc)


def add(ap: argparse.ArgumentParser, **options: Any) -> argparse.ArgumentParser:
    """Add the shared options named (keys of :data:`OPTIONS`), in the order given.

    Args:
        ap: The driver's parser.
        **options: Per option, its default, or a ``(default, help)`` pair.

    Returns:
        ``ap``.

    Raises:
        KeyError: A name that is not a shared option (the message lists them).
    """
    for name, value in options.items():
        if name not in OPTIONS:
            raise KeyError(f"no shared benchmark option {name!r}; use one of {sorted(OPTIONS)} or ap.add_argument")
        flag, kind = OPTIONS[name]
        default, help_ = value if isinstance(value, tuple) else (value, None)
        ap.add_argument(flag, type=kind, default=default, help=help_)
    return ap


def add_case_atoms(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the positional ``cases`` and ``atoms`` (comma-separated uq.py case ids and atom counts)."""
    ap.add_argument("cases", help="comma-separated uq.py case ids")
    ap.add_argument("atoms", help="comma-separated atom counts")
    return ap


def items(text: str) -> list[str]:
    """The comma-separated items of ``text``, empty ones left out (``''``: none)."""
    return [s for s in text.split(",") if s]


def ints(text: str) -> list[int]:
    """The comma-separated whole numbers of ``text`` (atom counts)."""
    return [int(s) for s in items(text)]


def case_row(spec: str) -> tuple[str, int]:
    """``(case id, atoms)`` of one ``CASE:ATOMS`` item."""
    cid, n = spec.split(":")
    return cid, int(n)


def case_rows(specs: str | Iterable[str]) -> list[tuple[str, int]]:
    """:func:`case_row` of each item (one comma-separated string, or the items themselves)."""
    return [case_row(spec) for spec in (items(specs) if isinstance(specs, str) else specs)]


def uq_cases(only: str, suite_order: bool = False) -> list[Any]:
    """The ``uq.py`` cases named in ``only`` (comma-separated ids).

    In the order given (an unknown id raises ``KeyError`` naming the known ones), or with ``suite_order`` in the
    suite's order (unknown ids left out).
    """
    import uq

    suite = uq.make_cases()
    wanted = items(only)
    if suite_order:
        return [c for c in suite if c.id in wanted]
    by_id = {c.id: c for c in suite}
    missing = [cid for cid in wanted if cid not in by_id]
    if missing:
        raise KeyError(f"unknown case ids {missing}; the suite's are {sorted(by_id)}")
    return [by_id[cid] for cid in wanted]


def uq_calls(eps: str, atoms: str, std: float) -> list[dict[str, Any]]:
    """The calls of ``--eps`` and ``--atoms``: ``target_w1 = eps * std`` for each eps, then each fixed atoms count."""
    calls: list[dict[str, Any]] = [{"target_w1": float(e) * std} for e in items(eps)]
    return calls + [{"atoms": n} for n in ints(atoms)]


def call_label(call: Mapping[str, Any], std: float) -> str:
    """``eps=...`` (the ``target_w1`` over ``std``) or ``atoms=...`` for one of :func:`uq_calls`' calls."""
    return f"eps={call['target_w1'] / std:g}" if "target_w1" in call else f"atoms={call['atoms']}"


def ab_row(case_id: str, switch: str, on: bool, result: Any, cpu: float, w1: float, std: float, **fields: Any) -> dict:
    """One row of an off/on A/B driver, printed as a JSON line and returned.

    Args:
        case_id: The uq.py case id.
        switch: The switch's name (:func:`opgraph.dcg.switches.capture`); the row's key for ``on``.
        on: Whether the switch was on.
        result: The call's ``DistResult``.
        cpu: CPU seconds of the call.
        w1: The answer's true W1 against the case's reference (output units).
        std: The output's std: bound and true W1 are given in its units.
        **fields: Further entries (the call, the round, driver-specific parts), placed after the case id.
    """
    row = {
        "case": case_id,
        **fields,
        switch: on,
        "bound_std": result.w1_bound / std,
        "true_std": w1 / std,
        "ratio": result.w1_bound / w1 if w1 > 0 else None,
        "cpu_s": round(cpu, 2),
        "method": result.info.get("bound_method"),
    }
    print(json.dumps(row), flush=True)
    return row
