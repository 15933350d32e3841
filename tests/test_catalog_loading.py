"""Loading: catalog ids, card files, Hugging Face config.json, and every way a card can be wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgefit import catalog
from edgefit.catalog import load_spec, param_counts, spec_from_mapping
from edgefit.errors import CatalogError

HF_DIR = Path(__file__).parent / "data" / "hf_configs"
SHAPE_FIELDS = (
    "hidden_size",
    "num_layers",
    "num_heads",
    "num_kv_heads",
    "head_dim",
    "intermediate_size",
    "vocab_size",
    "tied_embeddings",
    "attention_bias",
    "mlp_bias",
    "norms_per_layer",
    "max_context",
    "rope_theta",
    "norm_eps",
)

GOOD_CARD = """
id = "my-model"
name = "My model"
family = "llama"
hidden_size = 256
num_layers = 4
num_heads = 8
num_kv_heads = 2
intermediate_size = 688
vocab_size = 1000
tied_embeddings = true
"""


def write(tmp_path: Path, text: str, name: str = "card.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("folder", sorted(p.name for p in HF_DIR.iterdir() if p.is_dir()))
def test_hf_config_reproduces_the_catalog_card(folder: str) -> None:
    from_hf = load_spec(HF_DIR / folder / "config.json")
    card = load_spec(folder)
    assert from_hf.id == folder  # id from the folder name
    for name in SHAPE_FIELDS:
        assert getattr(from_hf, name) == getattr(card, name), name
    assert param_counts(from_hf) == param_counts(card)
    assert from_hf.published_params is None  # a config.json says nothing about the published count


def test_hf_config_folder_and_id_override() -> None:
    spec = load_spec(HF_DIR / "qwen2.5-0.5b", model_id="my-qwen")
    assert spec.id == "my-qwen" and spec.attention_bias and spec.family == "qwen2"


def test_hf_family_defaults(tmp_path: Path) -> None:
    base: dict[str, Any] = {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 128,
        "vocab_size": 50,
    }
    cases = {
        "LlamaForCausalLM": (False, False, 2),
        "MistralForCausalLM": (False, False, 2),
        "Qwen2ForCausalLM": (False, True, 2),
        "Gemma2ForCausalLM": (True, False, 4),
        "GemmaForCausalLM": (True, False, 2),
        "Phi3ForCausalLM": (False, False, 2),
    }
    for arch, (tied, bias, norms) in cases.items():
        path = tmp_path / arch / "config.json"
        path.parent.mkdir()
        path.write_text(json.dumps(base | {"architectures": [arch]}))
        spec = load_spec(path)
        assert (spec.tied_embeddings, spec.attention_bias, spec.norms_per_layer) == (tied, bias, norms), arch
        assert spec.num_kv_heads == 4 and spec.head_dim == 16


def test_spec_dict_round_trip() -> None:
    for spec in catalog.list_specs():
        data = {k: v for k, v in catalog.spec_to_dict(spec).items() if k != "path" and v is not None}
        again = spec_from_mapping(data, where="round trip", path=spec.path)
        assert again == spec


def test_card_path_and_defaults(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD_CARD))
    assert spec.id == "my-model" and spec.head_dim == 32 and spec.num_kv_heads == 2
    no_id = write(tmp_path, GOOD_CARD.replace('id = "my-model"\n', ""), "other-model.toml")
    assert load_spec(no_id).id == "other-model"
    minimal = spec_from_mapping(
        {
            "hidden_size": 64,
            "num_layers": 1,
            "num_heads": 4,
            "intermediate_size": 96,
            "vocab_size": 10,
            "tied_embeddings": False,
        },
        where="ladder.toml [rung r1]",
        default_id="r1",
    )
    assert (minimal.id, minimal.name, minimal.family, minimal.num_kv_heads) == ("r1", "r1", "custom", 4)


BAD_CARDS = [
    ("num_heads = 8\n", "num_heads = 7\n", "num_heads = 7 does not divide hidden_size = 256"),
    ("num_kv_heads = 2\n", "num_kv_heads = 3\n", r"num_kv_heads = 3 does not divide num_heads = 8.*\[1, 2, 4, 8\]"),
    ("num_layers = 4\n", "num_layers = 0\n", "'num_layers': expected an integer >= 1, found 0"),
    ("num_heads = 8\n", "num_heads = 0\n", "'num_heads': expected an integer >= 1, found 0"),
    ("vocab_size = 1000\n", "vocab_size = -5\n", "'vocab_size': expected an integer >= 1"),
    ("hidden_size = 256\n", 'hidden_size = "256"\n', "'hidden_size': expected int, found '256'"),
    ("tied_embeddings = true\n", "tied_embeddings = 1\n", "'tied_embeddings': expected boolean"),
    ("num_layers = 4\n", "num_layers = true\n", "'num_layers': expected int, found True"),
    ("num_layers = 4\n", "num_layer = 4\n", "unknown field 'num_layer'; did you mean 'num_layers'"),
    ("vocab_size = 1000\n", "", "missing required field.*vocab_size"),
    ('family = "llama"\n', 'family = "llama"\npublished_params = 5\n', "needs published_params_source"),
    ('name = "My model"\n', 'name = "My model\n', "not valid TOML"),
]


@pytest.mark.parametrize(("old", "new", "message"), BAD_CARDS)
def test_bad_cards_are_refused(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in GOOD_CARD
    path = write(tmp_path, GOOD_CARD.replace(old, new, 1))
    with pytest.raises(CatalogError, match=message) as exc:
        load_spec(path)
    assert str(path) in str(exc.value)  # names the file
    assert "\n" not in str(exc.value)  # one line


def test_explicit_head_dim_may_differ_from_hidden_over_heads(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD_CARD.replace("num_heads = 8\n", "num_heads = 6\nhead_dim = 32\n")))
    assert spec.head_dim == 32 and spec.num_heads * spec.head_dim != spec.hidden_size


def test_unknown_id_suggests_close_ones() -> None:
    with pytest.raises(CatalogError, match=r"unknown model 'qwen2.5-05b'; did you mean qwen2.5-0.5b"):
        load_spec("qwen2.5-05b")
    with pytest.raises(CatalogError, match="edgefit models list"):
        load_spec("no-such-thing")


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="model card not found"):
        load_spec(tmp_path / "nope.toml")
    with pytest.raises(CatalogError, match=r"config\.json not found"):
        load_spec(tmp_path / "x" / "config.json")
    with pytest.raises(CatalogError, match=r"expected a catalog id, a card \.toml or a config\.json"):
        load_spec(str(tmp_path / "something.bin"))


HF_BAD = [
    ({"architectures": ["MambaForCausalLM"]}, r"architectures = \['MambaForCausalLM'\] is not supported; supported: "),
    ({"architectures": "LlamaForCausalLM"}, "field 'architectures': expected a list"),
    ({}, "field 'architectures'"),
    ({"architectures": ["LlamaForCausalLM"], "hidden_size": 64}, "missing field 'num_hidden_layers'"),
    (
        {
            "architectures": ["LlamaForCausalLM"],
            "hidden_size": 64,
            "num_hidden_layers": "2",
            "num_attention_heads": 4,
            "intermediate_size": 96,
            "vocab_size": 10,
        },
        r"field 'num_hidden_layers': expected int, found '2' \(str\)",
    ),
    (
        {
            "architectures": ["Qwen2ForCausalLM"],
            "hidden_size": 64,
            "num_hidden_layers": 0,
            "num_attention_heads": 4,
            "intermediate_size": 96,
            "vocab_size": 10,
        },
        "'num_layers': expected an integer >= 1, found 0",
    ),
]


@pytest.mark.parametrize(("data", "message"), HF_BAD)
def test_bad_hf_configs(tmp_path: Path, data: dict[str, Any], message: str) -> None:
    path = write(tmp_path, json.dumps(data), "config.json")
    with pytest.raises(CatalogError, match=message):
        load_spec(path)


def test_unsupported_architecture_names_the_supported_list(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps({"architectures": ["GPT2LMHeadModel"]}), "config.json")
    with pytest.raises(CatalogError) as exc:
        load_spec(path)
    for arch in ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Gemma2ForCausalLM", "Phi3ForCausalLM"):
        assert arch in str(exc.value)


def test_not_json(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not a readable JSON config"):
        load_spec(write(tmp_path, "{not json", "config.json"))


def test_catalog_duplicate_or_misnamed_ids(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD_CARD.replace('id = "my-model"', 'id = "b"'))
    with pytest.raises(CatalogError, match="must equal the file name"):
        catalog._load_catalog(str(tmp_path))
