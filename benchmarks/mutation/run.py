"""Mutation testing of the modules that decide answers: one module at a time, with the tests that cover it.

For each module, every mutant (one small change of the source: an arithmetic or comparison operator, a boolean
operator, a number, ``True``/``False``, a unary minus or ``not``, ``min``/``max``-style function names) is written
into a private copy of ``src/`` and the module's test files are run against that copy with a timeout. A mutant is
*killed* when the tests fail, *survives* when they pass, and *times out* when they run past the limit (counted as
killed, as mutmut does, but reported apart). Each run is a forked child of a process that has imported NumPy,
SciPy, pytest (and torch where the tests need it) once; the child imports ``opgraph`` from the mutated copy
(``--no-fork``: a fresh interpreter per mutant).

This is a small driver in the spirit of mutmut (https://github.com/boxed/mutmut); mutmut 3 rewrites the whole
package into trampolines and runs the full suite first, which does not fit a ``src/`` layout tested with
``--import-mode=importlib`` on a shared 2-core machine. Not run in CI (minutes per module).

Usage::

    python benchmarks/mutation/run.py                       # every module in MODULES
    python benchmarks/mutation/run.py dcg/w1.py perf/metrics.py
    python benchmarks/mutation/run.py dcg/intervals.py --max-mutants 150 --json out.json
    python benchmarks/mutation/run.py dcg/engine.py --lines 1443-1511 --max-mutants 20 --seed 14 --list
    python benchmarks/mutation/run.py dcg/engine.py --only 1272#2,1061#5     # re-run two named mutants
    python benchmarks/mutation/run.py dcg/band.py --max-mutants 30 --seed 15 \
        --exclude-json benchmarks/mutation/results/pass4-seed14.json        # a new sample, none run before
    python benchmarks/mutation/run.py dcg/band.py --max-mutants 30 --seed 14 --list --rev 2927df1 \
        --json old.json                                                     # an earlier run's selection, as JSON

Prints per-module killed/survived/timeout counts and every surviving mutant as ``module:line#nth kind: original ->
mutated`` (``nth``: its place among the mutants of that line, so that two with the same text differ). With
``--lines`` only the sites on those lines are mutated (seconds, not the ~25 min of building every mutant of
``dcg/engine.py``); the selection is the same as building all and filtering. With ``--exclude-json`` (an earlier
run's ``--json``, whose ``ran`` list names every mutant it took) or ``--exclude`` (``line#nth`` names), those
mutants are dropped before sampling, so a new seeded sample takes only mutants no earlier run took. Mutants of an
earlier JSON are matched by their source line's text (and which of the identical lines it is), ``nth``, kind and
texts, so edits elsewhere in the module that move lines do not break the match.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PKG = SRC / "opgraph"

#: module (relative to src/opgraph) -> the test files that cover it.
MODULES: dict[str, list[str]] = {
    "dcg/w1.py": ["tests/dcg/test_w1.py"],
    "graph/interpreter.py": ["tests/graph/test_against_python.py", "tests/graph/test_ir_interpret.py"],
    "perf/metrics.py": ["tests/perf/test_metrics.py"],
    "ffa/functions.py": ["tests/ffa/test_feedback_grads.py", "tests/ffa/test_functions.py"],
    "energy/matcher.py": ["tests/energy/test_matcher.py", "tests/energy/test_mutation_matcher.py"],
    "graph/tracer.py": [
        "tests/graph/test_trace.py",
        "tests/graph/test_against_python.py",
        "tests/graph/test_ir_interpret.py",
        "tests/graph/test_mutation_tracer.py",
    ],
    "dcg/intervals.py": ["tests/dcg/test_intervals.py", "tests/dcg/test_mutation_intervals.py"],
    # run with --lines on the bound-deciding methods (cellwise, _w1_level, second_moments): the whole module is
    # ~1900 lines
    "dcg/engine.py": [
        "tests/dcg/test_engine.py",
        "tests/dcg/test_bound_tightness.py",
        "tests/dcg/test_mutation_engine.py",
        "tests/dcg/test_mutation_engine_close.py",
    ],
    "dcg/growth.py": ["tests/dcg/test_mutation_growth.py", "tests/dcg/test_tables.py"],
    "dcg/extremes.py": ["tests/dcg/test_mutation_extremes.py", "tests/dcg/test_extremes.py"],
    "graph/passes.py": ["tests/graph/test_mutation_passes.py", "tests/graph/test_passes.py"],
    # the diff itself replays and times regions (minutes under mutation): run with --lines 41-142 (the output check)
    "energy/differ.py": ["tests/energy/test_mutation_differ.py", "tests/energy/test_outputs.py"],
    "ffa/layers.py": ["tests/ffa/test_feedback_grads.py", "tests/ffa/test_functions.py"],
    "perf/tpugraphs.py": [
        "tests/perf/test_mutation_tpugraphs.py",
        "tests/perf/test_tpugraphs.py",
        *(
            f"tests/robustness/test_perf_inputs.py::{t}"
            for t in (
                "test_lazy_index_out_of_range_raises_instead_of_wrapping",
                "test_lazy_read_after_file_replaced_is_refused",
                "test_lazy_rows_of_a_corrupt_member_are_refused",
                "test_datasets_that_would_train_to_nothing_are_refused",
                "test_tile_inf_config_features_refused",
            )
        ),
    ],
    # Fourth pass (2026-12-06): the newer dcg bound modules. test_semidiscrete.py takes minutes (whole-graph
    # evaluations checked by 400001-point quadrature): only its fast direct tests of the pieces run here.
    "dcg/semidiscrete.py": [
        "tests/dcg/test_mutation_semidiscrete.py",
        "tests/dcg/test_mutation_semidiscrete_wide.py",
        "tests/dcg/test_mutation_semidiscrete_close.py",
        "tests/dcg/test_semidiscrete_affine.py::test_affine_rewrite_is_the_same_function",
        "tests/dcg/test_semidiscrete_affine.py::test_non_affine_inputs_are_not_candidates",
        *(
            f"tests/dcg/test_semidiscrete.py::{t}"
            for t in (
                "test_w1_to_steps_bounds_the_exact_distance[Normal(0.5, 1.5)-1-mul]",
                "test_w1_to_steps_bounds_the_exact_distance[Uniform(1, 3)-0-sub]",
                "test_w1_to_steps_bounds_the_exact_distance[LogNormal(0, 0.5)-1-add]",
                "test_find_core_walks_the_affine_chain",
                "test_reassociate_keeps_the_values_and_puts_the_best_input_last",
                "test_one_atom_inputs_do_not_break_it",
            )
        ),
    ],
    "dcg/band.py": [
        "tests/dcg/test_mutation_band.py",
        "tests/dcg/test_mutation_band_wide.py",
        "tests/dcg/test_band.py",
    ],
    # the direct tests of the forms and of subdivision (the whole-evaluation tests of the file take ~100 s)
    "dcg/enclose.py": [
        "tests/dcg/test_mutation_enclose.py",
        "tests/dcg/test_mutation_enclose_wide.py",
        *(
            f"tests/dcg/test_enclose_forms.py::{t}"
            for t in (
                "test_sqrt_diff_point_encloses_the_exact_value",
                "test_sqrt_diff_encloses_the_range_and_the_gradient_on_random_boxes",
                "test_sqrt_diff_does_not_apply_where_b_may_be_zero",
                "test_find_forms_recognises_the_cancellation",
                "test_subdivided_enclosure_contains_dense_samples_on_random_boxes",
                "test_subdivision_never_widens_and_shrinks_a_reused_value",
            )
        ),
    ],
    # the fast tests; the quadrature grids (test_tails.py::test_*_match_quadrature and
    # test_mutation_tails.py::test_*_match_quadrature*, ~80 s under load) are run by hand on the survivors
    "dcg/tails.py": [
        "tests/dcg/test_mutation_tails_wide.py",
        *(
            f"tests/dcg/test_mutation_tails.py::{t}"
            for t in (
                "test_hand_written_values",
                "test_tail_mass_and_quantile_far_out",
                "test_divergent_moments_are_infinite_and_convergent_ones_finite",
                "test_truncated_moments_where_the_base_diverges_on_that_side_are_finite",
                "test_truncated_normal_non_integer_powers_on_the_positive_side",
            )
        ),
        *(
            f"tests/dcg/test_tails.py::{t}"
            for t in (
                "test_full_moments_and_probability",
                "test_non_existence_is_inf",
                "test_tail_quantile_inverts_tail_mass",
                "test_bad_arguments_name_the_fix",
                "test_normal_exp_moment_closed_form",
                "test_lognormal_black_scholes_form",
            )
        ),
    ],
    # Fifth pass (2026-12-06): explicit truncation and the tail envelopes (fast test files only; the whole-chain
    # cases of test_tails_bound.py take ~25 s alone and are left out).
    "dcg/truncation.py": [
        "tests/dcg/test_mutation_truncation.py",
        "tests/dcg/test_mutation_truncation_wide.py",
        "tests/dcg/test_truncation.py",
    ],
    "dcg/multienv.py": [
        "tests/dcg/test_mutation_multienv.py",
        "tests/dcg/test_mutation_multienv_wide.py",
        "tests/dcg/test_multienv.py",
    ],
    "dcg/envelope.py": [
        "tests/dcg/test_mutation_envelope.py",
        "tests/dcg/test_multienv.py",
        *(
            f"tests/dcg/test_tails_bound.py::{t}"
            for t in (
                "test_envelope_dominates_function_on_tail_region",
                "test_finite_bound_covers_true_w1_and_shrinks[exp(Normal)]",
                "test_finite_bound_covers_true_w1_and_shrinks[1 / Gamma(4)]",
                "test_finite_bound_covers_true_w1_and_shrinks[log(LogNormal)]",
            )
        ),
    ],
    # Eighth and ninth passes (2026-12-06): exact-law recognition and the Taylor box bound. The fast files written
    # against the earlier samples first (with -x most mutants stop there); test_exactlaw.py last (~20 s, most of it
    # one 13 s case of test_product_of_lognormals_bound_matches_true_error).
    "dcg/exactlaw.py": [
        "tests/dcg/test_mutation_exactlaw.py",
        "tests/dcg/test_mutation_exactlaw_wide.py",
        "tests/dcg/test_mutation_exactlaw_seed18.py",
        "tests/dcg/test_mutation_exactlaw_rest.py",
        "tests/dcg/test_exactlaw.py",
    ],
    "dcg/taylor.py": [
        "tests/dcg/test_mutation_taylor.py",
        "tests/dcg/test_mutation_taylor_wide.py",
        "tests/dcg/test_mutation_taylor_rest.py",
        "tests/dcg/test_taylor.py",
    ],
}

BINOP_SWAP = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
}
CMP_SWAP = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
NAME_SWAP = {
    "min": "max",
    "max": "min",
    "minimum": "maximum",
    "maximum": "minimum",
    "fmin": "fmax",
    "fmax": "fmin",
    "floor": "ceil",
    "ceil": "floor",
    "any": "all",
    "all": "any",
}


@dataclass
class Mutant:
    """One single change of the module's source."""

    index: int
    line: int
    kind: str
    original: str
    mutated: str
    nth: int = 1
    status: str = "pending"
    seconds: float = 0.0
    code: str = ""
    code_occ: int = 0


