"""How the reports write a number: fixed decimals, and a dash where there is no finite value."""
from __future__ import annotations

import math
from typing import Any


def number(x: Any, nd: int = 2) -> str:
    """`x` with `nd` decimals; "–" for None, NaN and infinities (a cell the run could not measure)."""
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "–"
    return f"{x:.{nd}f}"
