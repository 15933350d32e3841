"""Hugging Face ``config.json`` -> ``ModelSpec``: a user points edgefit at the config published next to a model's
weights instead of writing a card. ``catalog.load_spec`` calls this for any ``.json`` reference.

Supported ``architectures``: Llama (also SmolLM, TinyLlama), Mistral, Qwen2, Gemma, Gemma 2, Phi-3. Each config
class has its own defaults for fields a published config may omit (``tie_word_embeddings`` is true for Gemma,
false for the others); Qwen2 hard-codes q/k/v biases without a config field. A Llama config with
``attention_bias = true`` also has an o_proj bias in transformers; edgefit's layout (docs/CONTRACTS.md) has q/k/v
biases only, so such a (rare) model is undercounted by hidden_size parameters per layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgefit.catalog import ModelSpec, spec_from_mapping
from edgefit.errors import CatalogError
from edgefit.ids import slug
from edgefit.inputfiles import load_json
from edgefit.inputfiles import shown as _shown

# HF ``architectures`` value -> (family, tie_word_embeddings default of that config class, q/k/v biases, norms/layer)
_HF_ARCHITECTURES: dict[str, tuple[str, bool, bool | None, int]] = {
    "LlamaForCausalLM": ("llama", False, None, 2),  # SmolLM / TinyLlama are Llama; attention_bias read from config
    "MistralForCausalLM": ("mistral", False, False, 2),
    "Qwen2ForCausalLM": ("qwen2", False, True, 2),  # Qwen2 hard-codes q/k/v biases (no config field)
    "Gemma2ForCausalLM": ("gemma2", True, False, 4),  # pre/post norms around attention and MLP
    "GemmaForCausalLM": ("gemma", True, False, 2),
    "Phi3ForCausalLM": ("phi3", False, False, 2),  # fused qkv_proj / gate_up_proj: same parameter count
}


_HF_TYPES: dict[str, type] = {
    "hidden_size": int,
    "num_hidden_layers": int,
    "num_attention_heads": int,
    "num_key_value_heads": int,
    "head_dim": int,
    "intermediate_size": int,
    "vocab_size": int,
    "max_position_embeddings": int,
    "tie_word_embeddings": bool,
    "attention_bias": bool,
    "mlp_bias": bool,
}


def spec_from_hf_config(data: Mapping[str, Any], *, where: str, model_id: str) -> ModelSpec:
    """Map a Hugging Face ``config.json`` (as published next to a model's weights) onto a ModelSpec."""
    archs = data.get("architectures")
    if not isinstance(archs, list) or not archs:
        raise CatalogError(
            f"{where}: field 'architectures': expected a list like [\"LlamaForCausalLM\"], found {archs!r}"
        )
    supported = [a for a in archs if a in _HF_ARCHITECTURES]
    if not supported:
        raise CatalogError(
            f"{where}: architectures = {archs!r} is not supported; supported: {', '.join(_HF_ARCHITECTURES)} "
            "(or write a card, see models/README.md)"
        )
    family, tie_default, qkv_bias, norms = _HF_ARCHITECTURES[supported[0]]

    def field(name: str, default: Any = None) -> Any:
        value = data.get(name, default)
        return default if value is None else value

    for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size"):
        if name not in data:
            raise CatalogError(f"{where}: missing field {name!r} that every {supported[0]} config has")
    # Check types under the config's own field names, so a message points at what the user sees in the file.
    for name, value in data.items():
        expected = _HF_TYPES.get(name)
        if expected is None or value is None:
            continue
        if isinstance(value, bool) != (expected is bool) or not isinstance(value, expected):
            found = f"{_shown(value)} ({type(value).__name__})"
            raise CatalogError(f"{where}: field {name!r}: expected {expected.__name__}, found {found}")
    card: dict[str, Any] = {
        "id": model_id,
        "name": str(field("_name_or_path", model_id)),
        "family": family,
        "hidden_size": data["hidden_size"],
        "num_layers": data["num_hidden_layers"],
        "num_heads": data["num_attention_heads"],
        "num_kv_heads": field("num_key_value_heads", data["num_attention_heads"]),
        "intermediate_size": data["intermediate_size"],
        "vocab_size": data["vocab_size"],
        "tied_embeddings": field("tie_word_embeddings", tie_default),
        "attention_bias": field("attention_bias", False) if qkv_bias is None else qkv_bias,
        "mlp_bias": field("mlp_bias", False),
        "norms_per_layer": norms,
        "max_context": field("max_position_embeddings", 4096),
        "rope_theta": field("rope_theta", 10000.0),
        "norm_eps": field("rms_norm_eps", 1e-6),
        "config_source": where,
        "notes": f"from a Hugging Face config.json ({supported[0]})",
    }
    if field("head_dim") is not None:
        card["head_dim"] = data["head_dim"]
    return spec_from_mapping(card, where=where, path=where)


def load_hf_config(path: str | Path, model_id: str | None = None) -> ModelSpec:
    p = Path(path)
    try:
        data = load_json(p)  # a regular file of at most 16 MiB, finite numbers, bounded nesting
    except FileNotFoundError:
        raise CatalogError(f"{p}: config.json not found") from None
    except OSError as exc:
        raise CatalogError(f"{p}: not a readable JSON config ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise CatalogError(f"{p}: not a readable JSON config ({exc})") from None
    if not isinstance(data, dict):
        raise CatalogError(f"{p}: expected a JSON object, found {type(data).__name__}")
    # the folder's name made into an id ("Qwen2.5-0.5B-Instruct" -> "qwen2.5-0.5b-instruct"); --id overrides
    default_id = slug(p.parent.name if p.name == "config.json" and p.parent.name else p.stem) or "custom-model"
    return spec_from_hf_config(data, where=str(p), model_id=model_id or default_id)
