"""Identifier normalisation, masking and keyed hashing."""

from __future__ import annotations

import numpy as np
import pytest

from graph import Pseudonymiser, mask, normalise
from graph.privacy import COORDINATE_DECIMALS, coarsen, coarsen_array


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


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("10.12.0.7", " 10.12.0.7 "),
        ("10.12.0.7", "::ffff:10.12.0.7"),
        ("2001:DB8::1", "2001:0db8:0000:0000:0000:0000:0000:0001"),
    ],
)
def test_spellings_of_one_ip_hash_alike(a: str, b: str) -> None:
    p = Pseudonymiser(b"k" * 32)
    assert p.hash("ip", a) == p.hash("ip", b)
    assert p.hash("ip", a).startswith("ip_") and a.strip() not in p.hash("ip", a)


def test_an_ip_mask_is_its_network() -> None:
    assert mask("ip", "10.12.0.7") == "10.12.0.0/24"
    assert mask("ip", "::ffff:10.12.0.7") == "10.12.0.0/24"
    assert mask("ip", "2001:db8:1:2::7") == "2001:db8:1::/48"


@pytest.mark.parametrize("value", ["10.12.0", "ip-1", "10.0.0.256", "010.0.0.1"])
def test_what_is_not_an_ip_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="IPv4 or IPv6"):
        Pseudonymiser(b"k" * 32).hash("ip", value)


def test_coordinates_are_coarsened_alike_one_by_one_and_in_arrays() -> None:
    values = np.array([31.230416, 121.473701, -0.005, 0.015, 89.999999, np.nan])
    coarse = coarsen_array(values)
    assert coarse[:2].tolist() == [31.23, 121.47]
    assert [coarsen(float(v)) for v in values[:-1]] == coarse[:-1].tolist()
    assert np.isnan(coarsen(float("nan")))
    assert COORDINATE_DECIMALS == 2


def test_the_dotted_quad_shortcut_gives_what_ipaddress_gives() -> None:
    """``normalise`` and ``mask`` take a dotted quad as written when :mod:`ipaddress` would
    write it so; every other spelling goes through :mod:`ipaddress`."""
    import ipaddress

    rng = np.random.default_rng(5)
    quads = [".".join(str(int(o)) for o in rng.integers(0, 256, 4)) for _ in range(2000)]
    odd = ["0.0.0.0", "255.255.255.255", "1.2.3.04", "1.2.3.256", "１.２.３.４", "1.2.3",
           " 9.9.9.9\t", "::ffff:9.9.9.9", "1.2.3.4.5", "1..3.4", "001.2.3.4"]
    for value in quads + odd:
        try:
            address = ipaddress.ip_address(value.strip().replace("１", "1").replace(
                "２", "2").replace("３", "3").replace("４", "4"))
        except ValueError:
            with pytest.raises(ValueError):
                normalise("ip", value)
            continue
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        assert normalise("ip", value) == str(address)
        assert mask("ip", value) == str(ipaddress.ip_network(f"{address}/24", strict=False))


def test_hashing_many_at_once_gives_what_hashing_one_by_one_gives() -> None:
    values = {"phone": ["+86 138-1234-5678", "13812345678", "13900000000"],
              "ip": ["10.0.0.1", "::ffff:10.0.0.1", "2001:db8::1"],
              "company": ["Acme Trading Co., Ltd.", "ACME trading"],
              "device": ["ab-12 34", "AB1234", "zz-9"]}
    plain = Pseudonymiser(b"n" * 32, retired=(b"o" * 32,))
    for p in (plain, plain.remembering(), Pseudonymiser(b"k" * 32).remembering()):
        one_by_one = {kind: [p.hash(kind, v) for v in vs]  # type: ignore[arg-type]
                      for kind, vs in values.items()}
        for kind, vs in values.items():
            assert p.hash_many(kind, vs) == one_by_one[kind]  # type: ignore[arg-type]
            assert p.hash_and_mask_many(kind, vs) == (  # type: ignore[arg-type]
                one_by_one[kind], [mask(kind, v) for v in vs])  # type: ignore[arg-type]
    assert plain.remembering().hash_many("phone", values["phone"]) == \
        Pseudonymiser(b"n" * 32, retired=(b"o" * 32,)).hash_many("phone", values["phone"])
