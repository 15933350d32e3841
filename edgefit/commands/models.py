"""`edgefit models list|show|build`: the model catalog, its accounting, and the ONNX builder.

list                 every built-in card: params, weight bytes at fp32/int8/int4, KV cache per 1k tokens
show REF             one model (catalog id, card .toml or HF config.json): params per part, bytes for every
                     precision, KV cache, FLOPs per token, sources
build REF -p P       a runnable ONNX decoder with random weights (edgefit.onnxbuild.build_model)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgefit import catalog
from edgefit.catalog import ModelSpec, Precision
from edgefit.commands._common import add_json_flag, check_output_file, console, id_arg, print_json
from edgefit.commands._tables import Col, fitted_table, left_out_note
from edgefit.errors import BuildError, UsageError
from edgefit.units import GIB, MIB

_LIST_PRECISIONS = ("fp32", "int8", "int4")
_SHOW_CONTEXTS = (1, 1024, 8192)  # tokens: FLOPs per decoded token at these contexts
_KV_TOKENS = 1024


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="model catalog: list, show accounting, build ONNX decoders",
        description="Architecture cards of real models with exact parameter, byte, KV-cache and FLOP accounting; "
        "builds runnable ONNX decoders with random weights. REF is a catalog id, a card .toml, or a Hugging Face "
        "config.json (or its folder).",
    )
    p.set_defaults(func=_no_action, models_parser=p)
    actions = p.add_subparsers(dest="models_action", metavar="ACTION")

    ls = actions.add_parser("list", help="built-in models: params, weight bytes at fp32/int8/int4, KV per 1k tokens")
    add_json_flag(ls)
    ls.set_defaults(func=run)

    show = actions.add_parser("show", help="one model: params per part, bytes per precision, KV, FLOPs, sources")
    show.add_argument("ref", metavar="REF", help="catalog id, card .toml, or HF config.json")
    _add_ref_options(show)
    show.add_argument(
        "--block-size", type=int, default=32, help="int8/int4 quantization block (MatMulNBits; default 32)"
    )
    add_json_flag(show)
    show.set_defaults(func=run)

    build = actions.add_parser("build", help="build a runnable ONNX decoder (random weights) into the cache dir")
    build.add_argument("ref", metavar="REF", help="catalog id, card .toml, or HF config.json")
    build.add_argument("--precision", "-p", required=True, help="fp32, fp16, int8 or int4")
    _add_ref_options(build)
    build.add_argument("--out", type=Path, default=None, help="output .onnx path (default: under the cache dir)")
    build.add_argument("--seed", type=int, default=0, help="random-weight seed (default 0)")
    build.add_argument("--block-size", type=int, default=32, help="int8/int4 quantization block (default 32)")
    add_json_flag(build)
    build.set_defaults(func=run)


def _add_ref_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layers", type=int, default=None, help="keep only the first N layers (same width)")
    p.add_argument(
        "--id", dest="model_id", type=id_arg, default=None, help="model id for a config.json (default: its folder name)"
    )


def _console() -> Console:
    """A pipe gets rich's 80 columns by default, too narrow for these tables; a terminal keeps its own width."""
    out = console()
    if not out.is_terminal:
        out.width = max(out.width, 120)
    return out


def _no_action(args: argparse.Namespace) -> int:
    args.models_parser.print_help()
    return 2


def run(args: argparse.Namespace) -> int:
    action = args.models_action
    if action == "list":
        return _list(args)
    if action == "show":
        return _show(args)
    if action == "build":
        return _build(args)
    raise UsageError(f"unknown models action {action!r}; valid: list, show, build")  # argparse prevents this


def _resolve(args: argparse.Namespace) -> ModelSpec:
    spec = catalog.load_spec(args.ref, model_id=args.model_id)
    return catalog.truncated(spec, args.layers) if args.layers is not None else spec


