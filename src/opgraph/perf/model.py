"""A learned cost model that ranks the configurations of a graph (PyTorch Geometric GraphSAGE).

Architecture (research note §6.3):

* node input = opcode embedding || linear(standardised ``sign(x) log1p|x|`` of the 140 features) || categorical
  embeddings of the layout columns 134-139;
* config features: layout configs (18 categorical columns per configurable node) are embedded and added at the
  configurable nodes (early join); tile configs (24 numbers, ``sign(x) log1p|x|``, standardised over the training
  configs with ``cfg_norm``) go through a ``cfg_layers``-layer MLP and are added at every node (``join="early"``),
  concatenated with the pooled graph embedding (``join="late"``), or both; ``ensemble`` > 1 averages several
  seeds (the tile design of ``opgraph perf train`` and the benchmark: late join, standardised, 3 layers, 5 seeds);
* ``layers`` residual SAGEConv blocks (LayerNorm, GELU) on the undirected graph;
* readout mean || max over nodes (|| mean over configurable nodes for layout), then an MLP -> one cost per config
  (lower = faster);
* loss ListMLE over the configs of one graph (``loss="hinge"``: pairwise hinge), optionally + ``mse_weight`` x MSE on
  the per-graph standardised log runtime;
* layout graphs are pruned to the ``k_hop`` undirected neighbourhood of the configurable nodes;
* ``hints=True``: the analytical model's log estimate and the LightGBM hand features of every config
  (:func:`opgraph.perf.baselines.config_hints`), centred per graph and scaled by a standard deviation fitted on the
  training configs, go through an MLP joined late (concatenated with the pooled graph embedding), and the
  scaled analytical estimate is added to the output with a learned gain initialised to 1, so that the untrained
  network ranks like the analytical model and training learns the residual.

Checkpoints hold the weights, the feature normalisation and :data:`~opgraph.perf.tpugraphs.FEATURE_VERSION`;
loading one made with other features raises :class:`~opgraph.perf.errors.CheckpointError`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from opgraph.perf.baselines import FIT_DIMS, HINT_DIMS
from opgraph.perf.errors import CheckpointError, PerfError, require
from opgraph.perf.tpugraphs import FEATURE_VERSION, LAYOUT_CONFIG_DIM, TILE_CONFIG_DIM, GraphRecord

log = logging.getLogger(__name__)

MODEL_FORMAT = 1
N_OPCODES = 256
_CAT = 8  # categorical values -1..6 -> 0..7


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of :class:`CostModel`.

    Attributes:
        kind: ``"layout"`` or ``"tile"``.
        hidden: Width of node embeddings.
        layers: Number of SAGEConv blocks.
        op_dim: Opcode embedding width.
        join: ``"early"`` or ``"late"`` (tile only; layout is always early).
        loss: ``""`` (the space's default: ``"listmle_top"`` for layout, where it beat ListMLE on 4 of 5 held-out
            families, ``"lambda"`` for layout with ``hints`` (with the analytical terms standardised per graph it
            lifted the held-out tau from 0.268 ± 0.027 to 0.320 ± 0.012 over 3 seeds), ``"listmle"`` for tile;
            ``docs/perf.md``), ``"listmle"``, ``"hinge"``, ``"listmle_top"`` (ListMLE over the first ``top_k`` positions of the true
            order only: the likelihood of the fastest ``top_k`` configs in order) or ``"lambda"`` (pairwise
            logistic, each pair weighted by its gap in reciprocal true rank times its log runtime ratio, so that
            mistakes near the top and mistakes that cost much time weigh most) or ``"lambda_ndcg"`` (LambdaRank
            on NDCG@``top_k`` with gains ``log(slowest runtime / runtime)``: each pair weighted by the change in
            NDCG@``top_k`` that swapping the two in the *predicted* order makes, so only pairs where one config is
            predicted into the first ``top_k`` positions count: :func:`lambda_ndcg_loss`).
        top_k: Positions of the true order that ``loss="listmle_top"`` scores; the cut-off of ``"lambda_ndcg"``.
        mse_weight: Weight of the MSE term on standardised log runtime.
        k_hop: Layout pruning radius around configurable nodes (``None``: no pruning).
        configs_per_step: Configs of one graph per training step.
        graphs_per_step: Graphs per optimiser step.
        epochs: Passes over the training graphs.
        lr: Adam learning rate.
        weight_decay: AdamW weight decay.
        seed: Seed of initialisation and sampling.
        propagate_layout: Layout only: also embed at every 4-d node the memory format it runs in under the
            config, propagated from the configurable nodes (``baselines.LayoutGraphInfo.propagate``).
        cfg_norm: Tile only: standardise the ``sign(x) log1p|x|`` of the 24 config columns with their mean/std over
            the training configs (stored in the checkpoint); ``False``: plain ``log1p`` (the first version).
        cfg_layers: Tile only: linear layers of the config MLP (GELU between them).
        interact: Tile only (late or both joins): also feed the head the product of the pooled graph embedding and
            the config embedding (a graph x config interaction).
        early_stop_frac: If ``fit`` gets no validation graphs, hold out this fraction of the training graphs
            (whole graphs, seeded) and keep the epoch with the best validation Kendall tau; 0 disables it.
        ensemble: Number of networks trained with seeds ``seed, seed + 1, ...`` on the same graphs; the prediction
            is the mean of their per-graph standardised costs.
        feat_norm: Standardise ``sign(x) log1p|x|`` of the node features (``False``: the raw 140 columns, an
            ablation of what the normalisation buys).
        hints: Join the analytical estimate and the hand features of each config late, and learn the residual
            of the analytical estimate (module docstring).
        hint_set: ``""`` (the space's default: ``"analytical"`` for layout, ``"all"`` for tile; ``docs/perf.md``),
            ``"all"`` (every column of :func:`~opgraph.perf.baselines.config_hints`), ``"analytical"``
            (only the analytical columns: the estimate and, for layout, its three penalty terms) or ``"estimate"``
            (only the analytical estimate: a learned residual over the analytical ranking plus that one number
            joined late).
        hint_norm: ``""`` (the space's default: ``"graph"`` for layout, ``"train"`` for tile), ``"train"``: the
            hints are centred per graph and divided by a standard deviation fitted on the
            training configs; ``"graph"``: standardised per graph (centred and divided by the graph's own standard
            deviation of each column), so the analytical estimate enters every graph on the same scale;
            ``"global"``: not centred per graph, standardised with the mean and standard deviation of the training
            configs (so what is constant within a kernel, its extents and how its tiles fit them, keeps its level,
            as the LightGBM columns do).
        residual: With ``hints``, add the scaled analytical estimate to the output with a learned gain (the network
            learns the residual of the analytical ranking); ``False``: the hints are inputs only. ``None`` (the
            default): on for layout, off for tile, where the residual over the cache-footprint estimate cost
            slowdown (held-out slowdown@5 6.2% without against 8.5% with, better on 7 of 9 families; tau 0.478 vs
            0.482, within the seed spread; ``docs/perf.md``).
        fit_hints: Tile only: append how each tile fits its loops (divides, padding waste, extent / tile per loop:
            :func:`~opgraph.perf.baselines.tile_fit_features`) to the hints. ``None`` (the default): on for tile,
            where it lifted the held-out tau from 0.462 to 0.482 and cut slowdown@5 from 16.7% to 8.5%
            (``docs/perf.md``); checkpoints store the value they were trained with.
        hint_join: Where the hint embedding joins: ``"pooled"`` (concatenated with the pooled graph embedding
            before the head) or ``"config"`` (tile with a late join only: added to the config embedding, so the
            hand features and the tile columns form one late-joined config vector, which ``interact`` also
            multiplies with the pooled graph embedding).
        fast_sampling: How the ``configs_per_step`` configs of a graph are drawn each step: 0 (the default)
            uniformly; ``t > 0``: skewed towards fast configs (TpuGraphs' layout trainer), without replacement with
            weights ``exp(-rank / (t * n))`` (rank 0 = fastest of the graph's ``n`` configs; Gumbel top-k), so the
            loss sees the top of each graph's order more often.
        ndcg_weight: Weight of a LambdaRank NDCG@``top_k`` term (:func:`lambda_ndcg_loss`) added to ``loss``
            (0: none), so a listwise loss over the whole order is pulled towards the top ``top_k``.
    """

    kind: str = "layout"
    hidden: int = 64
    layers: int = 3
    op_dim: int = 32
    join: str = "early"
    loss: str = ""
    top_k: int = 5
    mse_weight: float = 0.0
    k_hop: int | None = 3
    propagate_layout: bool = False
    configs_per_step: int = 16
    graphs_per_step: int = 4
    epochs: int = 40
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    cfg_norm: bool = False
    cfg_layers: int = 2
    interact: bool = False
    early_stop_frac: float = 0.0
    ensemble: int = 1
    feat_norm: bool = True
    hints: bool = False
    hint_set: str = ""
    hint_norm: str = ""
    fit_hints: bool | None = None
    residual: bool | None = None
    hint_join: str = "pooled"
    fast_sampling: float = 0.0
    ndcg_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("layout", "tile"):
            raise PerfError(f"ModelConfig.kind must be 'layout' or 'tile', got {self.kind!r}")
        if not self.loss:  # the space's default (a checkpoint stores the loss it was trained with)
            lam = self.kind == "layout" and bool(self.hints)  # layout with the analytical prior: lambda (docs/perf.md)
            object.__setattr__(self, "loss", "lambda" if lam else DEFAULT_LOSS.get(self.kind, "listmle"))
        if self.loss not in LOSSES:
            raise PerfError(f"ModelConfig.loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.top_k < 1:
            raise PerfError(f"ModelConfig.top_k must be >= 1, got {self.top_k}")
        if self.join not in ("early", "late", "both"):
            raise PerfError(f"ModelConfig.join must be 'early', 'late' or 'both', got {self.join!r}")
        if not self.hint_set:
            object.__setattr__(self, "hint_set", DEFAULT_HINT_SET.get(self.kind, "all"))
        if not self.hint_norm:
            object.__setattr__(self, "hint_norm", DEFAULT_HINT_NORM.get(self.kind, "train"))
        if self.hint_set not in HINT_SETS:
            raise PerfError(f"ModelConfig.hint_set must be one of {', '.join(HINT_SETS)}, got {self.hint_set!r}")
        if self.hint_norm not in ("train", "graph", "global"):
            raise PerfError(f"ModelConfig.hint_norm must be 'train', 'graph' or 'global', got {self.hint_norm!r}")
        if self.residual is None:
            object.__setattr__(self, "residual", self.kind != "tile")
        if self.fit_hints is None:
            object.__setattr__(self, "fit_hints", self.kind == "tile")
        if self.fit_hints and self.kind != "tile":
            raise PerfError("ModelConfig.fit_hints is a tile option; leave it False for layout")
        if self.hint_join not in ("pooled", "config"):
            raise PerfError(f"ModelConfig.hint_join must be 'pooled' or 'config', got {self.hint_join!r}")
        if self.hint_join == "config" and (self.kind != "tile" or self.join == "early"):
            raise PerfError("ModelConfig.hint_join='config' needs kind='tile' and join='late' or 'both'")
        if self.ndcg_weight < 0:
            raise PerfError(f"ModelConfig.ndcg_weight must be >= 0, got {self.ndcg_weight}")
        if self.fast_sampling < 0:
            raise PerfError(f"ModelConfig.fast_sampling must be >= 0, got {self.fast_sampling}")
        if self.cfg_layers < 1:
            raise PerfError(f"ModelConfig.cfg_layers must be >= 1, got {self.cfg_layers}")
        if self.ensemble < 1:
            raise PerfError(f"ModelConfig.ensemble must be >= 1, got {self.ensemble}")
        if not 0.0 <= self.early_stop_frac < 1.0:
            raise PerfError(f"ModelConfig.early_stop_frac must be in [0, 1), got {self.early_stop_frac}")


HINT_SETS = ("all", "analytical", "estimate")
#: ModelConfig.hint_set / hint_norm when left empty, per space (held-out families, docs/perf.md): layout hints are
#: the analytical estimate and its three penalty terms, standardised per graph (all 20 columns scaled over the
#: training configs lost 0.09 tau; these gained +0.007 over the no-hint design, so ``hints`` stays off for layout in
#: ``perf train``); tile reads every hand feature, scaled over the training configs
DEFAULT_HINT_SET = {"layout": "analytical", "tile": "all"}
DEFAULT_HINT_NORM = {"layout": "graph", "tile": "train"}
LOSSES = ("listmle", "hinge", "listmle_top", "lambda", "lambda_ndcg")
#: ModelConfig.loss when left empty, per space (held-out families, docs/perf.md)
DEFAULT_LOSS = {"layout": "listmle_top", "tile": "listmle"}
#: Networks ``opgraph perf train`` averages per space (``ModelConfig.ensemble``; held-out families, docs/perf.md):
#: tile 5 (against 3: tau 0.478 -> 0.482, better on 6 of 9 families, slowdown@1 54% -> 40%, slowdown@5 6.2% -> 6.0%);
#: layout 1 (5 seeds ensembled: tau 0.294 against 0.297 +- 0.036 for single networks)
DEFAULT_ENSEMBLE = {"layout": 1, "tile": 5}
_ANALYTICAL_HINTS = {"layout": 4, "tile": 1}  # leading columns of config_hints that come from the analytical model


#: Values of options that checkpoints written before the option existed were trained with (their defaults may differ)
_LEGACY = {"hint_set": "all", "hint_norm": "train", "fit_hints": False, "residual": True, "hint_join": "pooled"}


def hint_dim(cfg: ModelConfig) -> int:
    """Number of hint columns the network of ``cfg`` reads."""
    if cfg.hint_set == "estimate":
        return 1
    if cfg.hint_set == "analytical":
        return _ANALYTICAL_HINTS[cfg.kind]
    return HINT_DIMS[cfg.kind] + (FIT_DIMS if cfg.fit_hints else 0)


def _log_feat(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


@dataclass
class Normalizer:
    """Per-column mean/std of ``sign(x) log1p|x|`` of the node features, fitted on the training graphs."""

    mean: np.ndarray = field(default_factory=lambda: np.zeros(140, dtype=np.float32))
    std: np.ndarray = field(default_factory=lambda: np.ones(140, dtype=np.float32))
    raw: bool = False  # pass the features through unchanged (ModelConfig.feat_norm=False)

    @classmethod
    def fit(cls, records: list[GraphRecord]) -> Normalizer:
        """Fit on the nodes of ``records``."""
        x = _log_feat(np.concatenate([np.asarray(r.node_feat, dtype=np.float64) for r in records]))
        std = x.std(0)
        std[std < 1e-6] = 1.0
        return cls(x.mean(0).astype(np.float32), std.astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Standardised log features float32[n, 140]."""
        if self.raw:
            return np.asarray(x, dtype=np.float32)
        return ((_log_feat(np.asarray(x, dtype=np.float64)) - self.mean) / self.std).astype(np.float32)


def _array(value: Any) -> np.ndarray:
    """A checkpoint's tensor (or, from older files, list) as a float32 NumPy array."""
    if hasattr(value, "numpy"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def k_hop_nodes(n: int, edge_index: np.ndarray, seeds: np.ndarray, k: int) -> np.ndarray:
    """Sorted ids of nodes within ``k`` undirected hops of ``seeds``."""
    keep = np.zeros(n, dtype=bool)
    keep[seeds] = True
    frontier = keep.copy()
    e = np.asarray(edge_index).reshape(-1, 2)
    for _ in range(k):
        nxt = np.zeros(n, dtype=bool)
        nxt[e[frontier[e[:, 0]], 1]] = True
        nxt[e[frontier[e[:, 1]], 0]] = True
        frontier = nxt & ~keep
        keep |= nxt
        if not frontier.any():
            break
    return np.flatnonzero(keep)


@dataclass
class Prepared:
    """Tensors of one graph ready for the network (config-independent part)."""

    name: str
    x: Any
    opcode: Any
    layout_cat: Any
    edge_index: Any
    cfg_pos: Any
    n: int
    record: GraphRecord
    fmt: Any = None  # (c, n) propagated format index per config (0 none, 1 NCHW, 2 NHWC), or None
    side: Any = None  # (c, HINT_DIMS[kind]) config hints centred over the graph's configs, or None


def _cat(v: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(v) + 1, 0, _CAT - 1).astype(np.int64)


def _build_net(cfg: ModelConfig) -> Any:
    import torch
    from torch import nn

    require("torch_geometric", "perf")
    from torch_geometric.nn import SAGEConv

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            h = cfg.hidden
            self.op_emb = nn.Embedding(N_OPCODES, cfg.op_dim)
            self.feat = nn.Linear(140, h)
            self.lay_emb = nn.Embedding(6 * _CAT, 4)
            self.inp = nn.Linear(cfg.op_dim + h + 24, h)
            if cfg.kind == "layout":
                self.cfg_emb = nn.Embedding(LAYOUT_CONFIG_DIM * _CAT, 4)
                self.cfg_proj = nn.Sequential(nn.Linear(LAYOUT_CONFIG_DIM * 4 + 1, h), nn.GELU(), nn.Linear(h, h))
            else:
                mlp: list[nn.Module] = [nn.Linear(TILE_CONFIG_DIM, h)]
                for _ in range(cfg.cfg_layers - 1):
                    mlp += [nn.GELU(), nn.Linear(h, h)]
                self.cfg_proj = nn.Sequential(*mlp)
            self.convs = nn.ModuleList([SAGEConv(h, h) for _ in range(cfg.layers)])
            self.norms = nn.ModuleList([nn.LayerNorm(h) for _ in range(cfg.layers)])
            late = cfg.kind == "tile" and cfg.join in ("late", "both")
            pooled = (
                2 * h
                + (h if cfg.kind == "layout" else 0)
                + (h if late else 0)
                + (h if late and cfg.interact else 0)
                + (h if cfg.hints and cfg.hint_join == "pooled" else 0)
            )
            self.head = nn.Sequential(nn.Linear(pooled, h), nn.GELU(), nn.Linear(h, 1))
            if cfg.propagate_layout:
                self.fmt_emb = nn.Embedding(3, h)
            if cfg.kind == "tile" and cfg.cfg_norm:  # fitted on the training configs in fit(), saved with the weights
                self.register_buffer("cfg_mean", torch.zeros(TILE_CONFIG_DIM))
                self.register_buffer("cfg_std", torch.ones(TILE_CONFIG_DIM))
            if cfg.hints:
                d = hint_dim(cfg)
                self.register_buffer("hint_std", torch.ones(d))  # fitted in fit(), saved with the weights
                if cfg.hint_norm == "global":
                    self.register_buffer("hint_mean", torch.zeros(d))
                self.hint_mlp = nn.Sequential(nn.Linear(d, h), nn.GELU(), nn.Linear(h, h))
                self.hint_gain = nn.Parameter(torch.ones(()))

        def base(self, p: Prepared) -> Any:
            lay = self.lay_emb(p.layout_cat + torch.arange(6) * _CAT).reshape(p.n, -1)
            return self.inp(torch.cat([self.op_emb(p.opcode), self.feat(p.x), lay], 1))

        def config_vec(self, cfg_feat: Any) -> Any:
            if cfg.kind == "layout":
                k, nc, _ = cfg_feat.shape
                cat = torch.clamp(torch.round(cfg_feat) + 1, 0, _CAT - 1).long()
                e = self.cfg_emb(cat + torch.arange(LAYOUT_CONFIG_DIM) * _CAT).reshape(k, nc, -1)
                ones = torch.ones(k, nc, 1)
                return self.cfg_proj(torch.cat([e, ones], -1))  # (k, nc, h)
            z = torch.sign(cfg_feat) * torch.log1p(torch.abs(cfg_feat))
            if cfg.cfg_norm:
                z = (z - self.cfg_mean) / self.cfg_std
            return self.cfg_proj(z)  # (k, h)

        def forward(self, p: Prepared, cfg_feat: Any, fmt: Any = None, side: Any = None) -> Any:
            from torch_geometric.utils import scatter

            k = cfg_feat.shape[0]
            h0 = self.base(p)
            cv = self.config_vec(cfg_feat)
            z = None
            if cfg.hints:
                z = (side - self.hint_mean if cfg.hint_norm == "global" else side) / self.hint_std
            if z is not None and cfg.hint_join == "config":
                cv = cv + self.hint_mlp(z)  # the hand features join the late config embedding
            h = h0.unsqueeze(0).repeat(k, 1, 1)
            if fmt is not None:
                h = h + self.fmt_emb(fmt)
            if cfg.kind == "layout":
                h[:, p.cfg_pos] = h[:, p.cfg_pos] + cv
            elif cfg.join in ("early", "both"):
                h = h + cv.unsqueeze(1)
            h = h.reshape(k * p.n, -1)
            offs = (torch.arange(k) * p.n).repeat_interleave(p.edge_index.shape[1])
            ei = p.edge_index.repeat(1, k) + offs
            batch = torch.arange(k).repeat_interleave(p.n)
            for conv, norm in zip(self.convs, self.norms):
                h = h + nn.functional.gelu(norm(conv(h, ei)))
            pooled = [scatter(h, batch, 0, dim_size=k, reduce="mean"), scatter(h, batch, 0, dim_size=k, reduce="max")]
            if cfg.kind == "layout":
                pooled.append(h.reshape(k, p.n, -1)[:, p.cfg_pos].mean(1))
            if cfg.kind == "tile" and cfg.join in ("late", "both"):
                pooled.append(cv)
                if cfg.interact:
                    pooled.append(pooled[0] * cv)
            if z is None:
                return self.head(torch.cat(pooled, 1)).squeeze(-1)
            if cfg.hint_join == "pooled":
                pooled.append(self.hint_mlp(z))
            out = self.head(torch.cat(pooled, 1)).squeeze(-1)
            return out + self.hint_gain * z[:, 0] if cfg.residual else out

    return Net()


def listmle_loss(cost: Any, runtime: Any, top_k: int | None = None) -> Any:
    """ListMLE on scores ``-cost``: negative log-likelihood of the true order (fastest first).

    Args:
        cost: Predicted costs (lower = faster), one per config.
        runtime: Measured runtimes of the same configs.
        top_k: Score only the first ``top_k`` positions of the true order (top-k ListMLE: the likelihood that the
            ``top_k`` fastest configs come first, in order); ``None``: the whole list.
    """
    import torch

    order = torch.argsort(runtime)
    s = -cost[order]
    # log-sum-exp over the suffix s[i:], computed from the end
    rev = torch.flip(s, [0])
    lse = torch.flip(torch.logcumsumexp(rev, 0), [0])
    terms = lse - s
    if top_k is not None:
        terms = terms[:top_k]
    return terms.mean()


def lambda_loss(cost: Any, runtime: Any) -> Any:
    """Pairwise logistic loss weighted towards the top of the true order and by the time a mistake costs.

    For every pair with ``runtime_i < runtime_j`` the term ``log(1 + exp(cost_i - cost_j))`` is weighted by
    ``|1/(1 + rank_i) - 1/(1 + rank_j)| * log(runtime_j / runtime_i)`` (ranks from 0 = fastest): swapping the two
    fastest configs weighs more than swapping two slow ones, and a pair 2x apart more than a pair 1% apart.
    """
    import torch

    rank = torch.empty_like(runtime)
    rank[torch.argsort(runtime)] = torch.arange(len(runtime), dtype=runtime.dtype)
    inv = 1.0 / (1.0 + rank)
    logr = torch.log(runtime.clamp(min=1e-30))
    better = runtime[:, None] < runtime[None, :]
    w = (inv[:, None] - inv[None, :]).abs() * (logr[None, :] - logr[:, None]).clamp(min=0) * better
    pair = torch.nn.functional.softplus(cost[:, None] - cost[None, :])
    return (w * pair).sum() / w.sum().clamp(min=1e-12)


def lambda_ndcg_loss(cost: Any, log_runtime: Any, k: int) -> Any:
    """LambdaRank on NDCG@``k``: pairwise logistic, each pair weighted by the NDCG@``k`` a swap would change.

    Gains are ``log(slowest / runtime)`` (0 for the slowest config; the gap of two configs is their log runtime
    ratio), discounts ``1 / log2(2 + position)`` for the first ``k`` positions of the **predicted** order and 0
    after. For every pair with ``runtime_i < runtime_j`` the term ``log(1 + exp(cost_i - cost_j))`` is weighted by
    ``|gain_i - gain_j| * |discount_i - discount_j| / IDCG@k``: pairs that both sit below the predicted top ``k``
    weigh nothing, so training spends itself on what is (or should be) ranked first.

    Args:
        cost: Predicted costs (lower = faster), one per config.
        log_runtime: Log of the measured runtimes of the same configs.
        k: NDCG cut-off (positions).
    """
    import torch

    n = len(cost)
    gain = log_runtime.max() - log_runtime
    pos = torch.empty(n, dtype=log_runtime.dtype)
    pos[torch.argsort(cost.detach())] = torch.arange(n, dtype=log_runtime.dtype)
    disc = torch.where(pos < k, 1.0 / torch.log2(2.0 + pos), torch.zeros_like(pos))
    ideal = torch.sort(gain, descending=True).values[:k]
    idcg = (ideal / torch.log2(2.0 + torch.arange(len(ideal), dtype=gain.dtype))).sum().clamp(min=1e-12)
    better = log_runtime[:, None] < log_runtime[None, :]
    w = (gain[:, None] - gain[None, :]).abs() * (disc[:, None] - disc[None, :]).abs() / idcg * better
    pair = torch.nn.functional.softplus(cost[:, None] - cost[None, :])
    return (w * pair).sum() / w.sum().clamp(min=1e-12)


def hinge_loss(cost: Any, runtime: Any, margin: float = 0.1) -> Any:
    """Pairwise hinge: for every pair with ``runtime_i < runtime_j`` penalise ``cost_i > cost_j - margin``."""
    import torch

    better = (runtime[:, None] < runtime[None, :]).float()
    viol = torch.relu(margin + cost[:, None] - cost[None, :]) * better
    return viol.sum() / better.sum().clamp(min=1)


def _loss(cfg: ModelConfig, cost: Any, log_runtime: Any) -> Any:
    """The ranking loss of ``cfg`` on one graph's sampled configs (``log_runtime``: log of their runtimes)."""
    import torch

    if cfg.loss == "listmle":
        return listmle_loss(cost, log_runtime)
    if cfg.loss == "listmle_top":
        return listmle_loss(cost, log_runtime, cfg.top_k)
    if cfg.loss == "lambda":
        return lambda_loss(cost, torch.exp(log_runtime))
    if cfg.loss == "lambda_ndcg":
        return lambda_ndcg_loss(cost, log_runtime, cfg.top_k)
    return hinge_loss(cost, log_runtime)


def _sample_configs(rng: np.random.Generator, rank: np.ndarray, m: int, fast: float) -> np.ndarray:
    """``m`` distinct config ids of one graph.

    Uniform when ``fast == 0``, else Gumbel top-k with weights ``exp(-rank / (fast * n))``
    (``ModelConfig.fast_sampling``).
    """
    c = len(rank)
    if fast <= 0:
        return rng.choice(c, size=min(c, m), replace=False)
    keys = -rank / (fast * c) + rng.gumbel(size=c)
    return np.argsort(-keys)[: min(c, m)]


class CostModel:
    """Learned ranking model over the configurations of a graph.

    Example:
        >>> model = CostModel(ModelConfig(kind="layout", epochs=20)).fit(train_records)  # doctest: +SKIP
        >>> cost = model.predict(record)  # lower = predicted faster  # doctest: +SKIP
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        self.config = config or ModelConfig()
        self.normalizer = Normalizer()
        self.net: Any = None
        self.members: list[CostModel] = []  # the other networks of an ensemble (config.ensemble > 1)
        self.history: list[dict[str, float]] = []
        self.train_s = 0.0
        self.selection: dict[str, Any] = {}  # how ``opgraph perf train`` chose this model (saved in the checkpoint)

    @property
    def kind(self) -> str:
        """``"layout"`` or ``"tile"``."""
        return self.config.kind

    # -- preparation -------------------------------------------------------------------------------------
    def prepare(self, rec: GraphRecord) -> Prepared:
        """Prune (layout) and convert one record to tensors."""
        import torch

        if rec.kind != self.config.kind:
            raise PerfError(f"{rec.name}: a {rec.kind} graph given to a {self.config.kind} model")
        n = rec.n_nodes
        edges = np.asarray(rec.edge_index).reshape(-1, 2)
        keep = np.arange(n)
        cfg_ids = np.asarray(rec.node_config_ids) if rec.kind == "layout" else np.zeros(0, dtype=np.int64)
        if rec.kind == "layout" and self.config.k_hop is not None and len(cfg_ids):
            keep = k_hop_nodes(n, edges, cfg_ids, self.config.k_hop)
        remap = -np.ones(n, dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        e = remap[edges]
        e = e[(e >= 0).all(1)]
        both = np.concatenate([e, e[:, ::-1]]).T if len(e) else np.zeros((2, 0), dtype=np.int64)
        feat = np.asarray(rec.node_feat)[keep]
        return Prepared(
            name=rec.name,
            x=torch.from_numpy(self.normalizer(feat)),
            opcode=torch.from_numpy(np.clip(np.asarray(rec.node_opcode)[keep], 0, N_OPCODES - 1).astype(np.int64)),
            layout_cat=torch.from_numpy(_cat(feat[:, 134:140])),
            edge_index=torch.from_numpy(np.ascontiguousarray(both, dtype=np.int64)),
            cfg_pos=torch.from_numpy(remap[cfg_ids]),
            n=len(keep),
            record=rec,
            fmt=self._formats(rec, keep) if self.config.propagate_layout and rec.kind == "layout" else None,
            side=self._hints(rec, self.config) if self.config.hints else None,
        )

    @staticmethod
    def _hints(rec: GraphRecord, cfg: ModelConfig) -> Any:
        import torch

        from opgraph.perf import baselines

        h = baselines.config_hints(rec, fit=cfg.fit_hints) if cfg.fit_hints else baselines.config_hints(rec)
        if cfg.hint_set == "analytical" or cfg.hint_set == "estimate":
            h = h[:, : hint_dim(cfg)]
        if cfg.hint_norm != "global":
            h = h - h.mean(0)
        if cfg.hint_norm == "graph":
            sd = h.std(0)
            h = h / np.where(sd < 1e-9, 1.0, sd)
        return torch.from_numpy(h.astype(np.float32))

    @staticmethod
    def _formats(rec: GraphRecord, keep: np.ndarray) -> Any:
        import torch

        from opgraph.perf.baselines import LayoutGraphInfo
        from opgraph.perf.layout import decode_configs

        info = LayoutGraphInfo(rec)
        choices = decode_configs(rec.config_matrix())
        fmt = np.stack([info.propagate(c)[0][keep] + 1 for c in choices])
        return torch.from_numpy(fmt.astype(np.int64))

    def _ensure_net(self) -> None:
        import torch

        if self.net is None:
            torch.manual_seed(self.config.seed)
            self.net = _build_net(self.config)

    # -- training ----------------------------------------------------------------------------------------
    def fit(
        self,
        train: list[GraphRecord],
        valid: list[GraphRecord] | None = None,
        *,
        progress: bool = False,
    ) -> CostModel:
        """Train on ``train`` (graphs with runtimes); keep the weights with the best validation Kendall tau.

        Args:
            train: Training graphs (whole graphs; hold out others for validation).
            valid: Optional validation graphs for model selection.
            progress: Show a tqdm bar over epochs.

        Returns:
            ``self``.
        """
        import torch
        from tqdm.auto import tqdm

        from opgraph.perf.measure import apply_thread_settings

        if not train:
            raise PerfError("fit: no training graphs")
        apply_thread_settings()
        t0 = time.perf_counter()
        cfg = self.config
        if cfg.ensemble > 1:
            self.members = [
                CostModel(replace(cfg, seed=cfg.seed + i, ensemble=1)).fit(train, valid, progress=progress)
                for i in range(1, cfg.ensemble)
            ]
            self.config = replace(cfg, ensemble=1)
            try:
                self.fit(train, valid, progress=progress)
            finally:
                self.config = cfg
            self.train_s = time.perf_counter() - t0
            return self
        if not valid and cfg.early_stop_frac > 0 and len(train) >= 2:
            # early stopping on whole training graphs held out from fitting (never on the caller's test graphs)
            split = np.random.default_rng([cfg.seed, 7]).permutation(len(train))
            n_val = min(len(train) - 1, max(1, int(round(cfg.early_stop_frac * len(train)))))
            valid = [train[i] for i in sorted(split[:n_val])]
            train = [train[i] for i in sorted(split[n_val:])]
        self.normalizer = Normalizer.fit(train) if cfg.feat_norm else Normalizer(raw=True)
        self._ensure_net()
        if cfg.kind == "tile" and cfg.cfg_norm:
            z = _log_feat(np.concatenate([r.config_matrix().astype(np.float64) for r in train]))
            std = z.std(0)
            std[std < 1e-6] = 1.0
            self.net.cfg_mean.copy_(torch.from_numpy(z.mean(0)).float())
            self.net.cfg_std.copy_(torch.from_numpy(std).float())
        prepared = [self.prepare(r) for r in train]
        if cfg.hints:
            side = torch.cat([p.side for p in prepared]).double()
            std = side.std(0) if len(side) > 1 else torch.ones(side.shape[1], dtype=torch.float64)
            self.net.hint_std.copy_(torch.where(std < 1e-6, torch.ones_like(std), std).float())
            if cfg.hint_norm == "global":
                self.net.hint_mean.copy_(side.mean(0).float())
        targets = [torch.from_numpy(np.log(r.target_runtime())).float() for r in train]
        ranks = [np.argsort(np.argsort(r.target_runtime(), kind="stable"), kind="stable") for r in train]
        valid_prep = [self.prepare(r) for r in valid] if valid else []
        opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs))
        rng = np.random.default_rng(cfg.seed)
        best_tau, best_state = -np.inf, None
        for epoch in tqdm(range(cfg.epochs), disable=not progress, desc="train"):
            self.net.train()
            order = rng.permutation(len(prepared))
            losses = []
            for start in range(0, len(order), cfg.graphs_per_step):
                opt.zero_grad()
                total = 0.0
                for gi in order[start : start + cfg.graphs_per_step]:
                    p, y = prepared[gi], targets[gi]
                    idx = _sample_configs(rng, ranks[gi], cfg.configs_per_step, cfg.fast_sampling)
                    cf = torch.from_numpy(p.record.config_matrix(idx))
                    cost = self.net(
                        p, cf, None if p.fmt is None else p.fmt[idx], None if p.side is None else p.side[idx]
                    )
                    yy = y[idx]
                    loss = _loss(cfg, cost, yy)
                    if cfg.ndcg_weight > 0:
                        loss = loss + cfg.ndcg_weight * lambda_ndcg_loss(cost, yy, cfg.top_k)
                    if cfg.mse_weight > 0:
                        z = (yy - yy.mean()) / yy.std().clamp(min=1e-6)
                        loss = loss + cfg.mse_weight * ((cost - cost.mean()) - z).pow(2).mean()
                    (loss / cfg.graphs_per_step).backward()
                    total += float(loss.detach())
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
                opt.step()
                losses.append(total)
            sched.step()
            entry = {"epoch": epoch, "loss": float(np.mean(losses))}
            if valid_prep:
                tau = float(np.mean([self._tau(p) for p in valid_prep]))
                entry["valid_tau"] = tau
                if cfg.kind == "tile":
                    entry["valid_kaggle"] = float(np.mean([self._kaggle(p) for p in valid_prep]))
                if tau > best_tau:
                    best_tau = tau
                    best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            self.history.append(entry)
            log.debug("epoch %d %s", epoch, entry)
        if best_state is not None:
            self.net.load_state_dict(best_state)
        self.train_s = time.perf_counter() - t0
        return self

    def _tau(self, p: Prepared) -> float:
        from opgraph.perf.metrics import kendall_tau

        return kendall_tau(self._predict_prepared(p), p.record.target_runtime())

    def _kaggle(self, p: Prepared) -> float:
        from opgraph.perf.metrics import kaggle_tile_score

        return kaggle_tile_score(self._predict_prepared(p), p.record.target_runtime())

    # -- inference ---------------------------------------------------------------------------------------
    def _predict_prepared(self, p: Prepared, batch: int = 64) -> np.ndarray:
        import torch

        self.net.eval()
        out = []
        c = p.record.n_configs
        with torch.no_grad():
            for s in range(0, c, batch):
                idx = np.arange(s, min(c, s + batch))
                fmt = None if p.fmt is None else p.fmt[idx]
                side = None if p.side is None else p.side[idx]
                out.append(self.net(p, torch.from_numpy(p.record.config_matrix(idx)), fmt, side).numpy())
        return np.concatenate(out).astype(np.float64)

    def predict(self, record: GraphRecord, batch: int = 64) -> np.ndarray:
        """Predicted cost of every config of ``record`` (lower = faster; only the order is meaningful)."""
        if self.net is None:
            raise PerfError("predict: the model is not trained; call fit() or CostModel.load()")
        cost = self._predict_prepared(self.prepare(record), batch)
        if not self.members:
            return cost
        costs = [cost] + [m._predict_prepared(m.prepare(record), batch) for m in self.members]
        return np.mean([(c - c.mean()) / max(float(c.std()), 1e-12) for c in costs], axis=0)

    # -- persistence -------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The checkpoint dict (tensors and plain containers only): what :meth:`save` writes."""
        import torch

        if self.net is None:
            raise PerfError("save: the model is not trained")
        return {
            "format": MODEL_FORMAT,
            "feature_version": FEATURE_VERSION,
            "config": asdict(self.config),
            "state_dict": self.net.state_dict(),
            "norm_mean": torch.from_numpy(np.asarray(self.normalizer.mean)),
            "norm_std": torch.from_numpy(np.asarray(self.normalizer.std)),
            "history": self.history,
            "train_s": self.train_s,
            "model_type": "gnn",
            "selection": self.selection,
            "members": [
                {
                    "state_dict": m.net.state_dict(),
                    "norm_mean": torch.from_numpy(np.asarray(m.normalizer.mean)),
                    "norm_std": torch.from_numpy(np.asarray(m.normalizer.std)),
                }
                for m in self.members
            ],
        }

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint (weights, config, feature normalisation, feature version, selection) atomically."""
        import io

        import torch

        from opgraph._base.fileio import atomic_write

        buf = io.BytesIO()
        torch.save(self.state(), buf)
        return atomic_write(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> CostModel:
        """Read a checkpoint written by :meth:`save`.

        Raises:
            CheckpointError: missing or corrupt file, or one made with another feature version.
        """
        from opgraph._base.torchio import load_checkpoint
        from opgraph._base.zipcheck import verify_zip

        verify_zip(path, what="--model", error=CheckpointError)  # torch.load does not check CRC-32
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"--model {path}: no such checkpoint file")
        if _xgb_members(path) is not None:
            raise CheckpointError(
                f"--model {path}: holds a metaschedule-xgb model, not a GNN; load it with "
                "opgraph.perf.model.load_ranker"
            )
        # weights_only: tensors and plain containers only, so a crafted file cannot run code.
        ck = load_checkpoint(path, what="--model", error=CheckpointError)
        if not isinstance(ck, dict) or "feature_version" not in ck:
            raise CheckpointError(f"--model {path}: not an opgraph.perf checkpoint (no feature_version)")
        _check_version(ck, path)
        if ck.get("model_type", "gnn") != "gnn":
            raise CheckpointError(
                f"--model {path}: holds a {ck['model_type']} model, not a GNN; load it with "
                "opgraph.perf.model.load_ranker"
            )
        return cls.from_state(ck, path)

    @classmethod
    def from_state(cls, ck: dict[str, Any], path: str | Path) -> CostModel:
        """The model of a checkpoint dict written by :meth:`state` (``path`` names the file in errors)."""
        path = Path(path)
        try:
            m = cls(_model_config(ck["config"], path))
        except KeyError as exc:
            raise CheckpointError(f"--model {path}: GNN checkpoint without {exc}; retrain it") from None
        m.normalizer = Normalizer(_array(ck["norm_mean"]), _array(ck["norm_std"]), raw=not m.config.feat_norm)
        m._ensure_net()
        m.net.load_state_dict(ck["state_dict"])
        for mk in ck.get("members", []):
            sub = cls(replace(m.config, ensemble=1))
            sub.normalizer = Normalizer(_array(mk["norm_mean"]), _array(mk["norm_std"]), raw=not m.config.feat_norm)
            sub._ensure_net()
            sub.net.load_state_dict(mk["state_dict"])
            m.members.append(sub)
        m.history = list(ck.get("history", []))
        m.train_s = float(ck.get("train_s", 0.0))
        m.selection = dict(ck.get("selection", {}))
        return m

    def __repr__(self) -> str:
        state = "untrained" if self.net is None else f"trained {len(self.history)} epochs in {self.train_s:.1f}s"
        c = self.config
        return f"CostModel({c.kind}, SAGE {c.layers}x{c.hidden}, {c.loss}, {state})"


def _model_config(raw: Any, path: Path) -> ModelConfig:
    """The checkpoint's :class:`ModelConfig`; options it lacks (older files) take their defaults."""
    from dataclasses import fields

    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(raw) - known) if isinstance(raw, dict) else ["<not a dict>"]
    if unknown:
        raise CheckpointError(
            f"--model {path}: model options {', '.join(map(str, unknown))} are unknown to this opgraph (a newer "
            "version wrote it); upgrade opgraph or retrain it with `opgraph perf train`"
        )
    return ModelConfig(**{**_LEGACY, **raw})


def _check_version(ck: dict[str, Any], path: Path) -> None:
    if ck["feature_version"] != FEATURE_VERSION:
        raise CheckpointError(
            f"--model {path}: made with feature version {ck['feature_version']}, this opgraph uses "
            f"{FEATURE_VERSION}; retrain it with `opgraph perf train`"
        )


def save_lightgbm(model: Any, path: str | Path, *, selection: dict[str, Any] | None = None) -> Path:
    """Write a fitted :class:`~opgraph.perf.baselines.LightGBMBaseline` as an opgraph.perf checkpoint.

    The booster is stored in LightGBM's text format inside the same weights-only torch file as a GNN, with
    ``model_type="lightgbm"``, the space, the feature version and ``selection``; :func:`load_ranker` reads both.
    """
    import io

    import torch

    from opgraph._base.fileio import atomic_write

    if model.model is None:
        raise PerfError("save_lightgbm: the LightGBM model is not fitted")
    buf = io.BytesIO()
    torch.save(
        {
            "format": MODEL_FORMAT,
            "feature_version": FEATURE_VERSION,
            "model_type": "lightgbm",
            "kind": model.kind,
            "booster": model.to_string(),
            "selection": selection or {},
        },
        buf,
    )
    return atomic_write(path, buf.getvalue())


#: Members of a MetaSchedule XGBoost checkpoint (a zip archive; no pickle anywhere).
XGB_META, XGB_BOOSTER = "opgraph_perf.json", "booster.ubj"


def save_metaschedule_xgb(model: Any, path: str | Path, *, selection: dict[str, Any] | None = None) -> Path:
    """Write a fitted MetaSchedule XGBoost :class:`~opgraph.perf.baselines.MetaScheduleBaseline` as a checkpoint.

    The file is a zip archive of two members: ``booster.ubj`` (XGBoost's own UBJSON model format) and
    ``opgraph_perf.json`` (``model_type="metaschedule-xgb"``, the space, the feature versions, the TVM and XGBoost
    versions, ``selection``). It is built in memory and written with one atomic rename, so a reader sees the whole
    pair or the previous file, never one member without the other; :func:`load_ranker` reads it.
    """
    import io
    import zipfile

    import tvm
    import xgboost

    from opgraph._base.fileio import atomic_write
    from opgraph._base.jsonio import dumps
    from opgraph.perf.baselines import _MS_FEATURE_FORMAT, _MS_STORE_COLS

    if getattr(model, "model_kind", None) != "xgb" or model.model is None:
        raise PerfError("save_metaschedule_xgb: needs a fitted MetaScheduleBaseline('xgb')")
    meta = {
        "format": MODEL_FORMAT,
        "feature_version": FEATURE_VERSION,
        "model_type": "metaschedule-xgb",
        "kind": "tile",
        "ms_feature_format": _MS_FEATURE_FORMAT,
        "store_cols": _MS_STORE_COLS,
        "tvm": str(tvm.__version__),
        "xgboost": str(xgboost.__version__),
        "seed": int(model.seed),
        "n_rounds": int(model.model.n_rounds),
        "selection": selection or {},
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(XGB_META, dumps(meta))
        zf.writestr(XGB_BOOSTER, model.model.to_bytes())
    return atomic_write(path, buf.getvalue())


def _xgb_members(path: Path) -> dict[str, bytes] | None:
    """The members of a MetaSchedule XGBoost checkpoint, or None when ``path`` is not one (e.g. a torch file)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if XGB_META not in names:
                return None
            return {n: zf.read(n) for n in (XGB_META, XGB_BOOSTER) if n in names}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return None


def _load_metaschedule_xgb(path: Path, members: dict[str, bytes]) -> Any:
    import json

    from opgraph.perf.baselines import _MS_STORE_COLS, MetaScheduleBaseline, PackSumXGB

    try:
        meta = json.loads(members[XGB_META].decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"--model {path}: {XGB_META} is not valid JSON ({exc}); retrain it") from None
    if not isinstance(meta, dict) or meta.get("model_type") != "metaschedule-xgb":
        raise CheckpointError(f"--model {path}: {XGB_META} does not describe a metaschedule-xgb model; retrain it")
    _check_version(meta, path)
    if meta.get("store_cols") != _MS_STORE_COLS:
        raise CheckpointError(
            f"--model {path}: trained on {meta.get('store_cols')} MetaSchedule feature columns, this opgraph "
            f"extracts {_MS_STORE_COLS}; retrain it with `opgraph perf train`"
        )
    if XGB_BOOSTER not in members:
        raise CheckpointError(f"--model {path}: no {XGB_BOOSTER} member; restore or re-create the file")
    try:
        booster = PackSumXGB.from_bytes(members[XGB_BOOSTER])
    except PerfError:
        raise
    except Exception as exc:  # noqa: BLE001 - XGBoost's parse errors become one line naming the file
        msg = (str(exc).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(f"--model {path}: {XGB_BOOSTER} is not an XGBoost model ({msg}); retrain it") from None
    try:
        import tvm

        if str(tvm.__version__) != meta.get("tvm"):
            log.warning(
                "--model %s: trained with TVM %s, features now from TVM %s", path, meta.get("tvm"), tvm.__version__
            )
    except ImportError:
        pass
    m = MetaScheduleBaseline("xgb", seed=int(meta.get("seed", 0)))
    m.model = booster
    m.selection = dict(meta.get("selection", {}))
    return m


def load_ranker(path: str | Path) -> Any:
    """Load whatever ``opgraph perf train`` saved (:func:`save_ranker`): a model or an averaged ensemble.

    That is a :class:`CostModel`, a LightGBM or a MetaSchedule XGBoost ranker, or a
    :class:`~opgraph.perf.ensemble.RankAverage` of GNN, LightGBM and analytical members.

    All have ``kind``, ``predict(record)`` (lower = faster) and ``selection`` (the validation scores that chose
    them, empty when there was no choice).

    Raises:
        CheckpointError: missing, corrupt or foreign file, or another feature version.
    """
    from opgraph._base.torchio import load_checkpoint
    from opgraph._base.zipcheck import verify_zip

    verify_zip(path, what="--model", error=CheckpointError)
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"--model {path}: no such checkpoint file")
    xgb_members = _xgb_members(path)
    if xgb_members is not None:
        return _load_metaschedule_xgb(path, xgb_members)
    ck = load_checkpoint(path, what="--model", error=CheckpointError)
    if not isinstance(ck, dict) or "feature_version" not in ck:
        raise CheckpointError(f"--model {path}: not an opgraph.perf checkpoint (no feature_version)")
    _check_version(ck, path)
    if ck.get("model_type", "gnn") == "gnn":
        return CostModel.load(path)
    if ck["model_type"] == "ensemble":
        return _load_ensemble(ck, path)
    if ck["model_type"] != "lightgbm" or not isinstance(ck.get("booster"), str):
        raise CheckpointError(f"--model {path}: unknown model_type {ck.get('model_type')!r}")
    from opgraph.perf.baselines import LightGBMBaseline

    m = LightGBMBaseline.from_string(ck["booster"], str(ck.get("kind", "")))
    m.selection = dict(ck.get("selection", {}))
    return m


#: Member types an ensemble checkpoint may hold (what :func:`save_ranker` writes for each).
ENSEMBLE_MEMBER_TYPES = ("gnn", "lightgbm", "analytical")


def _member_state(name: str, model: Any) -> dict[str, Any]:
    from opgraph.perf.baselines import AnalyticalBaseline, LightGBMBaseline

    if isinstance(model, CostModel):
        return {"name": name, **model.state(), "selection": {}}
    if isinstance(model, LightGBMBaseline):
        if model.model is None:
            raise PerfError(f"save_ranker: ensemble member {name} (LightGBM) is not fitted")
        return {"name": name, "model_type": "lightgbm", "kind": model.kind, "booster": model.to_string()}
    if isinstance(model, AnalyticalBaseline):
        return {"name": name, "model_type": "analytical"}
    raise PerfError(
        f"save_ranker: ensemble member {name} is a {type(model).__name__}; an ensemble checkpoint holds "
        f"{', '.join(ENSEMBLE_MEMBER_TYPES)} members only"
    )


def save_ranker(model: Any, path: str | Path, *, selection: dict[str, Any] | None = None) -> Path:
    """Write any model ``opgraph perf train`` keeps, atomically, as one file :func:`load_ranker` reads.

    A GNN (:meth:`CostModel.save`), LightGBM (:func:`save_lightgbm`), MetaSchedule XGBoost
    (:func:`save_metaschedule_xgb`) or an averaged ensemble (:class:`~opgraph.perf.ensemble.RankAverage` of GNN,
    LightGBM and analytical members): one weights-only torch file with ``model_type="ensemble"`` and each member's
    own checkpoint dict (the GNN's tensors, LightGBM's model string; no pickle).
    """
    import io

    import torch

    from opgraph._base.fileio import atomic_write
    from opgraph.perf.baselines import LightGBMBaseline
    from opgraph.perf.ensemble import RankAverage

    sel = selection if selection is not None else dict(getattr(model, "selection", {}) or {})
    if isinstance(model, CostModel):
        model.selection = sel
        return model.save(path)
    if isinstance(model, LightGBMBaseline):
        return save_lightgbm(model, path, selection=sel)
    if getattr(model, "model_kind", None) == "xgb":
        return save_metaschedule_xgb(model, path, selection=sel)
    if not isinstance(model, RankAverage):
        raise PerfError(f"save_ranker: cannot save a {type(model).__name__}")
    buf = io.BytesIO()
    torch.save(
        {
            "format": MODEL_FORMAT,
            "feature_version": FEATURE_VERSION,
            "model_type": "ensemble",
            "kind": model.kind,
            "members": [_member_state(n, m) for n, m in zip(model.names, model.members, strict=True)],
            "selection": sel,
        },
        buf,
    )
    return atomic_write(path, buf.getvalue())


def _load_ensemble(ck: dict[str, Any], path: Path) -> Any:
    from opgraph.perf.baselines import AnalyticalBaseline, LightGBMBaseline
    from opgraph.perf.ensemble import RankAverage

    raw = ck.get("members")
    if not isinstance(raw, list) or not raw or not all(isinstance(mk, dict) for mk in raw):
        raise CheckpointError(f"--model {path}: ensemble checkpoint without members; retrain it")
    members, names = [], []
    for i, mk in enumerate(raw):
        mt = mk.get("model_type")
        if mt == "gnn":
            _check_version({"feature_version": mk.get("feature_version")}, path)
            members.append(CostModel.from_state(mk, path))
        elif mt == "lightgbm" and isinstance(mk.get("booster"), str):
            members.append(LightGBMBaseline.from_string(mk["booster"], str(mk.get("kind", ""))))
        elif mt == "analytical":
            members.append(AnalyticalBaseline())
        else:
            raise CheckpointError(
                f"--model {path}: ensemble member {i} has model_type {mt!r} (expected one of "
                f"{', '.join(ENSEMBLE_MEMBER_TYPES)}); retrain it"
            )
        names.append(str(mk.get("name", mt)))
    m = RankAverage(members, names)
    m.selection = dict(ck.get("selection", {}))
    return m
