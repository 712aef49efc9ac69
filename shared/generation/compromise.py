"""Compromised merchants: which merchants are compromised when, so that every payment there is fraud.

A compromise lasts `COMPROMISE_DAYS` (28, the ULB handbook's compromised terminals); every
legitimate payment at the merchant during it becomes fraud (typology `compromised_merchant`), all of
one compromise sharing one episode id. Merchants are picked at random, each equally likely, as the
handbook draws its terminals; how many are compromised at once follows the fraud rate: their
expected legitimate volume (`merchants.Favourites.expected_volume`) is kept at `share` of all
legitimate volume. Only merchants whose volume fits what is missing are picked: at realistic
prevalence (0.1-1%) the whole compromised volume is a few payments a day, and one big store would
make it many times that for a month; so at such rates compromises hit smaller merchants.

Each block of event time, compromises that end in it free their volume and new ones, starting at
uniform times in the block, take it up, so the compromised volume stays on target on average; the
simulation starts in that steady state (compromises already under way, with uniform time left).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from shared.generation.event_time import DAY_MS

COMPROMISE_DAYS: Final = 28
COMPROMISE_MS: Final = COMPROMISE_DAYS * DAY_MS


class Compromises:
    """The current compromise window of each merchant (start, end, episode id), kept on a target volume."""

    def __init__(self, volume: np.ndarray, share: float) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError("the compromised share must be within [0, 1]")
        self._volume = volume
        self._target = share * float(volume.sum())
        n = volume.size
        self.start = np.full(n, -1, dtype=np.int64)
        self.end = np.full(n, -1, dtype=np.int64)
        self.episode = np.full(n, -1, dtype=np.int64)
        self._started = False

    def update(self, rng: np.random.Generator, t0: int, t1: int, next_episode: int) -> int:
        """Start the compromises of block [t0, t1), numbered from `next_episode`; the number of episodes used."""
        # Windows still open at t1 hold their volume; those ending in the block are replaced, at uniform
        # times, by new ones, which on average covers the block as the ending ones did.
        busy = self.end > t0
        held = float(self._volume[self.end >= t1].sum())
        gap = self._target - held
        if gap <= 0.0:
            self._started = True
            return 0
        # Only merchants that fit the gap: at a low fraud rate one big store would otherwise be a month's fraud.
        free = np.flatnonzero(~busy & (self._volume <= gap))
        order = free[rng.permutation(free.size)]
        filled = np.cumsum(self._volume[order])
        take = int(np.searchsorted(filled, gap, side="right"))
        if take < order.size:
            # The merchant that would overshoot joins with the chance that keeps the expected volume on target.
            before = float(filled[take - 1]) if take else 0.0
            take += int(rng.random() < (gap - before) / float(self._volume[order[take]]))
        chosen = order[:take]
        if self._started:
            start = rng.integers(t0, max(t1, t0 + 1), chosen.size)
        else:
            start = t0 - rng.integers(0, COMPROMISE_MS, chosen.size)
            self._started = True
        self.start[chosen] = start
        self.end[chosen] = start + COMPROMISE_MS
        self.episode[chosen] = next_episode + np.arange(chosen.size)
        return int(chosen.size)

    def episodes_at(self, merchant: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Per payment (merchant, time): the episode id of the compromise it falls in, -1 outside any."""
        inside = (t >= self.start[merchant]) & (t < self.end[merchant])
        out: np.ndarray = np.where(inside, self.episode[merchant], -1)
        return out
