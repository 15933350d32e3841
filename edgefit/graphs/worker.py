"""The graph worker: a user's .onnx as onnxruntime runs it, each distinct node timed in its own session.

    stdin : one JSON object {"path", "dims", "scalars", "shapes", "threads", "budget_s", "rounds_min",
            "rounds_max", "tmp_dir"}
    stdout: JSON lines: {"event": "progress", "message"}, then {"event": "result", "profile": GraphProfile dict}
            or {"event": "error", "kind", "message"}

```
 file ──session (edgefit's bench settings, ORT_ENABLE_ALL)──> optimized-model dump (what onnxruntime runs:
   fused Conv+activation, NCHWc layouts, constant-folded shape arithmetic, ...)
   └─ one run of the dump with every intermediate tensor as an output: each tensor's real value and shape
 per node of the dump, grouped by (op, attributes, input shapes):
   a single-node model: the node's initializers as initializers, its other inputs bound (I/O binding) to the
   real values the whole graph computed (a Reshape gets its real shape, a Gather its real indices), its outputs
   left to onnxruntime's allocator (bound, not copied out: allocated per run as a graph's intermediates are),
   graph optimizations off (the node is already optimized); all sessions share one thread pool of ``threads``,
   as the nodes of one session do (a pool per session left the previous node's threads spinning on the cores
   the next node needed: PP-OCRv4 det summed to 2x its whole-graph time)
 interleaved rounds (order shuffled each round): every session run once (its "cold" time, after the other
 nodes), then 3x back to back, the fastest kept; the whole file runs in the same rounds (``whole_s``: lower
 quartile and median of its first runs, median of all its back-to-back runs, as `edgefit bench FILE` reports it),
 so the sum of the nodes is checked against the graph under the same drift; the node's time is the minimum over
 rounds minus an empty session's bound run less one no-work node's dispatch (measured as a chain of Neg nodes),
 in the same rounds
 arena: peak of the bytes of live intermediate tensors, walking the nodes in the dump's (execution) order
```
Run as ``python -I -m edgefit.graphs.worker`` (isolated: nothing is imported from the caller's folder).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

import numpy as np

REPS_PER_ROUND = 3
MAX_INLINE_PASSES = 4
GLOBAL_POOL = True
CHAIN_EXTRA = 8  # extra Neg nodes of the chain that times one node's dispatch


class GraphRunError(Exception):
    """The model cannot run with the inputs given (reported to the parent as a one-line UsageError)."""


def _emit(out: TextIO, event: dict[str, Any]) -> None:
    out.write(json.dumps(event) + "\n")
    out.flush()


# --------------------------------------------------------------------------------------------- graph facts


def _outer_refs(node: Any) -> list[str]:
    """Names a node's subgraphs (If/Loop/Scan bodies) read from the enclosing graph."""
    out: list[str] = []
    from onnx import AttributeProto

    for attr in node.attribute:
        graphs = [attr.g] if attr.type == AttributeProto.GRAPH else list(attr.graphs)
        for g in graphs:
            if not g.node:
                continue
            defined = {i.name for i in g.input} | {t.name for t in g.initializer}
            for n in g.node:
                defined.update(o for o in n.output if o)
            for n in g.node:
                for name in list(n.input) + _outer_refs(n):
                    if name and name not in defined and name not in out:
                        out.append(name)
    return out


