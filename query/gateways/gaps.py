"""Where a gateway's sequence has holes, from per-block facts (pure: no I/O, so it is tested alone).

A gateway numbers one company's records 1, 2, 3, ...; storage keeps, per block of N numbers, the
set of numbers stored (`gateway_blocks`). From each block's cardinality and the highest number
stored, this module says which blocks can hold a gap (a present block with fewer numbers than it
should have, or a block with none at all), and turns the missing ranges found in those blocks into
the answer: the watermark (everything from 1 to it is stored) and the gaps above it, in order.
Numbers above the highest stored are the future, not a gap: a gateway's lost tail shows only
when a later record arrives.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Range = tuple[int, int]  # first and last missing number, inclusive


@dataclass(frozen=True)
class Blocks:
    """What the summary query says of one gateway: N, the highest number stored, how many distinct
    numbers are stored, the present blocks short of numbers, and (only when some block has no
    number at all) every present block."""

    size: int
    highest: int
    stored: int
    short: Sequence[int]
    present: Sequence[int] | None = None

    def expected(self, block: int) -> int:
        """How many numbers block `block` holds when nothing below `highest` is missing."""
        return min(self.size, self.highest - block * self.size)

    def empty_ranges(self) -> list[Range]:
        """The numbers of blocks below the highest one that hold no number at all."""
        if self.present is None:
            return []
        last = (self.highest - 1) // self.size
        have = set(self.present)
        return [(b * self.size + 1, (b + 1) * self.size) for b in range(last + 1) if b not in have]

    def to_read(self, max_gaps: int) -> Sequence[int]:
        """The short blocks worth reading for the first `max_gaps` gaps: a gap can join ranges of
        at most two short blocks (the blocks between are empty, or it would not be one gap), so
        2 * max_gaps + 2 of them hold more than max_gaps gaps."""
        return self.short[:2 * max_gaps + 2]

    def bounds(self, block: int) -> Range:
        """The numbers a gap in `block` can lie in (the last block stops at the highest number)."""
        return block * self.size + 1, min((block + 1) * self.size, self.highest)


@dataclass(frozen=True)
class Completeness:
    """The answer for one gateway (see `describe`)."""

    gateway_id: str
    watermark: int
    highest: int
    stored: int
    gaps: list[Range]
    gaps_truncated: bool
    last_call: str

    def describe(self) -> dict[str, object]:
        return {"gateway_id": self.gateway_id, "watermark": self.watermark, "highest": self.highest,
                "stored": self.stored, "missing": self.highest - self.stored,
                "gaps": [{"from": a, "to": b} for a, b in self.gaps], "gaps_truncated": self.gaps_truncated,
                "last_call": self.last_call}


def merged(ranges: Iterable[Range]) -> list[Range]:
    """Sorted ranges with touching or overlapping ones joined (a block's missing tail and the next
    block's missing head are one gap)."""
    out: list[Range] = []
    for first, last in sorted(ranges):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def assemble(gateway_id: str, blocks: Blocks, found: dict[int, tuple[list[Range], bool]], max_gaps: int,
             last_call: str) -> Completeness:
    """The watermark and the first `max_gaps` gaps, from the empty blocks and the missing ranges
    `found` in each short block (each with whether its list was cut). Past the first cut list
    nothing is known, so the answer stops there and says it is truncated."""
    ranges = blocks.empty_ranges()
    cut = None
    read = blocks.to_read(max_gaps)
    if len(read) < len(blocks.short):  # past the last block read nothing is known
        cut = blocks.bounds(read[-1])[1]
    for _, (block_ranges, more) in sorted(found.items()):
        ranges += block_ranges
        if more and block_ranges:
            cut = min(cut or block_ranges[-1][0], block_ranges[-1][0])
    if cut is not None:
        ranges = [r for r in ranges if r[0] <= cut]
    gaps = merged(ranges)
    watermark = gaps[0][0] - 1 if gaps else blocks.highest
    return Completeness(gateway_id, watermark, blocks.highest, blocks.stored, gaps[:max_gaps],
                        cut is not None or len(gaps) > max_gaps, last_call)