# --- list ---------------------------------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    specs = catalog.list_specs()
    rows = [_list_row(s) for s in specs]
    if args.json:
        print_json({"models": rows})
        return 0
    cols = (
        Col("id", keep=100),
        Col("family", keep=20),
        Col("params [B]", "right", keep=90),
        Col("open weights", "center", keep=30),
        Col("fp32 [GiB]", "right", keep=60),
        Col("int8 [GiB]", "right", keep=80),
        Col("int4 [GiB]", "right", keep=70),
        Col("KV / 1k tok [MiB]", "right", keep=50),
    )
    cells = [
        (
            r["id"],
            r["family"],
            f"{r['params'] / 1e9:.3f}" + ("*" if not r["open_weights"] else ""),
            "yes" if r["open_weights"] else "no",
            *(f"{r['weight_bytes'][p] / GIB:.2f}" for p in _LIST_PRECISIONS),
            f"{r['kv_cache_bytes_per_1k_tokens'] / MIB:.1f}",
        )
        for r in rows
    ]
    out = _console()
    title = "edgefit model catalog (weights: file bytes as edgefit builds them; KV cache fp32)"
    table, dropped = fitted_table(cols, cells, out.width, title=title)
    out.print(table)
    if note := left_out_note(dropped, out.width):
        out.print(note)
    if any(not r["open_weights"] for r in rows):
        out.print("* closed weights: size is an outside estimate, see `edgefit models show ID`")
    return 0


def _list_row(spec: ModelSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "name": spec.name,
        "family": spec.family,
        "params": catalog.param_counts(spec).total,
        "open_weights": spec.open_weights,
        "weight_bytes": {p: catalog.weight_bytes(spec, p) for p in _LIST_PRECISIONS},
        "kv_cache_bytes_per_1k_tokens": catalog.kv_cache_bytes_per_token(spec) * _KV_TOKENS,
    }


# --- show ---------------------------------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    spec = _resolve(args)
    catalog.get_precision("int4", block_size=args.block_size)  # validates the block size once, up front
    data = _show_data(spec, args.block_size)
    if args.json:
        print_json(data)
    else:
        _print_show(data)
    return 0


def _show_data(spec: ModelSpec, block_size: int) -> dict[str, Any]:
    pc = catalog.param_counts(spec)
    published = spec.published_params
    precisions: list[dict[str, Any]] = []
    for base in catalog.PRECISIONS:
        p: Precision = catalog.get_precision(base.name, block_size=block_size)
        precisions.append(
            {
                "precision": p.name,
                "kind": p.kind,
                "bits_per_weight": p.bits_per_weight,
                "block_size": p.block_size,
                "weight_bytes": catalog.weight_bytes(spec, p, block_size),
                "weight_read_bytes_per_token": catalog.weight_read_bytes_per_token(spec, p, block_size),
                "onnx_buildable": p.onnx_buildable,
                "cpu_runnable": p.cpu_runnable,
                "runs_as": p.runs_as,
                "prepack_factor": p.prepack_factor,
                "runtime_note": p.runtime_note,
                "source": p.source,
            }
        )
    kv = catalog.kv_cache_bytes_per_token(spec)
    return {
        "spec": catalog.spec_to_dict(spec),
        "params": {
            "embeddings": pc.embeddings,
            "attention": pc.attention,
            "mlp": pc.mlp,
            "norms": pc.norms,
            "lm_head": pc.lm_head,
            "total": pc.total,
            "matmul_per_token": catalog.matmul_params(spec),
        },
        "published_params": published,
        "published_params_source": spec.published_params_source,
        "params_vs_published": (pc.total / published - 1.0) if published else None,
        "precisions": precisions,
        "kv_cache_bytes_per_token": kv,
        "kv_cache_bytes_per_1k_tokens": kv * _KV_TOKENS,
        "kv_cache_dtype": "float32",
        "flops_decode_per_token": {str(c): catalog.flops_decode_per_token(spec, c) for c in _SHOW_CONTEXTS},
        "flops_prompt_512": catalog.flops_prompt(spec, 512),
    }