def _prod(shape: tuple[int, ...] | list[int]) -> int:
    return int(math.prod(int(d) for d in shape))


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def node_macs(node: Any, in_shapes: list[tuple[int, ...] | None], out_shapes: list[tuple[int, ...] | None]) -> int:
    """Multiply-accumulates of one node from its input and output shapes (0 for ops that move or map values)."""
    op = node.op_type
    out0 = out_shapes[0] if out_shapes else None
    if out0 is None:
        return 0
    n_out = _prod(out0)

    def shape(i: int) -> tuple[int, ...] | None:
        return in_shapes[i] if i < len(in_shapes) else None

    if op in ("Conv", "FusedConv", "ConvInteger", "QLinearConv", "NhwcFusedConv"):
        w = shape(3 if op == "QLinearConv" else 1)
        return n_out * _prod(w[1:]) if w else 0
    if op == "ConvTranspose":
        x, w = shape(0), shape(1)
        return _prod(x) * _prod(w[1:]) if x and w else 0
    if op in ("MatMul", "FusedMatMul", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul"):
        a = shape(0)
        if not a:
            return 0
        k = a[-2] if op == "FusedMatMul" and _attr(node, "transA", 0) and len(a) >= 2 else a[-1]
        return n_out * int(k)
    if op == "QLinearMatMul":
        a = shape(0)
        return n_out * int(a[-1]) if a else 0
    if op in ("Gemm", "QGemm"):
        a = shape(0)
        if not a or len(a) != 2:
            return 0
        return n_out * int(a[0] if _attr(node, "transA", 0) else a[1])
    if op == "MatMulNBits":
        return n_out * int(_attr(node, "K", 0))
    if op in ("LSTM", "GRU", "RNN"):
        x, w, r = shape(0), shape(1), shape(2)
        if not x or not w or not r:
            return 0
        seq, batch = int(x[0]), int(x[1])
        return seq * batch * _prod(w) // max(int(w[2]), 1) * (int(w[2]) + int(r[2]))
    if op in ("Attention", "MultiHeadAttention", "GroupQueryAttention"):
        q = shape(0)
        return 2 * _prod(q) * int(q[-2]) if q and len(q) >= 2 else 0
    return 0


# --------------------------------------------------------------------------------------------- the run


def _session(ort: Any, model: Any, threads: int, *, optimize: bool) -> Any:
    from edgefit.bench.runner import session_options

    so = session_options(threads)
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if GLOBAL_POOL:
        # every session on one thread pool, as the nodes of one graph are: per-session pools (2 threads each, 100+
        # sessions) would leave the previous node's threads spinning on the cores the next node needs
        so.use_per_session_threads = False
    blob = model if isinstance(model, (str, bytes)) else model.SerializeToString()
    return ort.InferenceSession(blob, so, providers=["CPUExecutionProvider"])


def _optimized(
    ort: Any, path: Path, feeds: dict[str, np.ndarray], threads: int, tmp: Path, hint: str
) -> tuple[Any, tuple[int, int]]:
    """The optimized graph, and the RSS growth (bytes) of loading the file and of its first two runs."""
    import onnx

    from edgefit.bench.runner import session_options

    so = session_options(threads)
    so.use_per_session_threads = not GLOBAL_POOL
    opt_path = tmp / "optimized.onnx"
    so.optimized_model_filepath = str(opt_path)
    so.add_session_config_entry("session.optimized_model_external_initializers_file_name", "optimized.data")
    so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1048576")
    rss = [_rss_bytes()]
    try:
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise GraphRunError(f"onnxruntime cannot load it: {_first_line(exc)}") from None
    rss.append(_rss_bytes())
    try:
        sess.run(None, feeds)
        sess.run(None, feeds)
    except Exception as exc:
        raise GraphRunError(f"inference failed ({_first_line(exc)}) with inputs {hint}") from None
    rss.append(_rss_bytes())
    del sess
    return onnx.load(str(opt_path)), (rss[1] - rss[0], rss[2] - rss[1])


def _rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[-1] if text else type(exc).__name__
    return line[:300]


def _values(ort: Any, opt: Any, feeds: dict[str, np.ndarray], threads: int, tmp: Path) -> dict[str, np.ndarray]:
    """Every tensor the optimized graph computes, from one run with all of them as outputs."""
    import onnx

    probe = onnx.ModelProto()
    probe.CopyFrom(opt)
    have = {o.name for o in probe.graph.output}
    for n in probe.graph.node:
        for o in n.output:
            if o and o not in have:
                probe.graph.output.append(onnx.ValueInfoProto(name=o))
                have.add(o)
    path = tmp / "probe.onnx"
    onnx.save_model(
        probe,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="probe.data",
        size_threshold=1 << 20,
    )
    del probe
    sess = _session(ort, str(path), threads, optimize=False)
    names = [o.name for o in sess.get_outputs()]
    outs = sess.run(None, feeds)
    values = {n: v for n, v in zip(names, outs, strict=True) if isinstance(v, np.ndarray)}
    values.update(feeds)
    return values


def inline_taken_branches(opt: Any, values: dict[str, np.ndarray]) -> int:
    """Replace every top-level If whose condition this run computed by the branch it took (onnxruntime runs only
    that branch): its nodes and initializers join the graph, an Identity maps each branch output to the If's
    output. Returns how many were inlined (nested Ifs surface at the top and are inlined on the next pass)."""
    from onnx import helper

    done = 0
    new_nodes = []
    for node in opt.graph.node:
        cond = values.get(node.input[0]) if node.op_type == "If" and not node.domain and node.input else None
        if cond is None or cond.size != 1:
            new_nodes.append(node)
            continue
        branch = next(
            helper.get_attribute_value(a)
            for a in node.attribute
            if a.name == ("then_branch" if bool(cond.reshape(-1)[0]) else "else_branch")
        )
        new_nodes.extend(branch.node)
        opt.graph.initializer.extend(branch.initializer)
        for src, dst in zip(branch.output, node.output, strict=False):
            if dst:
                new_nodes.append(helper.make_node("Identity", [src.name], [dst], name=f"{dst}_edgefit_inlined"))
        done += 1
    if done:
        del opt.graph.node[:]
        opt.graph.node.extend(new_nodes)
    return done


def arena_bytes(opt: Any, values: dict[str, np.ndarray]) -> int:
    """Peak bytes of live intermediate tensors, walking the nodes in order (a tensor lives from the node that
    makes it to the last node that reads it; graph outputs to the end)."""
    nodes = list(opt.graph.node)
    last: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for name in list(n.input) + _outer_refs(n):
            if name:
                last[name] = i
    end = len(nodes)
    for o in opt.graph.output:
        last[o.name] = end
    live = peak = 0
    frees: dict[int, int] = {}
    for i, n in enumerate(nodes):
        for o in n.output:
            if o and o in values:
                size = int(values[o].nbytes)
                live += size
                frees[last.get(o, i)] = frees.get(last.get(o, i), 0) + size
        peak = max(peak, live)
        live -= frees.pop(i, 0)
    return peak


def _dtype_code(arr: np.ndarray) -> int:
    from onnx import helper

    return int(helper.np_dtype_to_tensor_dtype(arr.dtype))


class _NodeRun:
    """A single-node session ready to run: I/O bound once, run many times."""

    def __init__(self, ort: Any, model: Any, feeds: dict[str, np.ndarray], outs: dict[str, np.ndarray], threads: int):
        self.sess = _session(ort, model, threads, optimize=False)
        self.feeds = feeds
        self.bound = True
        try:
            b = self.sess.io_binding()
            self._keep = []
            for name, arr in feeds.items():
                v = ort.OrtValue.ortvalue_from_numpy(arr)
                self._keep.append(v)
                b.bind_ortvalue_input(name, v)
            for name in outs:
                # allocated by onnxruntime on every run, from the session's arena, as a graph's intermediates are
                b.bind_output(name, "cpu")
            self.binding = b
            self.sess.run_with_iobinding(b)
        except Exception:  # strings, sequences, odd outputs: a plain run (its output copy is timed too)
            self.bound = False
            self.sess.run(None, feeds)

    def __call__(self) -> None:
        if self.bound:
            self.sess.run_with_iobinding(self.binding)
        else:
            self.sess.run(None, self.feeds)


class _WholeRun:
    """The file as one session (edgefit's bench settings, on the shared pool), fed as ``edgefit bench`` feeds it."""

    bound = False

    def __init__(self, sess: Any, feeds: dict[str, np.ndarray]) -> None:
        self.sess, self.feeds = sess, feeds
        sess.run(None, feeds)

    def __call__(self) -> None:
        self.sess.run(None, self.feeds)


def _node_model(opt: Any, node: Any, var_in: list[str], const_in: list[str], values: dict[str, np.ndarray]) -> Any:
    from onnx import helper

    inits = {t.name: t for t in opt.graph.initializer}
    graph = helper.make_graph(
        [node],
        "edgefit_node",
        [helper.make_tensor_value_info(n, _dtype_code(values[n]), list(values[n].shape)) for n in var_in],
        [helper.make_tensor_value_info(o, _dtype_code(values[o]), list(values[o].shape)) for o in node.output if o],
        initializer=[inits[n] for n in const_in],
    )
    return helper.make_model(graph, opset_imports=list(opt.opset_import), ir_version=opt.ir_version)


def _empty_model(nodes: int = 1) -> Any:
    """A chain of ``nodes`` Neg nodes on one float: 1 node is a session run; the difference to a longer chain is
    what one node that does no work costs (its dispatch), which every real node pays too."""
    from onnx import TensorProto, helper

    chain = [helper.make_node("Neg", [f"t{i}"], [f"t{i + 1}"]) for i in range(nodes)]
    g = helper.make_graph(
        chain,
        "edgefit_empty",
        [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info(f"t{nodes}", TensorProto.FLOAT, [1])],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def _if_model() -> Any:
    """One If on a bool input whose branches pass a float through: what running a branch costs beyond its nodes."""
    from onnx import TensorProto, helper

    def branch(name: str) -> Any:
        return helper.make_graph(
            [helper.make_node("Identity", ["t0"], [f"{name}_y"])],
            name,
            [],
            [helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, [1])],
        )

    node = helper.make_node("If", ["c"], ["t1"], then_branch=branch("then"), else_branch=branch("else"))
    g = helper.make_graph(
        [node],
        "edgefit_if",
        [
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor_value_info("t1", TensorProto.FLOAT, [1])],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def _split_half(samples: list[float]) -> float:
    if len(samples) < 4:
        return 0.0
    h = len(samples) // 2
    a, b = min(samples[:h]), min(samples[h:])
    return abs(a - b) / max(min(a, b), 1e-12)


def run(job: dict[str, Any], out: TextIO) -> None:
    import onnxruntime as ort

    from edgefit import memory
    from edgefit.bench.feeds import FeedSpec, failure_hint, image_size_alternatives, plan_inputs, synthesize
    from edgefit.bench.modelfile import inspect_model_file
    from edgefit.graphs.profile import INTEGER_OPS, GraphProfile, NodeCost

    ort.set_default_logger_severity(3)
    path = Path(job["path"])
    threads = int(job["threads"])
    if GLOBAL_POOL:
        from onnxruntime.capi import _pybind_state

        _pybind_state.set_global_thread_pool_sizes(threads, 1)  # before any session: see _session
    tmp = Path(job["tmp_dir"])
    info = inspect_model_file(path, hash_file=False)
    spec = FeedSpec(
        dims={k: int(v) for k, v in job.get("dims", {}).items()},
        scalars={k: float(v) for k, v in job.get("scalars", {}).items()},
        shapes={k: tuple(int(d) for d in v) for k, v in job.get("shapes", {}).items()},
    )
    _emit(out, {"event": "progress", "message": "optimizing the graph as onnxruntime runs it"})
    tried = None
    for candidate in (spec, *image_size_alternatives(info, spec)):  # as `edgefit bench FILE` retries image sizes
        feeds = synthesize(info, candidate)
        hint = failure_hint(info, candidate, {k: tuple(v.shape) for k, v in feeds.items()})
        try:
            opt, (load_growth, run_growth) = _optimized(ort, path, feeds, threads, tmp, hint)
        except GraphRunError as exc:
            tried = tried or exc  # the default's message: it names the flag that fixes it
            if "inference failed" not in str(exc):
                raise
            continue
        spec = candidate
        break
    else:
        assert tried is not None
        raise tried
    values = _values(ort, opt, feeds, threads, tmp)
    inlined = 0
    for _ in range(MAX_INLINE_PASSES):
        n = inline_taken_branches(opt, values)
        if not n:
            break
        inlined += n
        values = _values(ort, opt, feeds, threads, tmp)
    value_bytes = sum(int(v.nbytes) for v in values.values())
    inits = {t.name: t for t in opt.graph.initializer}
    from onnx import helper

    init_bytes = {n: _prod(t.dims) * helper.tensor_dtype_to_np_dtype(t.data_type).itemsize for n, t in inits.items()}
    weights = sum(init_bytes.values())
    # single-node sessions hold the weights again and a copy of every activation (preallocated outputs)
    memory.check_fits(weights + value_bytes, f"{path.name}: timing its nodes one by one")
    arena = arena_bytes(opt, values)

    # group identical nodes (same op, attributes, input shapes and dtypes)
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    skipped: list[str] = []
    for node in opt.graph.node:
        ins = [n for n in node.input if n]
        refs = [n for n in _outer_refs(node) if n not in ins]
        const_in = list(dict.fromkeys(n for n in ins + refs if n in inits))
        var_in = list(dict.fromkeys(n for n in ins + refs if n not in inits))
        outs = [o for o in node.output if o]
        if any(n not in values for n in var_in + outs):
            skipped.append(node.op_type)
            continue

        def desc(n: str) -> tuple[Any, ...]:
            if not n:
                return ()
            if n in inits:
                return ("c", tuple(inits[n].dims), inits[n].data_type)
            return ("v", tuple(values[n].shape), str(values[n].dtype))

        attrs = b"".join(a.SerializeToString() for a in node.attribute)
        key = (node.domain, node.op_type, attrs, tuple(desc(n) for n in node.input), tuple(desc(n) for n in refs))
        g = groups.get(key)
        if g is not None:
            g["count"] += 1
            continue
        in_shapes: list[tuple[int, ...] | None] = [
            (tuple(inits[n].dims) if n in inits else tuple(values[n].shape)) if n else None for n in node.input
        ]
        out_shapes: list[tuple[int, ...] | None] = [tuple(values[o].shape) if o else None for o in node.output]
        w_bytes = sum(init_bytes[n] for n in const_in)
        a_bytes = sum(int(values[n].nbytes) for n in var_in) + sum(int(values[o].nbytes) for o in outs)
        groups[key] = {
            "node": node,
            "var_in": var_in,
            "const_in": const_in,
            "outs": outs,
            "count": 1,
            "op": f"{node.domain}:{node.op_type}" if node.domain and node.domain != "ai.onnx" else node.op_type,
            "shapes": ",".join("x".join(str(d) for d in s) if s is not None else "-" for s in in_shapes),
            "weight_bytes": w_bytes,
            "activation_bytes": a_bytes,
            "macs": node_macs(node, in_shapes, out_shapes),
            "elements": sum(_prod(values[o].shape) for o in outs),
            "integer": node.op_type in INTEGER_OPS,
        }
    _emit(out, {"event": "progress", "message": f"building {len(groups)} single-node sessions"})
    runs: list[tuple[tuple[Any, ...], _NodeRun]] = []
    alone: list[str] = []
    untimed: list[tuple[Any, ...]] = []
    for key, g in groups.items():
        model = _node_model(opt, g["node"], g["var_in"], g["const_in"], values)
        try:
            r = _NodeRun(ort, model, {n: values[n] for n in g["var_in"]}, {o: values[o] for o in g["outs"]}, threads)
        except Exception:  # e.g. an If whose branch needs shape facts only the whole graph has
            alone.append(f"{g['op']} x{g['count']}")
            untimed.append(key)
            continue
        runs.append((key, r))
    x1 = {"t0": np.ones(1, dtype=np.float32)}

    def empty(n: int) -> _NodeRun:
        return _NodeRun(ort, _empty_model(n), x1, {f"t{n}": np.ones(1, dtype=np.float32)}, threads)

    empty_plain = empty(1)
    empty_plain.bound = False
    everything: list[tuple[Any, _NodeRun | _WholeRun]] = [
        *runs,
        ("empty_bound", empty(1)),
        ("empty_plain", empty_plain),
        ("chain_bound", empty(1 + CHAIN_EXTRA)),
    ]
    whole = _WholeRun(_session(ort, str(path), threads, optimize=True), feeds)
    everything.append(("whole", whole))  # the file itself in the same rounds: the nodes' sum is checked against it
    if inlined:
        if_feeds = {"c": np.array(True), "t0": np.ones(1, dtype=np.float32)}
        everything.append(("if", _NodeRun(ort, _if_model(), if_feeds, {"t1": np.ones(1, dtype=np.float32)}, threads)))
    samples: dict[Any, list[float]] = {k: [] for k, _ in everything}
    whole_reps: list[float] = []  # every back-to-back run of the whole file
    cold: dict[Any, list[float]] = {k: [] for k, _ in everything}
    rng = np.random.default_rng(0)
    perf = time.perf_counter
    rounds, t0 = 0, perf()
    budget_s = float(job["budget_s"])
    rounds_min, rounds_max = int(job["rounds_min"]), int(job["rounds_max"])
    while rounds < rounds_max and (rounds < rounds_min or perf() - t0 < budget_s):
        for idx in rng.permutation(len(everything)):
            key, r = everything[idx]
            a = perf()
            r()  # after the other nodes ran: its weights come from further away (the cold run)
            cold[key].append(perf() - a)
            best = math.inf
            for _ in range(REPS_PER_ROUND):
                a = perf()
                r()
                t = perf() - a
                best = min(best, t)
                if key == "whole":
                    whole_reps.append(t)
            samples[key].append(best)
        rounds += 1
        if rounds % 5 == 0:
            _emit(out, {"event": "progress", "message": f"timing nodes: round {rounds} ({perf() - t0:.0f} s)"})
    dispatch_s = max(min(samples["chain_bound"]) - min(samples["empty_bound"]), 0.0) / CHAIN_EXTRA
    # what a session run costs beyond its one node: subtracted from each single-node time, which keeps its node's
    # own dispatch (a real graph pays it per node)
    bound_s = min(samples["empty_bound"]) - dispatch_s
    plain_s = min(samples["empty_plain"]) - dispatch_s
    node_s = {key: max(min(samples[key]) - (bound_s if r.bound else plain_s), 0.0) for key, r in runs}
    node_s.update(dict.fromkeys(untimed, dispatch_s))
    cold_s = {key: max(min(cold[key]) - (bound_s if r.bound else plain_s), node_s[key]) for key, r in runs}
    cold_s.update(dict.fromkeys(untimed, dispatch_s))
    nodes = []
    for key, g in groups.items():
        nodes.append(
            NodeCost(
                op=g["op"],
                count=g["count"],
                shapes=g["shapes"],
                weight_bytes=g["weight_bytes"],
                activation_bytes=g["activation_bytes"],
                macs=g["macs"],
                elements=g["elements"],
                host_s=node_s[key],
                integer=g["integer"],
                cold_s=cold_s[key],
            )
        )
    if inlined:  # each inlined If still costs its branch's start-up in the real graph
        if_s = max(min(samples["if"]) - bound_s - dispatch_s, 0.0)  # less the branch's Identity
        nodes.append(NodeCost("If (running a branch)", inlined, "", 0, 0, 0, 0, if_s))
    whole_cold = sorted(cold["whole"])
    whole_s = (whole_cold[(len(whole_cold) - 1) // 4], float(statistics.median(whole_cold)),
               float(statistics.median(whole_reps)))  # fmt: skip
    noise = statistics.median([_split_half(samples[k]) for k, _ in runs]) if runs else 0.0
    notes = []
    if inlined:
        notes.append(f"{inlined} If nodes replaced by the branch this input takes (onnxruntime runs only that one)")
    if alone:
        notes.append(f"not timed (cannot run as a single node; priced as one empty node each): {', '.join(alone)}")
    if skipped:
        notes.append(f"{len(skipped)} nodes not timed (non-tensor values): {', '.join(sorted(set(skipped)))}")
    loops = sorted({g["node"].op_type for g in groups.values() if g["node"].op_type in ("If", "Loop", "Scan")})
    if loops:
        notes.append(f"control flow ({', '.join(loops)}): each such node is timed whole, its subgraphs included")
    inputs = tuple(p.text for p in plan_inputs(info, spec))
    profile = GraphProfile(
        model_id=f"file:{path.name}",
        path=str(path),
        sha256_16="",
        inputs=inputs,
        nodes=tuple(nodes),
        node_count=len(opt.graph.node),
        file_node_count=info.node_count,
        run_s=plain_s,
        weights_bytes=weights,
        arena_bytes=arena,
        load_rss_bytes=max(load_growth, 0),
        run_rss_bytes=max(run_growth, 0),
        rounds=rounds,
        threads=threads,
        noise_rel=float(noise),
        dispatch_s=dispatch_s,
        notes=tuple(notes),
        whole_s=whole_s,
    )
    _emit(out, {"event": "result", "profile": profile.to_dict()})


def main() -> int:
    try:
        job = json.loads(sys.stdin.readline())
        run(job, sys.stdout)
    except GraphRunError as exc:
        _emit(sys.stdout, {"event": "error", "kind": "usage", "message": str(exc)})
        return 1
    except Exception as exc:  # reported to the parent, which raises a one-line error
        from edgefit.errors import EdgefitError

        kind = type(exc).__name__ if isinstance(exc, EdgefitError) else "internal"
        _emit(
            sys.stdout,
            {
                "event": "error",
                "kind": kind,
                "message": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc(),
            },
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