def _skip_regions(tree: ast.AST) -> set[int]:
    """ids of nodes whose subtrees are not mutated: docstrings, raise/log messages, annotations, f-strings."""
    skip: set[int] = set()

    def mark(node: ast.AST | None) -> None:
        if node is not None:
            for sub in ast.walk(node):
                skip.add(id(sub))

    for node in ast.walk(tree):
        if isinstance(node, ast.Raise | ast.JoinedStr | ast.Assert):
            mark(node)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            mark(node.returns)
            for a in [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs]:
                mark(a.annotation)
        elif isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if isinstance(node.func.value, ast.Name) and node.func.value.id in ("log", "logger", "logging"):
                mark(node)
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            mark(node)
    return skip


def _sites(tree: ast.AST) -> list[tuple[ast.AST, str, object]]:
    """Every (node, kind, payload) that can be mutated, in source order."""
    skip = _skip_regions(tree)
    out: list[tuple[ast.AST, str, object]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in BINOP_SWAP:
            out.append((node, "binop", None))
        elif isinstance(node, ast.AugAssign) and type(node.op) in BINOP_SWAP:
            out.append((node, "augop", None))
        elif isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                if type(op) in CMP_SWAP:
                    out.append((node, "compare", k))
        elif isinstance(node, ast.BoolOp):
            out.append((node, "boolop", None))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.Not | ast.Invert):
            out.append((node, "unary", None))
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float) and not isinstance(node.value, bool):
            out.append((node, "number", None))
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            out.append((node, "bool", None))
        elif isinstance(node, ast.Name) and node.id in NAME_SWAP and isinstance(node.ctx, ast.Load):
            out.append((node, "name", None))
        elif isinstance(node, ast.Attribute) and node.attr in NAME_SWAP and isinstance(node.ctx, ast.Load):
            out.append((node, "attr", None))
    out.sort(key=lambda s: (getattr(s[0], "lineno", 0), getattr(s[0], "col_offset", 0), s[1]))
    return out