def _print_show(d: dict[str, Any]) -> None:
    s, pc = d["spec"], d["params"]
    out = _console()
    open_note = "open weights" if s["open_weights"] else "CLOSED weights (size is an outside estimate)"
    out.print(Text.assemble((s["id"], "bold"), f"  {s['name']}  (family {s['family']}, {open_note})"))
    heads = f"{s['num_heads']} heads / {s['num_kv_heads']} KV heads x {s['head_dim']}"
    out.print(
        f"shape: hidden {s['hidden_size']}, {s['num_layers']} layers, {heads}, MLP {s['intermediate_size']}, "
        f"vocab {s['vocab_size']}, {'tied' if s['tied_embeddings'] else 'untied'} embeddings, "
        f"{s['norms_per_layer']} norms/layer{', q/k/v bias' if s['attention_bias'] else ''}"
        f"{', MLP bias' if s['mlp_bias'] else ''}, context {s['max_context']}"
    )
    params = Table(title="parameters")
    params.add_column("part")
    params.add_column("params", justify="right")
    params.add_column("share", justify="right")
    for part in ("embeddings", "attention", "mlp", "norms", "lm_head", "total"):
        params.add_row(part, f"{pc[part]:,}", f"{pc[part] / pc['total']:.1%}")
    out.print(params)
    if d["published_params"]:
        out.print(
            f"published: {d['published_params']:,} ({d['params_vs_published']:+.3%} vs computed); "
            f"source: {d['published_params_source']}"
        )
    table = Table(title="weights by precision (file bytes; read = bytes streamed per decoded token)")
    for col in ("precision", "bits/weight", "weights [GiB]", "read/token [GiB]", "onnxruntime CPU"):
        table.add_column(col, justify="left" if col in ("precision", "onnxruntime CPU") else "right")
    for p in d["precisions"]:
        if p["onnx_buildable"]:
            cpu = f"runs as {p['runs_as']}" if p["runs_as"] else "builds and runs"
            if p["prepack_factor"] != 1.0:
                cpu += f", RAM ~{p['prepack_factor']:.2f}x"
        else:
            cpu = "GGUF (llama.cpp), accounting only" if p["kind"] == "gguf" else "not runnable on CPU"
        table.add_row(
            p["precision"],
            f"{p['bits_per_weight']:.4g}",
            f"{p['weight_bytes'] / GIB:.3f}",
            f"{p['weight_read_bytes_per_token'] / GIB:.3f}",
            cpu,
        )
    out.print(table)
    out.print(
        f"KV cache (fp32, K and V, all layers): {d['kv_cache_bytes_per_token']:,} B/token = "
        f"{d['kv_cache_bytes_per_1k_tokens'] / MIB:.1f} MiB per 1k tokens"
    )
    flops = ", ".join(f"{float(v) / 1e9:.2f} GFLOP @ {c} ctx" for c, v in d["flops_decode_per_token"].items())
    out.print(f"FLOPs per decoded token: {flops}; prefill of 512 tokens: {d['flops_prompt_512'] / 1e12:.2f} TFLOP")
    out.print(f"config source: {s['config_source'] or '-'}")
    if s["notes"]:
        out.print(f"notes: {s['notes']}")


# --- build --------------------------------------------------------------------------------------------------


def _build(args: argparse.Namespace) -> int:
    check_output_file("--out", args.out)
    spec = catalog.load_spec(args.ref, model_id=args.model_id)
    precision = catalog.get_precision(args.precision, block_size=args.block_size)
    if not precision.onnx_buildable:
        buildable = ", ".join(p.name for p in catalog.PRECISIONS if p.onnx_buildable)
        raise UsageError(f"--precision {precision.name}: edgefit cannot build it; buildable precisions: {buildable}")
    if args.layers is not None:
        catalog.truncated(spec, args.layers)  # same validation and message as `show --layers`
    try:
        from edgefit.onnxbuild import build_model
    except ImportError as exc:
        raise BuildError(f"the ONNX builder is not available in this edgefit version ({exc})") from None
    built = build_model(
        spec, precision.name, out=args.out, layers=args.layers, seed=args.seed, block_size=args.block_size
    )
    result: dict[str, Any] = {
        "path": str(built.path),
        "model_id": built.spec.id,
        "precision": built.precision,
        "params": built.params,
        "weight_file_bytes": built.weight_file_bytes,
        "build_s": built.build_s,
    }
    if args.json:
        print_json(result)
        return 0
    out = _console()
    out.print(f"built {result['model_id']} ({result['precision']}): {result['path']}")
    out.print(
        f"params {result['params']:,}, weights {result['weight_file_bytes'] / MIB:.1f} MiB, {result['build_s']:.2f} s"
    )
    return 0
