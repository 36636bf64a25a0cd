"""Identifier normalisation, masking and keyed hashing."""

from __future__ import annotations

import pytest

from graph import Pseudonymiser, mask, normalise


@pytest.mark.parametrize(
    ("kind", "a", "b"),
    [
        ("phone", "+86 138-1234-5678", "13812345678"),
        ("company", "深圳市星河贸易有限公司", "深圳市星河贸易公司"),
        ("company", "Acme Trading Co., Ltd.", "ACME trading"),
        ("address", "No. 5, Jianguo Rd,  Beijing", "no 5 jianguo rd beijing"),
        ("device", "ab-12 34", "AB1234"),
    ],
)
def test_spellings_of_one_identifier_hash_alike(kind: str, a: str, b: str) -> None:
    p = Pseudonymiser(b"k" * 32)
    assert normalise(kind, a) == normalise(kind, b)  # type: ignore[arg-type]
    assert p.hash(kind, a) == p.hash(kind, b)  # type: ignore[arg-type]


def test_hash_depends_on_secret_and_kind_and_hides_value() -> None:
    a, b = Pseudonymiser(b"a" * 16), Pseudonymiser(b"b" * 16)
    assert a.hash("phone", "13812345678") != b.hash("phone", "13812345678")
    assert a.hash("phone", "13812345678") != a.hash("national_id", "13812345678")
    assert "13812345678" not in a.hash("phone", "13812345678")
    assert a.hash("phone", "13812345678").startswith("ph_")
    assert "secret" in repr(a) and "aaaa" not in repr(a)


def test_masks_hide_most_of_the_value() -> None:
    assert mask("phone", "13812345678") == "138****5678"
    assert mask("national_id", "110101199003071234").endswith("1234")
    assert "1101011990" not in mask("national_id", "110101199003071234")


@pytest.mark.parametrize("secret", [b"", b"short"])
def test_short_secret_is_refused(secret: bytes) -> None:
    with pytest.raises(ValueError, match="secret"):
        Pseudonymiser(secret)


def test_empty_or_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        normalise("phone", "--")
    with pytest.raises(ValueError, match="kind"):
        normalise("email", "a@b")  # type: ignore[arg-type]