def _apply(node: ast.AST, kind: str, payload: object) -> ast.AST | None:
    """A mutated copy of ``node`` (None: the unary operator is removed, handled by the caller)."""
    new = copy.deepcopy(node)
    if kind in ("binop", "augop"):
        new.op = BINOP_SWAP[type(node.op)]()  # type: ignore[attr-defined]
    elif kind == "compare":
        k = int(payload)  # type: ignore[arg-type]
        new.ops[k] = CMP_SWAP[type(node.ops[k])]()  # type: ignore[attr-defined]
    elif kind == "boolop":
        new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()  # type: ignore[attr-defined]
    elif kind == "number":
        v = node.value  # type: ignore[attr-defined]
        new.value = v + 1 if isinstance(v, int) else (v * 2 if v else 1.0)  # type: ignore[attr-defined]
    elif kind == "bool":
        new.value = not node.value  # type: ignore[attr-defined]
    elif kind == "name":
        new.id = NAME_SWAP[node.id]  # type: ignore[attr-defined]
    elif kind == "attr":
        new.attr = NAME_SWAP[node.attr]  # type: ignore[attr-defined]
    elif kind == "unary":
        return copy.deepcopy(node.operand)  # type: ignore[attr-defined]
    return new


def _parents(tree: ast.AST) -> dict[int, tuple[ast.AST, str, int | None]]:
    """id(node) -> (parent, field name, index in that field's list or None), for every node under ``tree``."""
    out: dict[int, tuple[ast.AST, str, int | None]] = {}
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if isinstance(value, list):
                for k, child in enumerate(value):
                    if isinstance(child, ast.AST):
                        out[id(child)] = (parent, field, k)
            elif isinstance(value, ast.AST):
                out[id(value)] = (parent, field, None)
    return out


