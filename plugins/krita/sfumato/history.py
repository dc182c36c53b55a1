"""The last few results, kept so that a click can put one back as a layer.

Entries hold the layer bytes exactly as they were inserted, so re-inserting is bit-identical.
The list is bounded by count and by bytes: big results push old ones out first.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ResultLayer:
    """One layer's worth of pixels in Krita's byte order for a document depth."""

    name: str
    x: int
    y: int
    width: int
    height: int
    data: bytes  # BGRA, `dtype` samples

    @property
    def nbytes(self) -> int:
        return len(self.data)


@dataclass
class Entry:
    """One finished job: its layers (several for variants) and a thumbnail for the list."""

    label: str
    op: str
    dtype: str
    layers: list[ResultLayer]
    group: str | None = None  # group name when there are variants
    thumb: tuple[int, int, bytes] | None = None  # (w, h, RGBA8)
    new_image: bool = False  # output size differs from the crop (upscale): opens as a new image
    wrap_tile: bool = False  # Pattern repeat: the tile opens as a new image in wrap-around mode
    meta: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    id: int = 0

    @property
    def nbytes(self) -> int:
        return sum(layer.nbytes for layer in self.layers)


class History:
    """Newest first; at most `limit` entries and about `max_bytes` of pixels (the newest is always kept)."""

    def __init__(self, limit: int = 8, max_bytes: int = 256 * 2**20):
        self.limit, self.max_bytes = limit, max_bytes
        self.entries: list[Entry] = []
        self._ids = itertools.count(1)

    def add(self, entry: Entry) -> Entry:
        entry.id = next(self._ids)
        self.entries.insert(0, entry)
        while len(self.entries) > self.limit:
            self.entries.pop()
        while len(self.entries) > 1 and sum(e.nbytes for e in self.entries) > self.max_bytes:
            self.entries.pop()
        return entry

    def get(self, entry_id: int) -> Entry | None:
        return next((e for e in self.entries if e.id == entry_id), None)

    def clear(self) -> None:
        self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)
