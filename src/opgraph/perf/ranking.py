"""Rank configurations with a cost model: readable descriptions and the Kaggle "Fast or Slow" submission CSV.

The submission has one row per graph, ``ID,TopConfigs``: the ID is ``tile:<source>:<graph>`` or
``layout:<source>:<search>:<graph>`` (taken from the official tree ``{tile/<source>,layout/<source>/<search>}/
<split>/<graph>.npz``; files outside that tree get source ``local`` and search ``default``), and ``TopConfigs`` the
config indices, best first, joined by ``;``: the five best for tile graphs (the competition scores the top 5),
every config for layout graphs (scored by Kendall tau over the whole ranking).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Configs in a tile row of the submission (the competition scores the top 5).
KAGGLE_TILE_TOP = 5


def kaggle_id(path: str | Path, kind: str) -> str:
    """The submission ID of a graph file (``layout:xla:default:<stem>``, ``tile:xla:<stem>``)."""
    p = Path(path)
    parts = p.parts
    stem = p.stem
    if kind == "tile" and len(parts) >= 4 and parts[-4] == "tile":
        return f"tile:{parts[-3]}:{stem}"
    if kind == "layout" and len(parts) >= 5 and parts[-5] == "layout":
        return f"layout:{parts[-4]}:{parts[-3]}:{stem}"
    return f"tile:local:{stem}" if kind == "tile" else f"layout:local:default:{stem}"


def describe_config(rec: Any, i: int, targets: Sequence[str] | None = None, width: int = 48) -> str:
    """A short human description of config ``i`` of a record.

    Layout: how many configurable convolutions are channels-last, then either their module paths (when
    ``targets``, one per configurable node, is given) or one letter per node (``N`` NCHW, ``H`` NHWC). Tile: the
    loop tile ``ti x tj x tk`` from the config's kernel bounds; TVM's default schedule (the configs that
    ``measure_meta["tiles"]`` records as ``None``: untiled, so its kernel bounds are the whole loop extents) is
    named as such, with those extents.
    """
    row = rec.config_matrix([int(i)])[0]
    if rec.kind == "tile":
        ti, tj, tk = (int(v) for v in row[:3])
        if is_default_tile(rec, int(i)):
            return f"TVM default schedule (untiled: loops {ti}x{tj}x{tk})"
        return f"tile {ti}x{tj}x{tk}"
    from opgraph.perf.layout import decode_configs

    bits = decode_configs(row).reshape(-1)
    n_h = int(bits.sum())
    head = f"{n_h}/{len(bits)} NHWC"
    if targets is not None:
        paths = list(dict.fromkeys(t for t, b in zip(targets, bits) if b))
        if not paths:
            return f"{head} (all NCHW)"
        if n_h == len(bits):
            return f"{head} (all channels_last)"
        text = ", ".join(paths)
        return f"{head}: {text if len(text) <= width else text[: width - 3] + '...'}"
    letters = "".join("H" if b else "N" for b in bits)
    return f"{head} {letters if len(letters) <= width else letters[: width - 3] + '...'}"


def is_default_tile(rec: Any, i: int) -> bool:
    """Whether config ``i`` of a tile record is TVM's default schedule (``measure_meta["tiles"][i]`` is ``None``).

    Records of :func:`opgraph.perf.tile.tile_record` and :func:`~opgraph.perf.tile.candidate_record` list their
    tiles there; records without that list (the official TpuGraphs data) have no default config.
    """
    tiles = (getattr(rec, "measure_meta", None) or {}).get("tiles")
    return isinstance(tiles, list) and len(tiles) == rec.n_configs and 0 <= i < len(tiles) and tiles[i] is None


@dataclass(frozen=True)
class Ranking:
    """A cost model's ranking of one graph's configurations.

    Attributes:
        id: Kaggle submission ID.
        kind: ``"tile"`` or ``"layout"``.
        order: Config indices, fastest predicted first.
        cost: Predicted cost per config (lower is faster; the model's scale).
    """

    id: str
    kind: str
    order: np.ndarray
    cost: np.ndarray


def rank_record(model: Any, rec: Any, kaggle: str) -> Ranking:
    """Predict every config's cost with ``model.predict(rec)`` and order them, fastest first (stable ties)."""
    cost = np.asarray(model.predict(rec), dtype=np.float64)
    return Ranking(kaggle, rec.kind, np.argsort(cost, kind="stable"), cost)


def submission_csv(rankings: Sequence[Ranking]) -> str:
    """The Kaggle submission text (``ID,TopConfigs``) of some rankings, one row each, sorted by ID.

    Raises:
        PerfError: Two rankings share an ID (graphs with the same file name outside the official tree, or the
            same graph ranked twice): a submission must have one row per graph.
    """
    from collections import Counter

    from opgraph.perf.errors import PerfError

    dup = sorted(i for i, c in Counter(r.id for r in rankings).items() if c > 1)
    if dup:
        raise PerfError(
            f"submission ID {dup[0]!r} would appear {sum(r.id == dup[0] for r in rankings)} times"
            f"{f' (and {len(dup) - 1} more IDs)' if len(dup) > 1 else ''}: rank one split of the official "
            "{tile,layout}/{xla,nlp}/.../test tree at a time, or give the graph files distinct names"
        )
    lines = ["ID,TopConfigs"]
    for r in sorted(rankings, key=lambda r: r.id):
        top = r.order[:KAGGLE_TILE_TOP] if r.kind == "tile" else r.order
        lines.append(f"{r.id},{';'.join(str(int(i)) for i in top)}")
    return "\n".join(lines) + "\n"


def write_submission(rankings: Sequence[Ranking], path: str | Path) -> Path:
    """Write :func:`submission_csv` atomically to ``path``; returns the path."""
    from opgraph._base.fileio import atomic_write

    out = Path(path)
    atomic_write(out, submission_csv(rankings))
    return out