def _put(where: tuple[ast.AST, str, int | None], node: ast.AST) -> None:
    parent, field, k = where
    if k is None:
        setattr(parent, field, node)
    else:
        getattr(parent, field)[k] = node


def _line_texts(source: str) -> tuple[dict[int, str], dict[int, int]]:
    """line -> its stripped text, and line -> how many earlier lines have the same stripped text."""
    code: dict[int, str] = {}
    occ: dict[int, int] = {}
    seen: dict[str, int] = {}
    for k, raw in enumerate(source.splitlines(), start=1):
        text = raw.strip()
        code[k], occ[k] = text, seen.get(text, 0)
        seen[text] = occ[k] + 1
    return code, occ


def mutant_key(m: Mutant | dict) -> tuple:
    """What identifies a mutant across edits that move lines: its line's text, which of the identical lines, nth,
    kind and texts."""
    d = asdict(m) if isinstance(m, Mutant) else m
    return (d["code"], d["code_occ"], d["nth"], d["kind"], d["original"], d["mutated"])


@dataclass
class Exclusion:
    """Mutants a run skips: by ``(line, nth)`` name in the current source, or by :func:`mutant_key`."""

    names: set[tuple[int, int]]
    keys: set[tuple]

    def __contains__(self, m: Mutant) -> bool:
        return (m.line, m.nth) in self.names or mutant_key(m) in self.keys


def load_exclusion(module: str, json_files: list[Path], names: str | None = None) -> Exclusion:
    """The mutants of ``module`` that the runs saved in ``json_files`` took, plus the ``names`` ('1267#2,...').

    A saved run lists every mutant it took under ``ran``; names prefixed with another module (``dcg/x.py:12#1``)
    are ignored, unprefixed ones and ``module:`` ones kept.
    """
    keys: set[tuple] = set()
    for f in json_files:
        data = json.loads(Path(f).read_text())
        res = data.get(module)
        if res is None:
            continue
        if "ran" not in res:
            raise SystemExit(
                f"--exclude-json {f}: no 'ran' list for {module} (an older run); rebuild it with --list --json"
            )
        keys.update(mutant_key(d) for d in res["ran"])
    picked: set[tuple[int, int]] = set()
    for part in (names or "").split(","):
        part = part.strip()
        if not part:
            continue
        mod, sep, name = part.rpartition(":")
        if sep and mod != module:
            continue
        picked |= _parse_only(name) or set()
    return Exclusion(picked, keys)


