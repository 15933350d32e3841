"""`edgefit predict`: one model at one precision on one device, from this host's calibrated ladder."""

from __future__ import annotations

import argparse

from rich.table import Table
from rich.text import Text

from edgefit import catalog, profiles
from edgefit.commands._common import (
    add_db_flag,
    add_json_flag,
    check_workload_flags,
    console,
    db_path,
    err_console,
    print_json,
)
from edgefit.commands.fit import SUSTAINED_PER_DEVICE, sustained_from_args
from edgefit.devicepower import SustainedFactor
from edgefit.errors import UsageError
from edgefit.predict import max_context_that_fits, predict
from edgefit.predict.prediction import Estimate, Prediction, prediction_to_dict
from edgefit.verdict import scale_decode


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="predict decode/prefill speed, memory and energy of a model on a device",
        description=(
            "Predict one model at one precision on one device by pricing its ops (as onnxruntime runs them) with "
            "this host's kernel table (measured first, ~40 s, when the database has none; `edgefit calibrate`), "
            "or with the device's own imported table when one is linked to it. Every figure says whether it was "
            "measured here, extrapolated from this host's kernels, measured on the device, or translated with a "
            "device's spec figures, with a prediction interval."
        ),
    )
    p.add_argument(
        "--model",
        required=True,
        help="catalog id, path to a card .toml, a HF config.json, or your own MODEL.onnx (any graph: its nodes are "
        "timed here as onnxruntime runs them, then translated to the device)",
    )
    p.add_argument(
        "--precision",
        default=None,
        help="fp32, fp16, int8, int4, or a GGUF type (q4_0, q4_k_m, ...); required for cards, not for a .onnx "
        "(it runs at the precision it was saved in)",
    )
    p.add_argument(
        "--shape",
        action="append",
        default=[],
        metavar="NAME=AxB",
        help="MODEL.onnx only: whole shape of an input, e.g. --shape x=1x3x640x640 (repeatable; defaults as "
        "`edgefit bench FILE`)",
    )
    p.add_argument("--dim", action="append", default=[], metavar="NAME=VALUE", help="MODEL.onnx only: a named dim")
    p.add_argument(
        "--input", action="append", default=[], metavar="NAME=VALUE", help="MODEL.onnx only: a scalar input's value"
    )
    p.add_argument("--device", required=True, help="device profile id or .toml path, or 'host' for this machine")
    p.add_argument("--context", type=int, default=2048, help="KV-cache depth in tokens (default 2048)")
    p.add_argument(
        "--prompt", type=int, default=None, help="prompt tokens for prefill (default 256, or --context if smaller)"
    )
    p.add_argument("--threads", type=int, default=None, help="threads (default: all cores of the device)")
    p.add_argument(
        "--sustained",
        nargs="?",
        const=SUSTAINED_PER_DEVICE,
        default=None,
        metavar="RATIO",
        help=(
            "decode speed once warm: scale predicted tok/s by the device's sustained/burst ratio from a "
            "`bench --sustained` run on it (this host, or a linked device's imported bundle), else 1.0 with a note; "
            "--sustained RATIO uses that ratio (0 < RATIO <= 1)"
        ),
    )
    add_json_flag(p)
    add_db_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if str(args.model).lower().endswith(".onnx"):
        return _run_graph(args)
    if args.shape or args.dim or args.input:
        raise UsageError("--shape, --dim and --input apply to a MODEL.onnx, not to a model card")
    if not args.precision:
        raise UsageError(f"--precision is required for {args.model}: one of fp32, fp16, int8, int4 or a GGUF type")
    check_workload_flags(args, default_prompt=256)  # the same check as `fit`
    sustained, ratio = sustained_from_args(args)  # the same --sustained as `fit`, checked before any work
    spec = catalog.load_spec(args.model)
    from edgefit import pipeline

    device_ref = None if args.device == "host" else profiles.get_profile(args.device)
    state = pipeline.host_state(
        db_path(args), devices=(device_ref,) if device_ref else (), progress=None,
        say=lambda m: err_console().print(m, markup=False, highlight=False),
    )  # fmt: skip
    host, cal = state.host, state.calibration
    device = device_ref or host
    pred = predict(
        spec, args.precision, device, cal, context_tokens=args.context, prompt_tokens=args.prompt, threads=args.threads
    )
    max_ctx = max_context_that_fits(spec, args.precision, device, cal, prompt_tokens=args.prompt)
    factor: SustainedFactor | None = None
    if sustained:
        from edgefit.devicepower import given_factor, load_facts

        if ratio is not None:
            factor = given_factor(ratio)
        else:
            factor = load_facts(db_path(args), state.fingerprint, host.id, [device.id])[device.id].sustained
        pred = scale_decode(pred, factor.factor)
    if args.json:
        out = prediction_to_dict(pred)
        out["max_context_that_fits_tokens"] = max_ctx
        out["fits_in_memory"] = pred.memory.total.value <= pred.memory.usable_ram_bytes
        out["sustained"] = factor.to_dict() if factor is not None else None
        print_json(out)
        return 0
    _print_human(pred, max_ctx)
    if factor is not None:
        console().print(
            f"sustained: decode x{factor.factor:.3g} ({factor.basis}): {factor.detail}", markup=False, highlight=False
        )
    return 0


