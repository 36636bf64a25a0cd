"""Home province from a declared home city: the region reports group applicants by.

A ``User`` keeps its declared ``home_city`` in clear and its home coordinates coarsened
(:data:`graph.privacy.COORDINATE_DECIMALS`). A province is coarser than either, so grouping by it
reveals nothing the store does not already show; it is read off the city's name through a
gazetteer (the province-level code of GB/T 2260, the first two digits of a city's
administrative code), never from the coordinates, which are left as they are.

A city the gazetteer does not hold, or a user without one (erased, or never declared), is in
:data:`UNKNOWN_PROVINCE`: reports show that group rather than guess.
"""

from __future__ import annotations

import unicodedata
from typing import Final

UNKNOWN_PROVINCE: Final = "unknown"

PROVINCES: Final[dict[str, str]] = {
    "11": "Beijing", "12": "Tianjin", "13": "Hebei", "14": "Shanxi", "15": "Inner Mongolia",
    "21": "Liaoning", "22": "Jilin", "23": "Heilongjiang", "31": "Shanghai", "32": "Jiangsu",
    "33": "Zhejiang", "34": "Anhui", "35": "Fujian", "36": "Jiangxi", "37": "Shandong",
    "41": "Henan", "42": "Hubei", "43": "Hunan", "44": "Guangdong", "45": "Guangxi",
    "46": "Hainan", "50": "Chongqing", "51": "Sichuan", "52": "Guizhou", "53": "Yunnan",
    "54": "Tibet", "61": "Shaanxi", "62": "Gansu", "63": "Qinghai", "64": "Ningxia",
    "65": "Xinjiang", "71": "Taiwan", "81": "Hong Kong", "82": "Macau",
}
"""Province-level divisions by their GB/T 2260 code (the first two digits of any
administrative code below them)."""

_CITIES: Final[tuple[tuple[str, str, str], ...]] = (
    # (name as declared in Chinese, in pinyin, province code)
    ("上海市", "Shanghai", "31"), ("北京市", "Beijing", "11"), ("深圳市", "Shenzhen", "44"),
    ("重庆市", "Chongqing", "50"), ("广州市", "Guangzhou", "44"), ("成都市", "Chengdu", "51"),
    ("天津市", "Tianjin", "12"), ("武汉市", "Wuhan", "42"), ("西安市", "Xi'an", "61"),
    ("杭州市", "Hangzhou", "33"), ("南京市", "Nanjing", "32"), ("郑州市", "Zhengzhou", "41"),
    ("长沙市", "Changsha", "43"), ("东莞市", "Dongguan", "44"), ("沈阳市", "Shenyang", "21"),
    ("青岛市", "Qingdao", "37"), ("合肥市", "Hefei", "34"), ("佛山市", "Foshan", "44"),
    ("宁波市", "Ningbo", "33"), ("昆明市", "Kunming", "53"), ("济南市", "Jinan", "37"),
    ("哈尔滨市", "Harbin", "23"), ("福州市", "Fuzhou", "35"), ("苏州市", "Suzhou", "32"),
    ("大连市", "Dalian", "21"), ("厦门市", "Xiamen", "35"), ("南宁市", "Nanning", "45"),
    ("长春市", "Changchun", "22"), ("石家庄市", "Shijiazhuang", "13"),
    ("南昌市", "Nanchang", "36"), ("贵阳市", "Guiyang", "52"), ("太原市", "Taiyuan", "14"),
    ("乌鲁木齐市", "Urumqi", "65"), ("兰州市", "Lanzhou", "62"), ("海口市", "Haikou", "46"),
    ("呼和浩特市", "Hohhot", "15"), ("拉萨市", "Lhasa", "54"), ("银川市", "Yinchuan", "64"),
    ("西宁市", "Xining", "63"), ("温州市", "Wenzhou", "33"),
)


def _key(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).strip().casefold().replace("'", "")
    return text.removesuffix("市").removesuffix(" city").strip()


_CITY_PROVINCE: Final[dict[str, str]] = {
    _key(alias): code for zh, pinyin, code in _CITIES for alias in (zh, pinyin)}


def province_of(city: str | None) -> str:
    """The province of a declared home city, by name (Chinese, with or without 市, or pinyin,
    any case); :data:`UNKNOWN_PROVINCE` for a city the gazetteer does not hold or none.

    Args:
        city (str, optional): the ``User``'s ``home_city``.
    """
    if not city:
        return UNKNOWN_PROVINCE
    code = _CITY_PROVINCE.get(_key(city))
    return UNKNOWN_PROVINCE if code is None else PROVINCES[code]
