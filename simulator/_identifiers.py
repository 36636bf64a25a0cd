"""Clear identifiers as an upstream system holds them, made vectorised from integer positions.

Phone numbers, national ids, names, addresses, company names and device serials look real
(valid national-id check digits, carrier prefixes) so that the load boundary's normalising and
hashing is exercised for real. They are generated, never real people.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from simulator._geo import CITY_CODES, CITY_NAMES

_SURNAMES: Final = np.array(list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"))
_GIVEN: Final = np.array(list(
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍建国红梅鑫宇浩然子轩欣怡思雨俊杰晨"
    "阳佳琪博文雅婷志强海燕文静晓东丹丹佳怡嘉怡梓涵一诺"))
_DISTRICTS: Final = np.array(["朝阳区", "海淀区", "和平区", "新华区", "城关区", "高新区", "经开区",
                              "滨江区", "南山区", "鼓楼区", "天河区", "江北区"])
_STREET_A: Final = np.array(list("建人解中长黄和胜文光新东西南北幸福团结友谊青年花园"))
_STREET_B: Final = np.array(["路", "街", "大道"])
_BRAND_A: Final = np.array(list("华星恒鑫盛泰安宏达嘉瑞丰永兴金天汇通新隆源佳博信远鸿创联宇中正昌祥富荣润德"))
_BRAND_B: Final = np.array(list("信河泰丰达源盛通宇诚科汇越海明晟辉锦和康祥云蓝腾智美凯凌晨"))
_INDUSTRY: Final = np.array(["科技", "贸易", "物流", "电子", "建设", "餐饮", "咨询", "网络", "医药",
                             "教育", "实业", "传媒", "服饰", "食品", "机械"])
COMPANY_SUFFIXES: Final = ("有限公司", "公司", "有限责任公司", "股份有限公司", " 有限公司", "集团有限公司")
"""Spellings of a company's legal form; all normalise to the same company (graph.normalise)."""
_PHONE_PREFIX: Final = np.array([130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 153,
                                 155, 156, 157, 158, 159, 166, 176, 177, 180, 181, 182, 183, 185,
                                 186, 187, 188, 189, 191, 198, 199])
_ID_WEIGHTS: Final = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_ID_CHECK: Final = np.frombuffer(b"10X98765432", dtype=np.uint8)
_HEX: Final = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)


def unique_ints(rng: np.random.Generator, high: int, n: int) -> np.ndarray:
    """``n`` distinct integers in ``[0, high)``, in random order, reproducibly.

    Raises:
        ValueError: if fewer than ``n`` values exist.
    """
    if n > high:
        raise ValueError(f"cannot draw {n} distinct values below {high}")
    out = np.empty(0, dtype=np.int64)
    while len(out) < n:
        cand = np.concatenate([out, rng.integers(0, high, size=int((n - len(out)) * 1.1) + 16)])
        _, first = np.unique(cand, return_index=True)
        out = cand[np.sort(first)]
    return out[:n]


def _strings(chars: np.ndarray) -> pa.Array:
    """Rows of an ``(n, k)`` uint8 ASCII matrix as a string array."""
    n, k = chars.shape
    flat = np.ascontiguousarray(chars, dtype=np.uint8).view(f"S{k}").reshape(n)
    return pa.array(flat, type=pa.binary(k)).cast(pa.binary()).cast(pa.string())


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative ints as an ``(n, width)`` uint8 matrix."""
    v = np.array(values, dtype=np.int64, copy=True)
    out = np.empty((len(v), width), dtype=np.uint8)
    # NOTE: digit by digit keeps memory at n x width bytes (events number in the tens of millions).
    for j in range(width - 1, -1, -1):
        out[:, j] = v % 10
        v //= 10
    return out


def join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of string arrays and constants."""
    return pc.binary_join_element_wise(*parts, "")


def pick(choices: np.ndarray, idx: np.ndarray) -> pa.Array:
    """``choices[idx]`` as a string array."""
    return pa.array(choices).take(pa.array(idx))


