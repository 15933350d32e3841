"""A plain numpy forward pass of the decoder edgefit builds (float64, KV cache), independent of onnxruntime.

Written from the model definitions (Llama: RMSNorm, rotate-half RoPE, grouped-query causal attention, SwiGLU;
Gemma 2: extra norms after attention and MLP), not from the ONNX graph, so an agreement means something.
Weights come from ``edgefit.onnxbuild.read_weights`` (MatMul weights as [in, out], quantized ones dequantized).
"""

from __future__ import annotations

import numpy as np

from edgefit.catalog import ModelSpec

KV = tuple[np.ndarray, np.ndarray]  # key, value: [batch, kv_heads, seq, head_dim]


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rope(x: np.ndarray, positions: np.ndarray, head_dim: int, theta: float) -> np.ndarray:
    """x: [batch, heads, seq, head_dim]; rotate-half (non-interleaved) rotary embedding."""
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = positions[:, None].astype(np.float64) * inv_freq[None, :]  # [seq, head_dim/2]
    cos, sin = np.cos(angles), np.sin(angles)
    half = head_dim // 2
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def forward(
    weights: dict[str, np.ndarray], spec: ModelSpec, input_ids: np.ndarray, past: list[KV] | None = None
) -> tuple[np.ndarray, list[KV]]:
    """Logits [batch, seq, vocab] and the new KV cache, for ``input_ids`` following ``past`` (no padding)."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    b, s = input_ids.shape
    nh, kvh, hd, eps = spec.num_heads, spec.num_kv_heads, spec.head_dim, spec.norm_eps
    past_len = 0 if past is None else past[0][0].shape[2]
    positions = np.arange(past_len, past_len + s)
    total = past_len + s
    # causal mask: query at absolute position past_len + i sees keys at positions <= past_len + i
    allowed = np.arange(total)[None, :] <= positions[:, None]  # [s, total]

    def lin(x: np.ndarray, name: str, bias: bool) -> np.ndarray:
        y = x @ w[f"{name}.weight"]
        return y + w[f"{name}.bias"] if bias else y

    x = w["embed_tokens.weight"][input_ids]
    presents: list[KV] = []
    for layer in range(spec.num_layers):
        p = f"layers.{layer}"
        h = rms_norm(x, w[f"{p}.input_layernorm.weight"], eps)
        q = lin(h, f"{p}.attn.q_proj", spec.attention_bias).reshape(b, s, nh, hd).transpose(0, 2, 1, 3)
        k = lin(h, f"{p}.attn.k_proj", spec.attention_bias).reshape(b, s, kvh, hd).transpose(0, 2, 1, 3)
        v = lin(h, f"{p}.attn.v_proj", spec.attention_bias).reshape(b, s, kvh, hd).transpose(0, 2, 1, 3)
        q = rope(q, positions, hd, spec.rope_theta)
        k = rope(k, positions, hd, spec.rope_theta)
        if past is not None:
            k = np.concatenate([past[layer][0].astype(np.float64), k], axis=2)
            v = np.concatenate([past[layer][1].astype(np.float64), v], axis=2)
        presents.append((k, v))
        group = nh // kvh
        k_rep, v_rep = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)  # query head j uses kv head j//group
        scores = q @ k_rep.transpose(0, 1, 3, 2) / np.sqrt(hd)
        scores = np.where(allowed[None, None], scores, -np.inf)
        scores -= scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        attn = (probs @ v_rep).transpose(0, 2, 1, 3).reshape(b, s, nh * hd)
        attn = lin(attn, f"{p}.attn.o_proj", False)
        if spec.norms_per_layer == 4:
            x = x + rms_norm(attn, w[f"{p}.post_attention_layernorm.weight"], eps)
            h = rms_norm(x, w[f"{p}.pre_feedforward_layernorm.weight"], eps)
        else:
            x = x + attn
            h = rms_norm(x, w[f"{p}.post_attention_layernorm.weight"], eps)
        mlp_in = silu(lin(h, f"{p}.mlp.gate_proj", spec.mlp_bias)) * lin(h, f"{p}.mlp.up_proj", spec.mlp_bias)
        mlp = lin(mlp_in, f"{p}.mlp.down_proj", spec.mlp_bias)
        if spec.norms_per_layer == 4:
            mlp = rms_norm(mlp, w[f"{p}.post_feedforward_layernorm.weight"], eps)
        x = x + mlp
    x = rms_norm(x, w["norm.weight"], eps)
    head = w["embed_tokens.weight"].T if "lm_head.weight" not in w else w["lm_head.weight"]
    return x @ head, presents
