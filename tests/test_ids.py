"""One id pattern for every id (edgefit.ids), checked where ids enter; built files never land outside the cache
(issue 9: a card ``id = "../../../../tmp/x/pwned"`` or ``--id ../../x`` wrote, and first deleted, files outside it)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from edgefit import ids
from edgefit.catalog import list_specs
from edgefit.cli import main
from edgefit.errors import CatalogError, ProfileError, StoreError
from edgefit.ladder import load_ladder
from edgefit.profiles import load_profiles

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "tests" / "data" / "hf_configs" / "qwen2.5-0.5b" / "config.json"
TINY_CARD = """hidden_size = 64
num_layers = 2
num_heads = 4
num_kv_heads = 2
intermediate_size = 128
vocab_size = 500
tied_embeddings = false
max_context = 256
"""
HOSTILE_IDS = (
    "../../x", "../../../../tmp/x/pwned", "a/b", "a\\b", "/abs", ".hidden", "x/..", "..", "a..b", "A", "Pi5",
    "a b", "a\nb", "abc\n", "", "-x", "x-", "x_", "[/b]", "\\[/b]", "a" * (ids.MAX_ID_CHARS + 1), "é",
)  # fmt: skip


def test_every_shipped_id_and_a_run_id_match_the_one_pattern() -> None:
    shipped = [p.id for p in load_profiles()] + [s.id for s in list_specs()] + [r.spec.id for r in load_ladder("full")]
    shipped += ["3f2c9a1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f", "9c1f0a7e3b5d2468", "a" * ids.MAX_ID_CHARS]
    assert len(shipped) > 30
    assert [i for i in shipped if ids.id_problem(i) is not None] == []


@pytest.mark.parametrize("bad", HOSTILE_IDS)
def test_hostile_ids_are_refused_everywhere(bad: str) -> None:
    assert ids.id_problem(bad) is not None
    with pytest.raises(CatalogError, match="field 'id': expected lowercase"):
        ids.check_id(bad, "card.toml: field 'id'", CatalogError)
    assert ids.id_problem(ids.slug(bad)) is None or ids.slug(bad) == ""


def test_slug_makes_ids_from_folder_names() -> None:
    assert ids.slug("Qwen2.5-0.5B-Instruct") == "qwen2.5-0.5b-instruct"
    assert ids.slug("models--Qwen--Qwen2.5-0.5B") == "models-qwen-qwen2.5-0.5b"
    assert ids.slug("../../x") == "x" and ids.slug("..") == "" and ids.slug("[/b]") == "b"


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its content hash."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.mark.parametrize("card_id", ["../../outside/pwned", "../../../../tmp/x/pwned", "Pwned", "a/b"])
def test_models_build_refuses_a_card_id_that_leaves_the_cache(
    card_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "a" / "cache"
    monkeypatch.setenv("EDGEFIT_CACHE_DIR", str(cache))
    # the files an unchecked id would first delete, then write: they must stay as they are
    victim = tmp_path / "a" / "outside"
    victim.mkdir(parents=True)
    for name in ("pwned-fp32-s0.onnx", "pwned-fp32-s0.onnx.data", "pwned-fp32-s0.onnx.json"):
        (victim / name).write_text("precious", encoding="utf-8")
    card = tmp_path / "card.toml"
    card.write_text(f"id = {json.dumps(card_id)}\n" + TINY_CARD, encoding="utf-8")
    before = _tree(tmp_path)
    pwned = [p for p in Path("/tmp/x").glob("pwned*")] if Path("/tmp/x").is_dir() else []
    rc = main(["models", "build", str(card), "--precision", "fp32"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "field 'id': expected lowercase" in err and err.count("\n") == 1
    assert _tree(tmp_path) == before, "nothing written, nothing deleted"
    assert (list(Path("/tmp/x").glob("pwned*")) if Path("/tmp/x").is_dir() else []) == pwned


@pytest.mark.parametrize("flag_id", ["../../x", "../../../../tmp/x/pwned", "UPPER", "x y"])
def test_models_build_refuses_an_id_flag_that_leaves_the_cache(
    flag_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _tree(tmp_path)
    rc = main(["models", "build", str(CONFIG), "--id", flag_id, "--precision", "fp32", "--layers", "1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "argument --id: expected lowercase" in err and "Traceback" not in err
    assert _tree(tmp_path) == before


def test_a_valid_id_still_builds_inside_the_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card = tmp_path / "My Card.toml"  # no id: the file name made into one
    card.write_text(TINY_CARD, encoding="utf-8")
    assert main(["models", "build", str(card), "--precision", "fp32", "--json"]) == 0
    built = Path(json.loads(capsys.readouterr().out)["path"])
    assert built.parent == tmp_path / "cache" / "models" and built.name == "my-card-fp32-s0.onnx"


def test_config_json_default_id_is_its_folder_name_made_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "Qwen2.5-0.5B Instruct"
    folder.mkdir()
    (folder / "config.json").write_bytes(CONFIG.read_bytes())
    assert main(["models", "show", str(folder / "config.json"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["spec"]["id"] == "qwen2.5-0.5b-instruct"


def test_profile_ids_use_the_same_pattern(tmp_path: Path) -> None:
    from edgefit.profiles import DeviceProfile, with_id

    src = REPO / "device_profiles" / "raspberry-pi-5-8gb.toml"
    bad = tmp_path / "Pi5.toml"
    bad.write_text(src.read_text(encoding="utf-8").replace('id = "raspberry-pi-5-8gb"', 'id = "Pi5"'), "utf-8")
    with pytest.raises(ProfileError, match="id: expected lowercase"):
        DeviceProfile.from_toml(bad)
    with pytest.raises(ProfileError, match="expected lowercase"):
        with_id(DeviceProfile.from_toml(src), "../../x")


@pytest.mark.parametrize("field", ["id", "host_fingerprint"])
def test_bundle_with_a_hostile_run_id_is_refused_db_unchanged(
    field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edgefit import bundle

    db = tmp_path / "r.sqlite"
    good = {
        "format": bundle.BUNDLE_FORMAT,
        "schema_version": bundle.BUNDLE_SCHEMA_VERSION,
        "runs": [
            {
                "id": "3f2c9a1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f", "kind": "ladder", "started_at": "2026-01-01T00:00:00Z",
                "finished_at": None, "status": "finished", "host_fingerprint": "9c1f0a7e3b5d2468",
                "edgefit_version": "0.1.0", "onnxruntime_version": None, "environment": {}, "measurements": [],
            }
        ],
    }  # fmt: skip
    path = tmp_path / "b.json"
    path.write_text(json.dumps(good), encoding="utf-8")
    assert bundle.load_bundle(path)  # the well-formed bundle loads: the refusal below is the id's
    good["runs"][0][field] = "../../x"  # type: ignore[index]
    path.write_text(json.dumps(good), encoding="utf-8")
    with pytest.raises(StoreError, match=rf"runs\[0\]\.{field}: expected lowercase"):
        bundle.load_bundle(path)
    assert main(["results", "import", str(path), "--db", str(db)]) == 2
    assert "expected lowercase" in capsys.readouterr().err
    assert not db.exists()