def format_ids(prefix: str, values: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded ``values``: ``format_ids("U", [7], 8) -> ["U00000007"]``."""
    return join(prefix, _strings(_digits(np.asarray(values, dtype=np.int64), width) + 48))


def phone_numbers(rng: np.random.Generator, n: int) -> pa.Array:
    """Distinct 11-digit mainland mobile numbers."""
    codes = unique_ints(rng, len(_PHONE_PREFIX) * 10**8, n)
    numbers = _PHONE_PREFIX[codes // 10**8] * 10**8 + codes % 10**8
    return _strings(_digits(numbers, 11) + 48)


def national_ids(rng: np.random.Generator, city: np.ndarray, start_year: int) -> pa.Array:
    """18-character resident identity numbers with valid check digits.

    Args:
        rng (np.random.Generator): the random source.
        city (np.ndarray): city index per person (gives the region code).
        start_year (int): the current year; people are 20 to 60 years old.
    """
    n = len(city)
    region = CITY_CODES[city].astype(np.int64) + rng.integers(0, 5, size=n)
    born = (np.datetime64(f"{start_year - 60}-01-01")
            + rng.integers(0, 40 * 365, size=n).astype("timedelta64[D]"))
    years = born.astype("datetime64[Y]")
    months = born.astype("datetime64[M]")
    y = years.astype(np.int64) + 1970
    m = (months - years).astype(np.int64) + 1
    d = (born - months).astype(np.int64) + 1
    body = np.concatenate(
        [_digits(region, 6), _digits(y * 10**4 + m * 100 + d, 8),
         _digits(rng.integers(0, 1000, size=n), 3)], axis=1)
    check = _ID_CHECK[(body.astype(np.int64) @ _ID_WEIGHTS) % 11]
    return _strings(np.concatenate([body + 48, check[:, None]], axis=1))


def person_names(rng: np.random.Generator, n: int) -> pa.Array:
    """Chinese names: a surname and one or two given characters."""
    surname = pick(_SURNAMES, rng.integers(0, len(_SURNAMES), size=n))
    g1 = pick(_GIVEN, rng.integers(0, len(_GIVEN), size=n))
    g2_idx = rng.integers(0, len(_GIVEN) + 1, size=n)
    g2 = pick(np.append(_GIVEN, ""), np.where(rng.random(n) < 0.3, len(_GIVEN), g2_idx))
    return join(surname, g1, g2)


def device_serials(rng: np.random.Generator, os: np.ndarray) -> pa.Array:
    """Distinct device serials: 15-digit IMEIs (Android), hex ids (iOS), ``EMU-`` (emulators)."""
    n = len(os)
    codes = unique_ints(rng, 10**13, n)
    imei = join("86", _strings(_digits(codes, 13) + 48))
    nibbles = (codes[:, None] >> (4 * np.arange(11, -1, -1))[None, :]) & 0xF
    hexes = _strings(_HEX[nibbles])
    ios = join("F4", hexes)
    emu = join("EMU-", hexes)
    out = pc.if_else(pa.array(os == 1), ios, imei)
    return pc.if_else(pa.array(os == 2), emu, out)


def home_addresses(rng: np.random.Generator, city: np.ndarray) -> pa.Array:
    """Distinct street addresses down to the flat, in each given city."""
    n = len(city)
    radices = (len(_DISTRICTS), len(_STREET_A), len(_STREET_A), len(_STREET_B), 300, 40, 6, 120)
    codes = unique_ints(rng, int(np.prod(radices, dtype=np.int64)), n)
    parts = []
    for r in reversed(radices):
        parts.append(codes % r)
        codes = codes // r
    room, unit, bldg, no, sb, sa2, sa1, dist = parts
    floor, flat = room // 4 + 1, room % 4 + 1
    return join(
        pick(CITY_NAMES, city), pick(_DISTRICTS, dist), pick(_STREET_A, sa1), pick(_STREET_A, sa2),
        pick(_STREET_B, sb), pa.array((no + 1).astype(str)), "号",
        pa.array((bldg + 1).astype(str)), "栋", pa.array((unit + 1).astype(str)), "单元",
        pa.array((floor * 100 + flat).astype(str)), "室",
    )


def company_names(rng: np.random.Generator, city: np.ndarray) -> pa.Array:
    """Distinct company names without legal form, e.g. ``深圳市星河贸易``."""
    space = len(_BRAND_A) * len(_BRAND_B) * len(_INDUSTRY)
    codes = unique_ints(rng, space * 64, len(city))
    # NOTE: the city is part of the name, so a code only needs to be unique overall.
    local = codes % space
    ind = local % len(_INDUSTRY)
    b = local // len(_INDUSTRY)
    return join(pick(CITY_NAMES, city), pick(_BRAND_A, b % len(_BRAND_A)),
                pick(_BRAND_B, (b // len(_BRAND_A)) % len(_BRAND_B)), pick(_INDUSTRY, ind))


def company_spellings(base: pa.Array, variant: np.ndarray) -> pa.Array:
    """A company as someone wrote it: its name plus one of :data:`COMPANY_SUFFIXES`."""
    return join(base, pick(np.array(COMPANY_SUFFIXES), variant))


def merchant_names(rng: np.random.Generator, category_words: np.ndarray) -> pa.Array:
    """Shop names: a brand, the category and a shop suffix."""
    n = len(category_words)
    shop = np.array(["专营店", "旗舰店", "便利店", "商行", "小店", "工作室"])
    return join(pick(_BRAND_A, rng.integers(0, len(_BRAND_A), size=n)),
                pick(_BRAND_B, rng.integers(0, len(_BRAND_B), size=n)),
                pa.array(category_words), pick(shop, rng.integers(0, len(shop), size=n)))


def ip_addresses(rng: np.random.Generator, n: int) -> pa.Array:
    """Distinct public IPv4 addresses in dotted form."""
    low, high = 1 << 24, 223 << 24
    codes = unique_ints(rng, high - low, n) + low
    octets = [pa.array(((codes >> s) & 0xFF).astype(str)) for s in (24, 16, 8, 0)]
    return join(octets[0], ".", octets[1], ".", octets[2], ".", octets[3])