def _all_mutants(source: str, lines: set[int] | None = None) -> list[tuple[Mutant, str]]:
    """The single-change mutants of ``source`` as ``(Mutant, mutated module source)``, duplicates dropped.

    Only the sites on ``lines`` (the node's first line; None: every line) are mutated: the source is parsed once
    and each mutant's text is made by swapping its node into the tree, unparsing, and swapping it back. A mutant
    whose text is the unmutated source's, or an earlier mutant's, is dropped. ``Mutant.nth`` numbers the mutants
    of one line from 1 in source order, so two mutants with the same text on one line can be told apart; it does
    not depend on ``lines`` (whole lines are selected). ``Mutant.index`` is the position in the returned list.
    """
    tree = ast.parse(source)
    base = ast.unparse(tree)
    code, code_occ = _line_texts(source)
    sites = _sites(tree)
    if lines is not None:
        sites = [s for s in sites if getattr(s[0], "lineno", 0) in lines]
    parents = _parents(tree)
    seen = {base}
    per_line: dict[int, int] = {}
    out: list[tuple[Mutant, str]] = []
    for node, kind, payload in sites:
        replacement = _apply(node, kind, payload)
        if replacement is None:
            continue
        where = parents[id(node)]
        _put(where, replacement)
        try:
            text = ast.unparse(tree)
        finally:
            _put(where, node)
        if text in seen:
            continue
        seen.add(text)
        line = getattr(node, "lineno", 0)
        per_line[line] = per_line.get(line, 0) + 1
        m = Mutant(len(out), line, kind, ast.unparse(node), ast.unparse(replacement), nth=per_line[line])
        m.code, m.code_occ = code.get(line, ""), code_occ.get(line, 0)
        out.append((m, text))
    return out


def select_mutants(
    source: str,
    lines: set[int] | None = None,
    max_mutants: int | None = None,
    seed: int | None = None,
    only: set[tuple[int, int]] | None = None,
    exclude: Exclusion | None = None,
) -> list[tuple[Mutant, str]]:
    """The mutants a run takes: those on ``lines``, less ``exclude``, then a sample of at most ``max_mutants``.

    With ``seed`` the sample is ``random.Random(seed).sample`` of the positions (kept in source order), otherwise
    evenly spaced. Same source, lines, seed and size give the same mutants. ``only``: just these
    ``(line, nth)`` mutants (before any sampling; ``lines`` is then ignored). ``exclude`` drops mutants before
    sampling (without it the selection is the same as before it existed).
    """
    if only is not None:
        muts = [mt for mt in _all_mutants(source, {ln for ln, _ in only}) if (mt[0].line, mt[0].nth) in only]
        missing = only - {(mt[0].line, mt[0].nth) for mt in muts}
        if missing:
            raise SystemExit(f"--only: no mutant {', '.join(f'{a}#{b}' for a, b in sorted(missing))}; see --list")
    else:
        muts = _all_mutants(source, lines)
    if exclude is not None:
        muts = [mt for mt in muts if mt[0] not in exclude]
    if max_mutants is not None and len(muts) > max_mutants and seed is not None:
        keep = sorted(random.Random(seed).sample(range(len(muts)), max_mutants))
        muts = [muts[k] for k in keep]
    elif max_mutants is not None and len(muts) > max_mutants:
        step = len(muts) / max_mutants
        muts = [muts[int(k * step)] for k in range(max_mutants)]
    return muts


def label(module: str, m: Mutant | dict) -> str:
    """``module:line#nth kind: 'original' -> 'mutated'``, the name a mutant is reported under."""
    d = asdict(m) if isinstance(m, Mutant) else m
    return f"{module}:{d['line']}#{d['nth']} {d['kind']}: {d['original']!r} -> {d['mutated']!r}"


PYTEST_ARGS = ["-x", "-q", "-p", "no:cacheprovider", "--no-header"]