def _interval(e: Estimate, scale: float, fmt: str) -> tuple[str, str, str]:
    return (fmt.format(e.value / scale), f"{fmt.format(e.low / scale)} .. {fmt.format(e.high / scale)}", e.basis.value)


def _print_human(pred: Prediction, max_ctx: int) -> None:
    c = console()
    c.print(
        Text.assemble(
            (pred.model_id, "bold"),
            f" {pred.precision} on ",
            (pred.device_id, "bold"),
            f" (context {pred.context_tokens}, prompt {pred.prompt_tokens}, {pred.threads} threads; decode is "
            f"{pred.bound}-bound)",
        )
    )
    t = Table(show_edge=False)
    t.add_column("figure", no_wrap=True)
    t.add_column("value", justify="right")
    t.add_column("interval", justify="right")
    t.add_column("basis")
    t.add_row("decode [tok/s]", *_interval(pred.decode_tokens_per_s, 1.0, "{:.2f}"))
    t.add_row("decode [ms/token]", *_interval(pred.decode_s_per_token, 1e-3, "{:.1f}"))
    t.add_row("prefill [s]", *_interval(pred.prefill_s, 1.0, "{:.2f}"))
    t.add_row("time to first token [s]", *_interval(pred.time_to_first_token_s, 1.0, "{:.2f}"))
    mem = pred.memory
    t.add_row("peak memory [GiB]", *_interval(mem.total, 2**30, "{:.2f}"))
    t.add_row("  weights as loaded [GiB]", f"{mem.weights_bytes / 2**30:.2f}", "", "")
    t.add_row("  KV cache [GiB]", f"{mem.kv_cache_bytes / 2**30:.2f}", "", "")
    t.add_row("  activations [GiB]", f"{mem.activations_bytes / 2**30:.2f}", "", "")
    t.add_row("  runtime [GiB]", f"{mem.runtime_bytes / 2**30:.2f}", "", "")
    t.add_row("usable RAM [GiB]", f"{mem.usable_ram_bytes / 2**30:.2f}", "", "spec")
    t.add_row("power [W]", *_interval(pred.power_w, 1.0, "{:.1f}"))
    t.add_row("energy [J/token]", *_interval(pred.energy_per_token_j, 1.0, "{:.3f}"))
    t.add_row("max context that fits [tokens]", str(max_ctx), "", "")
    c.print(t)
    fits = "fits" if mem.total.value <= mem.usable_ram_bytes else "does NOT fit"
    c.print(f"memory: {fits} in usable RAM")
    cal = pred.calibration
    c.print(
        f"calibration: kernel table of {cal.get('table_host_id')} ({cal.get('table_role')}), "
        f"{cal.get('calibration_precision')} kernels, {cal.get('regime')} weights; decode = fixed "
        f"{float(cal.get('decode_fixed_s', 0.0)) * 1e3:.2f} ms + memory "
        f"{float(cal.get('decode_memory_s', 0.0)) * 1e3:.2f} ms + compute "
        f"{float(cal.get('decode_compute_s', 0.0)) * 1e3:.2f} ms (memory/compute: the larger counts "
        f"per node); table noise {float(cal.get('table_noise_rel', 0.0)):.1%}",
        markup=False,
        highlight=False,
    )
    for n in pred.notes:
        c.print(f"note: {n}")
    for w in pred.warnings:
        c.print(f"warning: {w}")


