"""The decoder graph: a Llama-shaped, decoder-only ONNX graph emitted the way onnxruntime-genai's model builder
emits one for the CPU provider, with weights streamed into the external-data file as nodes are created.

Per layer (2 norms; Gemma-2 style 4 norms add a norm after attention and after the MLP)::

    x ─> [Skip]SimplifiedLayerNorm ─> q/k/v MatMul(NBits) (+bias) ─> RotaryEmbedding(q), RotaryEmbedding(k)
          │                            ─> GroupQueryAttention(past kv, seqlens_k, total_len) ─> o MatMul
          └─ residual ─> SkipSimplifiedLayerNorm ─> gate, up MatMul ─> gate*Sigmoid(gate)*up ─> down MatMul ─> next

    inputs : input_ids [batch, seq] int64, attention_mask [batch, total_seq] int64,
             past_key_values.N.key/value [batch, kv_heads, past_seq, head_dim] float32
    outputs: logits [batch, seq, vocab] float32, present.N.key/value [batch, kv_heads, total_seq, head_dim]

Derived in the graph from attention_mask (no extra inputs): seqlens_k = sum(mask) - 1 (int32),
total_sequence_length = mask.shape[1] (int32 scalar), position_ids = (cumsum(mask) - 1)[:, -seq:] clamped at 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import GraphProto, NodeProto, TensorProto, ValueInfoProto, helper, numpy_helper

from edgefit.catalog import ModelSpec
from edgefit.onnxbuild.weights import ExternalDataWriter, RandomMatrix, random_norm, random_vector

MS = "com.microsoft"
OPSET = 21
# RoPE cos/sin caches hold one row per position up to the card's max_context, capped here: a 128k-context card
# would otherwise carry 64 MiB of cache (head_dim 128) that is not a weight. Positions beyond the cache fail loudly
# (onnxruntime 1.32: "Updating cos_cache and sin_cache in RotaryEmbedding is not currently supported", tested);
# benchmarks run far shorter contexts.
MAX_ROPE_POSITIONS = 32768
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class PrecisionPlan:
    """How one precision is built: float weights (``float16`` or float32), or MatMulNBits with ``bits``."""

    name: str
    bits: int | None  # 4 or 8 for MatMulNBits; None for float builds
    float16: bool = False
    accuracy_level: int = 4  # int8 compute for MatMulNBits: 1.6x faster decode than 0/1 on this CPU (NOTES)

    @property
    def quantized(self) -> bool:
        return self.bits is not None


PLANS: dict[str, PrecisionPlan] = {
    "fp32": PrecisionPlan("fp32", None),
    "fp16": PrecisionPlan("fp16", None, float16=True),
    "int8": PrecisionPlan("int8", 8),
    "int4": PrecisionPlan("int4", 4),
}


class DecoderGraph:
    """Accumulates nodes and inline initializers; weights go through the ``ExternalDataWriter``."""

    def __init__(self, spec: ModelSpec, plan: PrecisionPlan, writer: ExternalDataWriter, *, seed: int, block_size: int):
        self.spec = spec
        self.plan = plan
        self.writer = writer
        self.seed = seed
        self.block_size = block_size
        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []  # weights (external) and RoPE caches (inline)

    # ---- small helpers -------------------------------------------------------------------------------------
    def node(
        self, op: str, inputs: list[str], *, name: str, outputs: int = 1, domain: str = "", **attrs: Any
    ) -> list[str]:
        outs = [f"{name}/out{i}" if i else f"{name}/out" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, domain=domain, **attrs))
        return outs

    def const_i64(self, name: str, values: list[int], *, scalar: bool = False) -> str:
        arr = np.array(values[0] if scalar else values, dtype=np.int64)
        self.nodes.append(helper.make_node("Constant", [], [name], name=name, value=numpy_helper.from_array(arr, name)))
        return name

    def _float_weight(self, name: str, array: np.ndarray) -> str:
        """Write a float weight; in an fp16 build store float16 and Cast to float32 in the graph (onnxruntime's
        CPU provider has no fp16 MatMul: it constant-folds these Casts, so weights are fp32 in RAM)."""
        if self.plan.float16:
            t = self.writer.add_array(name, array.astype(np.float16), TensorProto.FLOAT16)
            self.initializers.append(t)
            return self.node("Cast", [t.name], name=f"{name}/cast", to=TensorProto.FLOAT)[0]
        t = self.writer.add_array(name, array, TensorProto.FLOAT)
        self.initializers.append(t)
        return t.name

    # ---- building blocks -----------------------------------------------------------------------------------
    def linear(self, x: str, base: str, k: int, n: int, *, bias: bool) -> str:
        src = RandomMatrix(self.seed, f"{base}.weight", n, k)  # W.T [out, in]
        if self.plan.quantized:
            bits = self.plan.bits
            assert bits is not None
            q, s, _ = self.writer.add_quantized(base, src, bits=bits, block_size=self.block_size)
            self.initializers += [q, s]
            y = self.node(
                "MatMulNBits",
                [x, q.name, s.name],
                name=f"{base}/MatMulNBits",
                domain=MS,
                K=k,
                N=n,
                bits=bits,
                block_size=self.block_size,
                accuracy_level=self.plan.accuracy_level,
            )[0]
        else:
            w = src.matmul_b()  # MatMul's B is [in, out]
            wname = self._float_weight(f"{base}.weight", w)
            del w
            y = self.node("MatMul", [x, wname], name=f"{base}/MatMul")[0]
        if bias:
            b = self._bias(f"{base}.bias", n)
            y = self.node("Add", [y, b], name=f"{base}/Add")[0]
        return y

    def _bias(self, name: str, n: int) -> str:
        arr = random_vector(self.seed, name, (n,))
        if self.plan.quantized:  # quantized builds keep biases float32 (CONTRACTS layout)
            t = self.writer.add_array(name, arr, TensorProto.FLOAT)
            self.initializers.append(t)
            return t.name
        return self._float_weight(name, arr)

    def norm_weight(self, name: str) -> str:
        """Norm weights are float32 in every build, fp16 included (CONTRACTS layout; they are tiny)."""
        t = self.writer.add_array(name, random_norm(self.seed, name, self.spec.hidden_size), TensorProto.FLOAT)
        self.initializers.append(t)
        return t.name

    def rms_norm(self, x: str, name: str) -> str:
        w = self.norm_weight(f"{name}.weight")
        return self.node(
            "SimplifiedLayerNormalization",
            [x, w],
            name=f"{name}/SimplifiedLayerNorm",
            axis=-1,
            epsilon=self.spec.norm_eps,
            stash_type=1,
        )[0]

    def skip_rms_norm(self, x: str, skip: str, name: str) -> tuple[str, str]:
        """RMSNorm(x + skip) and the sum (the new residual)."""
        w = self.norm_weight(f"{name}.weight")
        nm = f"{name}/SkipSimplifiedLayerNorm"
        out = f"{nm}/out"
        residual = f"{nm}/residual"
        self.nodes.append(
            helper.make_node(
                "SkipSimplifiedLayerNormalization",
                [x, skip, w],
                [out, "", "", residual],
                name=nm,
                domain=MS,
                epsilon=self.spec.norm_eps,
            )
        )
        return out, residual

    def rope_caches(self) -> tuple[str, str]:
        spec = self.spec
        positions = min(spec.max_context, MAX_ROPE_POSITIONS)
        inv_freq = 1.0 / (spec.rope_theta ** (np.arange(0, spec.head_dim, 2, dtype=np.float64) / spec.head_dim))
        angles = np.outer(np.arange(positions, dtype=np.float64), inv_freq)
        cos = numpy_helper.from_array(np.cos(angles).astype(np.float32), "rope.cos_cache")
        sin = numpy_helper.from_array(np.sin(angles).astype(np.float32), "rope.sin_cache")
        self.initializers += [cos, sin]
        return cos.name, sin.name

    # ---- the model -----------------------------------------------------------------------------------------
    def build(self, num_layers: int) -> GraphProto:
        spec = self.spec
        h, kvh, hd = spec.hidden_size, spec.num_kv_heads, spec.head_dim
        inputs: list[ValueInfoProto] = [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "total_sequence_length"]),
        ]
        outputs: list[ValueInfoProto] = [
            helper.make_tensor_value_info(
                "logits", TensorProto.FLOAT, ["batch_size", "sequence_length", spec.vocab_size]
            )
        ]
        kv_shape_in: list[str | int | None] = ["batch_size", kvh, "past_sequence_length", hd]
        kv_shape_out: list[str | int | None] = ["batch_size", kvh, "total_sequence_length", hd]
        for i in range(num_layers):
            for kind in ("key", "value"):
                inputs.append(
                    helper.make_tensor_value_info(f"past_key_values.{i}.{kind}", TensorProto.FLOAT, kv_shape_in)
                )
                outputs.append(helper.make_tensor_value_info(f"present.{i}.{kind}", TensorProto.FLOAT, kv_shape_out))

        seqlens_k, total_len, position_ids = self._mask_derived()
        cos, sin = self.rope_caches()

        # Embedding: a Gather, never quantized (CONTRACTS layout). Kept as a float initializer even in fp16
        # builds (float16 there): the Gather reads it in place and its output is cast.
        embed_arr = RandomMatrix(self.seed, "embed_tokens.weight", spec.vocab_size, h, row_major=True).transposed()
        embed_dtype = TensorProto.FLOAT16 if self.plan.float16 else TensorProto.FLOAT
        embed = self.writer.add_array(
            "embed_tokens.weight", embed_arr.astype(np.float16) if self.plan.float16 else embed_arr, embed_dtype
        )
        del embed_arr
        self.initializers.append(embed)
        x = self.node("Gather", [embed.name, "input_ids"], name="embed_tokens/Gather")[0]
        if self.plan.float16:
            x = self.node("Cast", [x], name="embed_tokens/Cast", to=TensorProto.FLOAT)[0]

        four = spec.norms_per_layer == 4
        residual = x
        pending: str | None = None  # the last block's output, not yet added to the residual
        for i in range(num_layers):
            p = f"layers.{i}"
            if pending is None:
                hn = self.rms_norm(x, f"{p}.input_layernorm")
            else:
                hn, residual = self.skip_rms_norm(pending, residual, f"{p}.input_layernorm")
            attn = self._attention(hn, i, seqlens_k, total_len, position_ids, cos, sin)
            if four:
                attn = self.rms_norm(attn, f"{p}.post_attention_layernorm")
                hn2, residual = self.skip_rms_norm(attn, residual, f"{p}.pre_feedforward_layernorm")
            else:
                hn2, residual = self.skip_rms_norm(attn, residual, f"{p}.post_attention_layernorm")
            mlp = self._mlp(hn2, p)
            if four:
                mlp = self.rms_norm(mlp, f"{p}.post_feedforward_layernorm")
            pending = mlp
        if pending is None:
            final = self.rms_norm(x, "norm")
        else:
            final, _ = self.skip_rms_norm(pending, residual, "norm")
        logits = self._lm_head(final, embed.name)
        self.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits/Identity"))
        return helper.make_graph(self.nodes, "edgefit_decoder", inputs, outputs, initializer=self.initializers)

    def _mask_derived(self) -> tuple[str, str, str]:
        one = self.const_i64("const/one", [1])
        axis1 = self.const_i64("const/axis1", [1])
        axis1_scalar = self.const_i64("const/axis1_scalar", [1], scalar=True)
        zero = self.const_i64("const/zero", [0])
        int64_max = self.const_i64("const/int64_max", [_INT64_MAX])
        mask_sum = self.node("ReduceSum", ["attention_mask", axis1], name="mask/ReduceSum", keepdims=0)[0]
        seqlens = self.node("Sub", [mask_sum, one], name="mask/seqlens_sub")[0]
        seqlens_k = self.node("Cast", [seqlens], name="mask/seqlens_k", to=TensorProto.INT32)[0]
        mask_shape = self.node("Shape", ["attention_mask"], name="mask/Shape")[0]
        total = self.node("Gather", [mask_shape, axis1_scalar], name="mask/total_len_gather", axis=0)[0]
        total_len = self.node("Cast", [total], name="mask/total_sequence_length", to=TensorProto.INT32)[0]
        cums = self.node("CumSum", ["attention_mask", axis1_scalar], name="pos/CumSum")[0]
        pos_all = self.node("Sub", [cums, one], name="pos/Sub")[0]
        seq_len = self.node("Shape", ["input_ids"], name="pos/seq_len", start=1, end=2)[0]
        start = self.node("Neg", [seq_len], name="pos/Neg")[0]
        pos = self.node("Slice", [pos_all, start, int64_max, axis1], name="pos/Slice")[0]
        position_ids = self.node("Max", [pos, zero], name="pos/position_ids")[0]
        return seqlens_k, total_len, position_ids

    def _attention(self, x: str, i: int, seqlens_k: str, total_len: str, position_ids: str, cos: str, sin: str) -> str:
        spec = self.spec
        h, nh, kvh, hd = spec.hidden_size, spec.num_heads, spec.num_kv_heads, spec.head_dim
        p = f"layers.{i}.attn"
        bias = spec.attention_bias
        q = self.linear(x, f"{p}.q_proj", h, nh * hd, bias=bias)
        k = self.linear(x, f"{p}.k_proj", h, kvh * hd, bias=bias)
        v = self.linear(x, f"{p}.v_proj", h, kvh * hd, bias=bias)
        q = self.node("RotaryEmbedding", [q, position_ids, cos, sin], name=f"{p}/q_rotary", domain=MS,
                      interleaved=0, num_heads=nh)[0]  # fmt: skip
        k = self.node("RotaryEmbedding", [k, position_ids, cos, sin], name=f"{p}/k_rotary", domain=MS,
                      interleaved=0, num_heads=kvh)[0]  # fmt: skip
        gqa = f"{p}/GroupQueryAttention"
        out = f"{gqa}/out"
        self.nodes.append(
            helper.make_node(
                "GroupQueryAttention",
                [q, k, v, f"past_key_values.{i}.key", f"past_key_values.{i}.value", seqlens_k, total_len],
                [out, f"present.{i}.key", f"present.{i}.value"],
                name=gqa,
                domain=MS,
                num_heads=nh,
                kv_num_heads=kvh,
                scale=float(1.0 / np.sqrt(hd)),
            )
        )
        return self.linear(out, f"{p}.o_proj", nh * hd, h, bias=False)

    def _mlp(self, x: str, p: str) -> str:
        spec = self.spec
        h, inter, bias = spec.hidden_size, spec.intermediate_size, spec.mlp_bias
        gate = self.linear(x, f"{p}.mlp.gate_proj", h, inter, bias=bias)
        up = self.linear(x, f"{p}.mlp.up_proj", h, inter, bias=bias)
        sig = self.node("Sigmoid", [gate], name=f"{p}.mlp/Sigmoid")[0]
        act = self.node("Mul", [gate, sig], name=f"{p}.mlp/silu")[0]
        prod = self.node("Mul", [act, up], name=f"{p}.mlp/gate_up")[0]
        return self.linear(prod, f"{p}.mlp.down_proj", inter, h, bias=bias)

    def _lm_head(self, x: str, embed_name: str) -> str:
        spec = self.spec
        h, v = spec.hidden_size, spec.vocab_size
        if not spec.tied_embeddings:
            return self.linear(x, "lm_head", h, v, bias=False)
        if self.plan.quantized:
            # Tied + quantized: a quantized copy of the embedding serves as the LM head (its bytes are added, its
            # parameters are not: they are the embedding's). The embedding is regenerated from its seed rather
            # than held through the whole build.
            bits = self.plan.bits
            assert bits is not None
            src = RandomMatrix(self.seed, "embed_tokens.weight", v, h, row_major=True)
            q, s, _ = self.writer.add_quantized(
                "lm_head", src, bits=bits, block_size=self.block_size, count_elements=False
            )
            self.initializers += [q, s]
            return self.node("MatMulNBits", [x, q.name, s.name], name="lm_head/MatMulNBits", domain=MS,
                             K=h, N=v, bits=bits, block_size=self.block_size,
                             accuracy_level=self.plan.accuracy_level)[0]  # fmt: skip
        # Tied float: Gemm(transB=1) reads the embedding initializer itself, no transposed copy in the file.
        w = embed_name
        if self.plan.float16:
            w = self.node("Cast", [embed_name], name="lm_head/Cast", to=TensorProto.FLOAT)[0]
        flat_shape = self.const_i64("const/lm_head_flat", [-1, h])
        flat = self.node("Reshape", [x, flat_shape], name="lm_head/flatten")[0]
        y = self.node("Gemm", [flat, w], name="lm_head/Gemm", transB=1)[0]
        lead = self.node("Shape", [x], name="lm_head/lead_shape", start=0, end=2)[0]
        vocab = self.const_i64("const/vocab", [v])
        shape = self.node("Concat", [lead, vocab], name="lm_head/shape", axis=0)[0]
        return self.node("Reshape", [y, shape], name="lm_head/unflatten")[0]