def _preload(tests: list[str]) -> None:
    """Import the heavy third-party modules once in the parent, so every forked child starts warm.

    ``opgraph`` itself is never imported here: each child imports it from its own mutated copy.
    """
    import numpy  # noqa: F401
    import pytest  # noqa: F401
    import scipy.special  # noqa: F401
    import scipy.stats  # noqa: F401

    if any("/ffa/" in t or "/energy/" in t or "/perf/" in t for t in tests):
        import torch  # noqa: F401
    if any("/perf/" in t for t in tests):
        with contextlib.suppress(ImportError):  # without PyG its tests skip themselves
            import torch_geometric  # noqa: F401


def _status(rc: int, tests: list[str]) -> str:
    if rc == 0:
        return "survived"
    if rc == 5:  # no tests collected: the driver's configuration is wrong
        raise SystemExit(f"no tests collected for {tests}")
    return "killed"


def _run_forked(tests: list[str], pythonpath: Path, timeout: float) -> tuple[str, float]:
    """Run pytest in a forked child of this (pre-warmed) process; the child imports opgraph from ``pythonpath``."""
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        rc = 1
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            sys.path.insert(0, str(pythonpath))
            os.chdir(ROOT)
            import pytest

            rc = int(pytest.main([*PYTEST_ARGS, *tests]))
        finally:
            os._exit(rc)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            rc = os.waitstatus_to_exitcode(status)
            return _status(rc if rc >= 0 else 1, tests), time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return "timeout", time.perf_counter() - t0
        time.sleep(0.02)


