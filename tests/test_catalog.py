"""The built-in catalog: every card loads, and its computed parameter count equals the published one."""

from __future__ import annotations

import pytest

from edgefit import catalog
from edgefit.catalog import load_spec, param_counts

# Published totals, each with its source. "safetensors" = the exact count the Hugging Face Hub shows for the
# model's safetensors files (https://huggingface.co/<repo>, "Model size"; API field safetensors.total).
PUBLISHED: dict[str, tuple[int, bool]] = {  # id -> (published params, exact?)
    "smollm2-135m": (134_515_008, True),  # HuggingFaceTB/SmolLM2-135M safetensors
    "smollm2-360m": (361_821_120, True),  # HuggingFaceTB/SmolLM2-360M safetensors
    "qwen2.5-0.5b": (494_032_768, True),  # Qwen/Qwen2.5-0.5B safetensors (model card: 0.49B)
    "tinyllama-1.1b": (1_100_048_384, True),  # TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T safetensors
    "llama-3.2-1b": (1_235_814_400, True),  # meta-llama/Llama-3.2-1B safetensors (model card: 1.23B)
    "qwen2.5-1.5b": (1_543_714_304, True),  # Qwen/Qwen2.5-1.5B safetensors (model card: 1.54B)
    "smollm2-1.7b": (1_711_376_384, True),  # HuggingFaceTB/SmolLM2-1.7B safetensors
    "gemma-2-2b": (2_614_341_888, True),  # google/gemma-2-2b safetensors
    "llama-3.2-3b": (3_212_749_824, True),  # meta-llama/Llama-3.2-3B safetensors (model card: 3.21B)
    "phi-3-mini-4k": (3_821_079_552, True),  # microsoft/Phi-3-mini-4k-instruct safetensors (model card: 3.8B)
    "mistral-7b-v0.3": (7_248_023_552, True),  # mistralai/Mistral-7B-v0.3 safetensors
    "qwen2.5-7b": (7_615_616_512, True),  # Qwen/Qwen2.5-7B safetensors (model card: 7.61B)
    "llama-3.1-8b": (8_030_261_248, True),  # meta-llama/Llama-3.1-8B safetensors
    "llama-3.1-70b": (70_553_706_496, True),  # meta-llama/Llama-3.1-70B safetensors
    "llama-3.1-405b": (405_853_388_800, True),  # meta-llama/Llama-3.1-405B safetensors
    # Outside estimate, not a published figure: Ben Abacha et al., MEDEC, arXiv:2412.19260 ("~8B").
    "gpt-4o-mini": (8_000_000_000, False),
}


def test_catalog_has_the_required_models() -> None:
    ids = {s.id for s in catalog.list_specs()}
    assert set(PUBLISHED) <= ids
    assert len(ids) >= 16


def test_list_is_sorted_smallest_first_and_ids_match_files() -> None:
    specs = catalog.list_specs()
    totals = [param_counts(s).total for s in specs]
    assert totals == sorted(totals)
    for s in specs:
        assert s.path is not None and s.path.endswith(f"{s.id}.toml")


@pytest.mark.parametrize("model_id", sorted(PUBLISHED))
def test_params_match_published(model_id: str) -> None:
    spec = load_spec(model_id)
    published, exact = PUBLISHED[model_id]
    total = param_counts(spec).total
    assert abs(total / published - 1) <= 0.005
    if exact:
        assert total == published
    # The card carries the same figure and says where it comes from.
    assert spec.published_params == published
    assert spec.published_params_source and spec.config_source


@pytest.mark.parametrize("spec", catalog.list_specs(), ids=lambda s: s.id)
def test_every_card_cites_its_sources(spec: catalog.ModelSpec) -> None:
    assert spec.published_params_source is not None
    assert spec.config_source is not None
    if spec.open_weights:
        assert spec.config_source.startswith("https://huggingface.co/") and spec.config_source.endswith("/config.json")


def test_architecture_specifics_from_the_brief() -> None:
    gemma = load_spec("gemma-2-2b")
    assert gemma.norms_per_layer == 4 and gemma.tied_embeddings
    assert gemma.head_dim == 256 != gemma.hidden_size // gemma.num_heads
    assert all(load_spec(i).attention_bias for i in ("qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-7b"))
    assert load_spec("qwen2.5-0.5b").tied_embeddings and load_spec("qwen2.5-1.5b").tied_embeddings
    assert not load_spec("qwen2.5-7b").tied_embeddings
    assert load_spec("llama-3.2-1b").tied_embeddings and load_spec("llama-3.2-3b").tied_embeddings
    assert not load_spec("phi-3-mini-4k").tied_embeddings


def test_gpt_4o_mini_is_closed_and_says_it_is_an_estimate() -> None:
    spec = load_spec("gpt-4o-mini")
    assert spec.open_weights is False
    assert spec.notes is not None and "estimate" in spec.notes
    assert "2412.19260" in (spec.published_params_source or "")
    assert [s.id for s in catalog.list_specs() if not s.open_weights] == ["gpt-4o-mini"]


def test_parts_add_up_and_split_is_sane() -> None:
    for spec in catalog.list_specs():
        pc = param_counts(spec)
        assert pc.total == pc.embeddings + pc.attention + pc.mlp + pc.norms + pc.lm_head
        assert pc.lm_head == (0 if spec.tied_embeddings else pc.embeddings)
        assert pc.embeddings == spec.vocab_size * spec.hidden_size
        assert pc.norms == (spec.num_layers * spec.norms_per_layer + 1) * spec.hidden_size


def test_qwen_non_embedding_matches_model_card() -> None:
    # Qwen2.5 model cards: "Number of Parameters (Non-Embedding): 0.36B" (0.5B) and "1.31B" (1.5B).
    for model_id, non_embedding_b in (("qwen2.5-0.5b", 0.36), ("qwen2.5-1.5b", 1.31)):
        pc = param_counts(load_spec(model_id))
        assert round((pc.total - pc.embeddings) / 1e9, 2) == non_embedding_b
