"""One interpreter loop: walk the nodes in order and apply the caller's rule for each op."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opgraph.graph.errors import InterpretError, OpgraphError
from opgraph.graph.ir import Graph, Node

Rule = Callable[..., Any]


def _bind_inputs(graph: Graph, inputs: Sequence[Any] | Mapping[str, Any]) -> dict[int, Any]:
    if isinstance(inputs, Mapping):
        names = graph.input_names
        missing = [n for n in names if n not in inputs]
        if missing:
            raise InterpretError(f"inputs: missing value(s) for {missing}; the graph's inputs are {list(names)}")
        extra = sorted(set(inputs) - set(names))
        if extra:
            raise InterpretError(f"inputs: unknown name(s) {extra}; the graph's inputs are {list(names)}")
        return {i: inputs[n] for i, n in zip(graph.inputs, names, strict=True)}
    values = list(inputs)
    if len(values) != len(graph.inputs):
        raise InterpretError(
            f"inputs: expected {len(graph.inputs)} value(s) for {list(graph.input_names)}, got {len(values)}"
        )
    return dict(zip(graph.inputs, values, strict=True))


def interpret(
    graph: Graph,
    inputs: Sequence[Any] | Mapping[str, Any],
    rules: Mapping[str, Rule],
    *,
    on_node: Callable[[Node, Any], None] | None = None,
    after_node: Callable[[Node, Any], Any] | None = None,
) -> tuple[Any, ...]:
    """Evaluate ``graph`` on ``inputs`` with one rule per op.

    Args:
        graph: The graph to run.
        inputs: Values of the graph inputs, in order or by name.
        rules: ``{op: rule}``; ``rule(node, *input_values)`` returns the node's value. A ``"const"`` rule is
            optional (default: ``node.attrs["value"]``); ``"input"`` nodes take their value from ``inputs``.
        on_node: Called as ``on_node(node, value)`` after every node (for tracing, timing, annotation).
        after_node: Called as ``after_node(node, value)`` after every node (inputs included), before ``on_node``;
            what it returns *replaces* the node's value for every later consumer and for the outputs (return
            ``value`` to keep it). This is the one hook for systems that substitute a value once it is known, such
            as :mod:`opgraph.dcg` compressing a node's distribution. An error it raises is reported like a rule's.

    Returns:
        One value per graph output.

    Raises:
        InterpretError: A rule is missing, or a rule (or ``after_node``) raised; the message names the node, its op and the
            user's source line, and the original exception is chained.
    """
    env: dict[int, Any] = _bind_inputs(graph, inputs)
    last = graph.last_uses()
    frees: dict[int, list[int]] = {}
    for value_id, user in last.items():
        frees.setdefault(user, []).append(value_id)
    outputs = set(graph.outputs)
    for node in graph.nodes:
        if node.op == "input":
            value = env[node.id]
        else:
            rule = rules.get(node.op)
            if rule is None and node.op == "const":
                value = node.attrs.get("value")
            elif rule is None:
                raise InterpretError(
                    f"no rule for op {node.op!r} at {node.where}; this interpreter handles: {sorted(rules)}"
                )
            else:
                value = _call(node, rule, node, *(env[i] for i in node.inputs))
            env[node.id] = value
        if after_node is not None:
            value = env[node.id] = _call(node, after_node, node, value)
        if on_node is not None:
            on_node(node, value)
        for value_id in frees.get(node.id, ()):
            if value_id not in outputs:
                env.pop(value_id, None)
    return tuple(env[i] for i in graph.outputs)


def _call(node: Node, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, with any error re-raised as a user-facing one that names ``node``."""
    try:
        return fn(*args)
    except InterpretError:
        raise
    except OpgraphError as exc:
        raise _renamed(exc, f"while evaluating {node.where}: {exc}") from exc
    except Exception as exc:
        raise InterpretError(f"while evaluating {node.where}: {type(exc).__name__}: {exc}") from exc


def _renamed(exc: OpgraphError, message: str) -> OpgraphError:
    """The same kind of user-facing error with a message that names the node (InterpretError if it cannot)."""
    try:
        return type(exc)(message)
    except Exception:
        return InterpretError(message)