def _run_tests(tests: list[str], pythonpath: Path, timeout: float, fork: bool = True) -> tuple[str, float]:
    if fork and hasattr(os, "fork"):
        return _run_forked(tests, pythonpath, timeout)
    env = dict(os.environ, PYTHONPATH=str(pythonpath), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    cmd = [sys.executable, "-m", "pytest", *PYTEST_ARGS, *tests]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - t0
    return _status(proc.returncode, tests), time.perf_counter() - t0


def run_module(
    module: str,
    tests: list[str],
    max_mutants: int | None,
    progress: bool = True,
    fork: bool = True,
    lines: set[int] | None = None,
    seed: int | None = None,
    only: set[tuple[int, int]] | None = None,
    exclude: Exclusion | None = None,
) -> dict:
    """Mutate ``module`` (path under src/opgraph) and run ``tests`` against every mutant."""
    if fork:
        _preload(tests)
    path = PKG / module
    source = path.read_text()
    muts = select_mutants(source, lines, max_mutants, seed, only, exclude)
    with tempfile.TemporaryDirectory(prefix="opgraph-mut-") as tmp:
        copy_src = Path(tmp) / "src"
        shutil.copytree(SRC, copy_src, ignore=shutil.ignore_patterns("__pycache__"))
        target = copy_src / "opgraph" / module
        target.write_text(ast.unparse(ast.parse(source)))  # the baseline runs the unparsed source too
        status, base_s = _run_tests(tests, copy_src, timeout=900, fork=fork)
        if status != "survived":
            raise SystemExit(f"{module}: the tests {tests} fail without any mutation; fix them first")
        limit = max(20.0, 3 * base_s)
        for k, (m, text) in enumerate(muts):
            target.write_text(text)
            m.status, m.seconds = _run_tests(tests, copy_src, timeout=limit, fork=fork)
            if progress:
                print(
                    f"  [{k + 1}/{len(muts)}] {module}:{m.line}#{m.nth} {m.kind} {m.status}",
                    file=sys.stderr,
                    flush=True,
                )
    counts = {s: sum(m.status == s for m in (mm for mm, _ in muts)) for s in ("killed", "survived", "timeout")}
    total = len(muts)
    score = (counts["killed"] + counts["timeout"]) / total if total else float("nan")
    return {
        "module": module,
        "tests": tests,
        "mutants": total,
        **counts,
        "score": score,
        "baseline_s": base_s,
        "survivors": [asdict(m) for m, _ in muts if m.status == "survived"],
        "ran": [asdict(m) for m, _ in muts],
    }


def _parse_only(spec: str | None) -> set[tuple[int, int]] | None:
    """``"1267#2,1056"`` -> {(1267, 2), (1056, 1)}; None -> None."""
    if spec is None:
        return None
    out: set[tuple[int, int]] = set()
    for part in spec.split(","):
        line, _, nth = part.strip().partition("#")
        out.add((int(line), int(nth or 1)))
    return out


def _parse_lines(spec: str | None) -> set[int] | None:
    """``"147,160-175"`` -> {147, 160, ..., 175}; None -> None (every line)."""
    if spec is None:
        return None
    out: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help="modules under src/opgraph (default: all in MODULES)")
    ap.add_argument("--max-mutants", type=int, default=None, help="evenly spaced sample of at most N mutants")
    ap.add_argument("--json", type=Path, default=None, help="write the results here (merged with the file's)")
    ap.add_argument("--list", action="store_true", help="list the mutants a run would take (module:line#nth) and exit")
    ap.add_argument("--lines", default=None, help="only mutants on these source lines, e.g. '147,160-175'")
    ap.add_argument("--only", default=None, help="only these mutants, as --list names them: '1267#2,1056#5'")
    ap.add_argument("--seed", type=int, default=None, help="with --max-mutants: a random sample with this seed")
    ap.add_argument("--no-fork", action="store_true", help="one fresh interpreter per mutant (slower)")
    ap.add_argument(
        "--exclude-json",
        type=Path,
        action="append",
        default=[],
        help="skip every mutant an earlier run saved in this --json took (repeatable)",
    )
    ap.add_argument("--exclude", default=None, help="skip these mutants: '1267#2,dcg/band.py:56#1'")
    ap.add_argument("--rev", default=None, help="with --list: the module's source at this git revision")
    args = ap.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ.setdefault("MPLBACKEND", "Agg")
    mods = args.modules or list(MODULES)
    unknown = [m for m in mods if m not in MODULES]
    if unknown:
        ap.error(f"unknown module(s) {unknown}; known: {sorted(MODULES)}")
    lines, only = _parse_lines(args.lines), _parse_only(args.only)
    if args.rev is not None and not args.list:
        ap.error("--rev only goes with --list (the tests of today cannot run an old source)")
    results = {}
    if args.json is not None and args.json.exists():
        results = json.loads(args.json.read_text())
    command = " ".join(["python", "benchmarks/mutation/run.py", *(sys.argv[1:] if argv is None else argv)])
    if args.list:
        for mod in mods:
            source = _source_at(mod, args.rev)
            excl = load_exclusion(mod, args.exclude_json, args.exclude)
            muts = select_mutants(source, lines, args.max_mutants, args.seed, only, excl)
            for m, _ in muts:
                print(label(mod, m))
            results[mod] = {
                "module": mod,
                "mutants": len(muts),
                "status": "listed",
                "rev": args.rev,
                "command": command,
                "ran": [asdict(m) for m, _ in muts],
            }
        if args.json is not None:
            _write_json(args.json, results)
        return 0
    print(f"{'module':<24} {'mutants':>7} {'killed':>6} {'timeout':>7} {'survived':>8} {'score':>6}")
    for mod in mods:
        t0 = time.perf_counter()
        excl = load_exclusion(mod, args.exclude_json, args.exclude)
        res = run_module(
            mod,
            MODULES[mod],
            args.max_mutants,
            fork=not args.no_fork,
            lines=lines,
            seed=args.seed,
            only=only,
            exclude=excl,
        )
        res["wall_s"] = time.perf_counter() - t0
        res["date_utc"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
        res["command"] = command
        res["load_1min"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        results[mod] = res
        print(
            f"{mod:<24} {res['mutants']:>7} {res['killed']:>6} {res['timeout']:>7} {res['survived']:>8} "
            f"{100 * res['score']:>5.1f}%",
            flush=True,
        )
        for s in res["survivors"]:
            print(f"    survived {label(mod, s)}", flush=True)
        if args.json is not None:
            _write_json(args.json, results)
    return 0


def _write_json(path: Path, results: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(path)


def _source_at(module: str, rev: str | None) -> str:
    """The module's source now (``rev`` None) or at a git revision."""
    if rev is None:
        return (PKG / module).read_text()
    proc = subprocess.run(
        ["git", "show", f"{rev}:src/opgraph/{module}"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"--rev {rev}: no src/opgraph/{module} there ({proc.stderr.strip()})")
    return proc.stdout


if __name__ == "__main__":
    raise SystemExit(main())
