"""Fixed catalogues: merchant categories with typical ticket sizes, merchant sizes."""

from __future__ import annotations

from typing import Final

import numpy as np

CATEGORIES: Final[tuple[str, ...]] = (
    "electronics", "apparel", "groceries", "home", "beauty", "travel", "education",
    "auto", "food_delivery", "digital",
)
CATEGORY_WORDS: Final = np.array(["数码", "服饰", "超市", "家居", "美妆", "旅行", "教育", "汽配",
                                  "餐饮", "虚拟"])
CATEGORY_PROBS: Final = np.array([0.12, 0.16, 0.14, 0.12, 0.10, 0.05, 0.05, 0.04, 0.16, 0.06])
TICKET_MEDIAN: Final = np.array([1200.0, 180.0, 90.0, 400.0, 150.0, 1500.0, 2000.0, 600.0,
                                 45.0, 60.0])
"""Median order amount per category, CNY."""
ELECTRONICS: Final = 0

SIZE_WEIGHT: Final = np.array([1.0, 3.0, 10.0, 60.0])
"""Relative share of orders a micro, small, medium or large merchant attracts."""
SIZE_GMV: Final = np.array([600.0, 3000.0, 15000.0, 120000.0])
"""Median daily GMV (CNY) of a micro, small, medium or large merchant."""
LARGE: Final = 3
