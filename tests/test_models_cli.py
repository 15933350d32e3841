"""`edgefit models list|show|build` through cli.main: output, JSON, and exit code 2 for every bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgefit import catalog
from edgefit.cli import main

HF_DIR = Path(__file__).parent / "data" / "hf_configs"
TINY_CARD = """
id = "tiny-cli"
family = "ladder"
hidden_size = 64
num_layers = 3
num_heads = 4
num_kv_heads = 2
intermediate_size = 96
vocab_size = 128
tied_embeddings = true
"""


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr().out
    return json.loads(out)  # stdout holds the JSON and nothing else


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, "models", "list")["models"]
    assert len(rows) >= 16
    by_id = {r["id"]: r for r in rows}
    assert by_id["gpt-4o-mini"]["open_weights"] is False
    for r in rows:
        assert r["weight_bytes"]["fp32"] == 4 * r["params"]
        assert r["weight_bytes"]["fp32"] > r["weight_bytes"]["int8"] > r["weight_bytes"]["int4"]
        spec = catalog.load_spec(r["id"])
        assert r["kv_cache_bytes_per_1k_tokens"] == 1024 * catalog.kv_cache_bytes_per_token(spec)


def test_list_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for text in ("llama-3.1-405b", "smollm2-135m", "params [B]", "int4 [GiB]", "KV / 1k tok [MiB]", "405.853"):
        assert text in out


def test_show_json_by_id(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "models", "show", "gemma-2-2b")
    spec = catalog.load_spec("gemma-2-2b")
    pc = catalog.param_counts(spec)
    assert data["params"]["total"] == pc.total == data["published_params"]
    assert data["params_vs_published"] == 0.0
    assert {p["precision"] for p in data["precisions"]} == {p.name for p in catalog.PRECISIONS}
    fp16 = next(p for p in data["precisions"] if p["precision"] == "fp16")
    assert fp16["runs_as"] == "fp32" and fp16["weight_bytes"] == catalog.weight_bytes(spec, "fp16")
    assert data["kv_cache_bytes_per_token"] == catalog.kv_cache_bytes_per_token(spec)
    assert data["flops_decode_per_token"]["1024"] == catalog.flops_decode_per_token(spec, 1024)
    assert data["spec"]["config_source"].endswith("config.json")


def test_show_block_size_changes_int4(capsys: pytest.CaptureFixture[str]) -> None:
    def int4(*extra: str) -> dict[str, Any]:
        data = run_json(capsys, "models", "show", "llama-3.2-1b", *extra)
        return next(p for p in data["precisions"] if p["precision"] == "int4")

    b32, b128 = int4(), int4("--block-size", "128")
    assert b128["bits_per_weight"] == 4.25 and b128["weight_bytes"] < b32["weight_bytes"]


def test_show_card_and_config_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card = tmp_path / "tiny.toml"
    card.write_text(TINY_CARD)
    data = run_json(capsys, "models", "show", str(card))
    assert data["spec"]["id"] == "tiny-cli" and data["published_params"] is None
    data = run_json(capsys, "models", "show", str(HF_DIR / "qwen2.5-0.5b" / "config.json"), "--id", "my-qwen")
    assert data["spec"]["id"] == "my-qwen"
    assert data["params"]["total"] == catalog.param_counts(catalog.load_spec("qwen2.5-0.5b")).total


def test_show_layers(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "models", "show", "llama-3.1-8b", "--layers", "2")
    assert data["spec"]["num_layers"] == 2 and data["spec"]["hidden_size"] == 4096


def test_show_human(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "show", "gpt-4o-mini"]) == 0
    out = capsys.readouterr().out
    for text in ("CLOSED weights", "2412.19260", "q4_k_m", "runs as fp32", "KV cache", "FLOPs per decoded token"):
        assert text in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["models", "show", "llama-3.1-8"], "did you mean"),
        (["models", "show", "llama-3.1-8b", "--layers", "0"], "--layers: expected 1..32"),
        (["models", "show", "llama-3.1-8b", "--block-size", "24"], "power of two"),
        (["models", "show", "/nonexistent/card.toml"], "model card not found"),
        (["models", "build", "tinyllama-1.1b", "--precision", "int3"], "valid precisions"),
        (
            ["models", "build", "tinyllama-1.1b", "--precision", "q4_k_m"],
            "buildable precisions: fp32, fp16, int8, int4",
        ),
        (["models", "build", "tinyllama-1.1b", "--precision", "bf16"], "cannot build"),
        (["models", "build", "tinyllama-1.1b", "--precision", "int4", "--layers", "99"], "--layers: expected 1..22"),
    ],
)
def test_bad_input_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("num_heads = 4\n", "num_heads = 5\n"),  # heads do not divide hidden
        ("num_kv_heads = 2\n", "num_kv_heads = 3\n"),  # kv heads do not divide heads
        ("num_layers = 3\n", "num_layers = 0\n"),
        ("vocab_size = 128\n", "vocab_size = 0\n"),
        ("hidden_size = 64\n", "hidden_sise = 64\n"),
    ],
)
def test_bad_cards_exit_2(tmp_path: Path, old: str, new: str, capsys: pytest.CaptureFixture[str]) -> None:
    card = tmp_path / "bad.toml"
    card.write_text(TINY_CARD.replace(old, new))
    for argv in (["models", "show", str(card)], ["models", "build", str(card), "--precision", "fp32"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert str(card) in err and err.count("\n") == 1


def test_unsupported_architecture_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rwkv" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"architectures": ["RwkvForCausalLM"], "hidden_size": 64}))
    assert main(["models", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert "RwkvForCausalLM" in err and "LlamaForCausalLM" in err


def test_models_without_action_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 2


@pytest.mark.parametrize("precision", ["fp32", "int4"])
def test_build_tiny_card_matches_accounting(tmp_path: Path, precision: str, capsys: pytest.CaptureFixture[str]) -> None:
    card = tmp_path / "tiny.toml"
    card.write_text(TINY_CARD)
    out = tmp_path / f"tiny-{precision}.onnx"
    args = ["models", "build", str(card), "--precision", precision, "--layers", "2", "--out", str(out)]
    result = run_json(capsys, *args)
    spec = catalog.truncated(catalog.load_spec(card), 2)
    assert Path(result["path"]) == out and out.is_file()
    assert result["params"] == catalog.param_counts(spec).total
    assert result["weight_file_bytes"] == catalog.weight_bytes(spec, precision)
    assert _initializer_bytes(out) == catalog.weight_bytes(spec, precision)  # read from the file, not the builder
    assert main(args) == 0  # human output, reusing the file
    assert str(out) in capsys.readouterr().out


def _initializer_bytes(path: Path) -> int:
    """Bytes of the model's weight initializers as stored, from the .onnx itself (RoPE cos/sin tables excluded:
    they are position tables, not weights)."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    total = 0
    for t in onnx.load(str(path), load_external_data=False).graph.initializer:
        if t.name.startswith("rope.") or t.name.endswith(("cos_cache", "sin_cache")):
            continue
        if uses_external_data(t):
            total += int({e.key: e.value for e in t.external_data}["length"])
        else:
            total += onnx.numpy_helper.to_array(t).nbytes
    return total


def _readme_examples() -> list[str]:
    """`edgefit models list|show` lines from the README's catalog section (the builder's lines are tested there)."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("### Model catalog and builder", 1)[1].split("\n### ", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in section.splitlines()]
    return [line for line in lines if line.startswith(("edgefit models list", "edgefit models show"))]


def test_readme_examples_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    examples = _readme_examples()
    assert len(examples) >= 4
    card = tmp_path / "my-card.toml"
    card.write_text(TINY_CARD)
    placeholders = {
        "path/to/my-card.toml": str(card),
        "~/models/Qwen2.5-7B/config.json": str(HF_DIR / "qwen2.5-7b" / "config.json"),
    }
    for line in examples:
        argv = [placeholders.get(word, word) for word in line.split()[1:]]
        assert main(argv) == 0, line
        assert capsys.readouterr().out