def _run_graph(args: argparse.Namespace) -> int:
    """`predict --model MODEL.onnx`: time the graph's nodes here (edgefit.graphs), price them on the device."""
    from edgefit import pipeline
    from edgefit.commands.bench import _pairs, _shapes
    from edgefit.graphs.measure import profile_graph
    from edgefit.predict.graph import graph_prediction_to_dict, predict_graph

    if args.precision:
        raise UsageError(f"--precision does not apply to {args.model}: a .onnx runs at the precision it was saved in")
    if args.sustained is not None:
        raise UsageError("--sustained applies to decoder cards, not to a MODEL.onnx")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads {args.threads}: expected a positive integer")
    shapes, dims, scalars = _shapes(args.shape), _pairs(args.dim, "--dim", int), _pairs(args.input, "--input", float)
    device_ref = None if args.device == "host" else profiles.get_profile(args.device)
    say = err_console()

    def note(m: str) -> None:
        say.print(m, markup=False, highlight=False, soft_wrap=True)

    # every check of the file and flags runs before the (possibly measured) kernel table is loaded
    from edgefit.bench.campaign import check_shapes
    from edgefit.bench.modelfile import inspect_model_file

    check_shapes([inspect_model_file(args.model, hash_file=False)], shapes)
    state = pipeline.host_state(db_path(args), devices=(device_ref,) if device_ref else (), progress=None, say=note)
    device = device_ref or state.host
    if not args.json:
        note(f"timing the nodes of {args.model} on this host (single-node sessions, ~10-60 s)")
    prof = profile_graph(args.model, shapes=shapes, dims=dims, scalars=scalars, threads=args.threads)
    pred = predict_graph(prof, device, state.calibration, threads=args.threads)
    measured = [
        m for m in state.measurements if m.model_hash == prof.sha256_16 and m.phase.value == "run" and m.samples_s
    ]
    import statistics

    bench_note = None
    if measured:
        last = measured[-1]
        bench_note = (
            f"`edgefit bench` measured this file here: {statistics.median(last.samples_s) * 1e3:.3g} ms per "
            f"inference (median, run {last.run_id}; its input shapes may differ)"
        )
    if args.json:
        out = graph_prediction_to_dict(pred)
        out["bench_measured_here_s"] = statistics.median(measured[-1].samples_s) if measured else None
        print_json(out)
        return 0
    _print_graph(pred, bench_note)
    return 0


def _print_graph(pred: object, bench_note: str | None) -> None:
    from edgefit.predict.graph import GraphPrediction

    assert isinstance(pred, GraphPrediction)
    c = console()
    c.print(Text.assemble((pred.model_id, "bold"), " on ", (pred.device_id, "bold"),
                          f" ({pred.threads} threads, batch 1; {pred.bound}-bound)"))  # fmt: skip
    c.print(f"inputs: {'; '.join(pred.inputs)}", markup=False, highlight=False)
    t = Table(show_edge=False)
    t.add_column("figure", no_wrap=True)
    t.add_column("value", justify="right")
    t.add_column("interval", justify="right")
    t.add_column("basis")
    t.add_row("latency [ms/inference]", *_interval(pred.latency_s, 1e-3, "{:.3g}"))
    t.add_row("throughput [inferences/s]", *_interval(pred.throughput_per_s, 1.0, "{:.3g}"))
    mem = pred.memory
    t.add_row("peak memory [MiB]", *_interval(mem.total, 2**20, "{:.1f}"))
    t.add_row("  weights as loaded [MiB]", f"{mem.weights_bytes / 2**20:.1f}", "", "")
    t.add_row("  activations [MiB]", f"{mem.arena_bytes / 2**20:.1f}", "", "")
    t.add_row("  runtime [MiB]", f"{mem.runtime_bytes / 2**20:.1f}", "", "")
    t.add_row("usable RAM [MiB]", f"{mem.usable_ram_bytes / 2**20:.0f}", "", "spec")
    t.add_row("power [W]", *_interval(pred.power_w, 1.0, "{:.1f}"))
    t.add_row("energy [mJ/inference]", *_interval(pred.energy_per_inference_j, 1e-3, "{:.3g}"))
    c.print(t)
    c.print(f"memory: {'fits' if mem.fits else 'does NOT fit'} in usable RAM")
    total = sum(n.count * n.target_s for n in pred.nodes) or 1.0
    nt = Table(show_edge=False, title="slowest nodes (host time measured here, one session per node)")
    nt.add_column("op", no_wrap=True)
    nt.add_column("count", justify="right")
    nt.add_column("host [us]", justify="right")
    nt.add_column("device [us]", justify="right")
    nt.add_column("share", justify="right")
    nt.add_column("bound")
    for n in pred.nodes[:8]:
        nt.add_row(Text(n.op[-28:]), str(n.count), f"{n.host_s * 1e6:.1f}", f"{n.target_s * 1e6:.1f}",
                   f"{n.count * n.target_s / total:.0%}", n.bound)  # fmt: skip
    c.print(nt)
    c.print(f"timed here on the fly: {', '.join(pred.measured_on_the_fly)}", markup=False, highlight=False)
    if bench_note:
        c.print(bench_note, markup=False, highlight=False)
    for text in pred.notes:
        c.print(f"note: {text}", markup=False, highlight=False)
    for w in pred.warnings:
        c.print(f"warning: {w}", markup=False, highlight=False)
