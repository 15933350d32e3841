from __future__ import annotations

import pytest

from edgefit.errors import UnitError
from edgefit.units import GB, GIB, MIB, parse_quantity


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("8 GiB", "bytes", 8 * GIB),
        ("8 GB", "bytes", 8 * GB),
        ("512MiB", "bytes", 512 * MIB),
        ("17.1 GB/s", "bytes_per_s", 17.1e9),
        ("2.7 W", "w", 2.7),
        ("500 mW", "w", 0.5),
        ("2.4 GHz", "hz", 2.4e9),
        ("1.2 TFLOPS", "flops_per_s", 1.2e12),
        ("40 TOPS", "ops_per_s", 40e12),
        ("$80", "usd", 80.0),
        ("80 USD", "usd", 80.0),
        ("50 Wh", "wh", 50.0),
        (1024, "bytes", 1024.0),
    ],
)
def test_parse_quantity(text: str, kind: str, expected: float) -> None:
    assert parse_quantity(text, kind) == pytest.approx(expected)


def test_gib_and_gb_differ() -> None:
    assert parse_quantity("1 GiB", "bytes") / parse_quantity("1 GB", "bytes") == pytest.approx(1.073741824)


@pytest.mark.parametrize(
    ("text", "kind", "needle"),
    [
        ("8 gigs", "bytes", "unknown unit 'gigs'"),
        ("8 GB", "w", "unknown unit 'GB'"),
        ("lots", "bytes", "expected a quantity like '8 GiB'"),
        (True, "bytes", "expected a number"),
    ],
)
def test_parse_quantity_errors_name_where(text: str, kind: str, needle: str) -> None:
    with pytest.raises(UnitError) as exc:
        parse_quantity(text, kind, where="x.toml: memory.ram")
    assert needle in str(exc.value)
    assert str(exc.value).startswith("x.toml: memory.ram: ")
