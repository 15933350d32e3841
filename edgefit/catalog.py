"""Model catalog: architecture cards (``models/catalog/*.toml``) loaded into a frozen ``ModelSpec``, the
precisions edgefit knows, and the accounting (params, bytes, KV cache, FLOPs) as pure functions.

Contract for other stages (names are fixed; the helper owning this module implements them):
  load_spec(ref: str) -> ModelSpec          catalog id, path to a card .toml, or a HF config.json path
  list_specs() -> tuple[ModelSpec, ...]     built-in catalog
  get_precision(name: str) -> Precision     fp32, fp16, bf16, int8, int4, q8_0, q6_k, ...
  param_counts(spec) -> ParamCounts         split by part, exact integers
  weight_bytes(spec, precision) -> int      bytes as stored (incl. quantization scales / zero points)
  weight_read_bytes_per_token(spec, precision) -> int   what one decoded token reads (MatMuls + LM head)
  kv_cache_bytes_per_token(spec, dtype_bytes=4) -> int
  flops_decode_per_token(spec, context_tokens) -> int
  flops_prompt(spec, prompt_tokens) -> int
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelSpec:
    id: str
    name: str
    family: str  # llama, mistral, qwen2, gemma2, phi3, smollm, gpt-4o-mini, ladder, ...
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tied_embeddings: bool
    attention_bias: bool = False  # q/k/v projection biases (Qwen2)
    mlp_bias: bool = False
    norms_per_layer: int = 2  # Gemma 2 has 4 (pre/post attention and MLP)
    max_context: int = 4096
    open_weights: bool = True
    published_params: int | None = None
    published_params_source: str | None = None
    config_source: str | None = None
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    notes: str | None = None
    path: str | None = None  # file it was loaded from


@dataclass(frozen=True, slots=True)
class Precision:
    """How weights are stored. ``bits_per_weight`` is the effective figure for the quantized matrices,
    scales and zero points included (e.g. int4 with block 32 and fp32 scales: 4 + 32/32 = 5.0).
    ``onnx_buildable``: edgefit can build and run it. ``runtime_note``: what onnxruntime really does with it
    on CPU (e.g. fp16 is upcast to fp32 at load)."""

    name: str
    bits_per_weight: float
    kind: str  # "float", "onnx_int" (MatMulNBits), "gguf"
    block_size: int | None = None
    onnx_buildable: bool = False
    runtime_note: str | None = None
