"""The merchants payments go to: categories, channels, sizes, regions, and each account's regular merchants.

A merchant (a shop, a terminal, an online store, a payee) has one recipient category and one
channel (`transaction_type`): every payment to it carries both. Shops and ATMs stand in a region;
online merchants serve every region. Merchants are few per account (`MERCHANTS_PER_ACCOUNT`, the
ULB handbook's simulator has two terminals per customer) and unequal: a log-normal size
(`POPULARITY_SIGMA`) makes some of them the big stores most customers visit.

Each merchant takes most payments in its house method (bank transfer for payees of money
transfers and utilities, card or mobile online, contactless or card in shops, card at ATMs) and the
rest in the customer's own; a contactless payment online, or a transfer or cheque at an ATM, becomes
a card payment.

Each account has a handful of regular merchants (`FAVOURITES`: 3 + Poisson(3), at most 10), picked
in its home region by its own category and channel mix and weighted 1, 1/2, 1/3, ...; a share of its
payments (0.6-0.9 per account) go to them, the rest to occasional merchants drawn by size among
those of the category and channel it picked. So an account pays the same few merchants again and
again, and a big merchant has many customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from shared.generation.payments import CATEGORY, METHOD, TYPE, pick

MERCHANTS_PER_ACCOUNT: Final = 0.5
ACCOUNTS_PER_REGION: Final = 500
"""Accounts per region: a region is a neighbourhood whose shops its customers use."""
POPULARITY_SIGMA: Final = 1.0
HOUSE_SHARE: Final = (0.5, 0.9)
"""Range of a merchant's share of payments in its house method."""
FAVOURITES: Final = 10
"""Most regular merchants an account has."""
REGULAR_SHARE: Final = (0.6, 0.9)
"""Range of an account's share of payments that go to its regular merchants."""
ID_BLOCK_PER_ACCOUNT: Final = 2
"""Merchant ids reserved per account of `account_offset`: populations side by side name different merchants
(a population of 17 accounts or more has fewer merchants than that; every category and channel needs one)."""

_CHANNELS: Final = len(TYPE)
_ONLINE: Final = TYPE["online"]


def region_count(accounts: int) -> int:
    """Regions of a population of `accounts`."""
    return max(1, accounts // ACCOUNTS_PER_REGION)


@dataclass(frozen=True)
class Merchants:
    """The merchant population, and draws of a merchant by category, channel and region weighted by size."""

    category: np.ndarray
    channel: np.ndarray
    region: np.ndarray
    """Region of a shop or ATM; 0 for online merchants, which serve all regions."""
    popularity: np.ndarray
    house_method: np.ndarray
    house_share: np.ndarray
    regions: int
    ids: np.ndarray
    """Merchant ids (`m-000123`) by index, as an object array."""
    _sorted: np.ndarray
    """Merchant indexes sorted by group."""
    _cdf: np.ndarray
    """Per sorted merchant: its group number plus its group's cumulative size share, in (group, group + 1]."""
    _end: np.ndarray
    """Per group: one past its last position in `_sorted`."""

    @property
    def size(self) -> int:
        return int(self.category.size)

    @classmethod
    def draw(
        cls, accounts: int, category_p: np.ndarray, type_p: np.ndarray, rng: np.random.Generator, id_offset: int = 0
    ) -> Merchants:
        """Merchants for `accounts` accounts, per category and channel in proportion to the population's demand."""
        regions = region_count(accounts)
        total = max(1, round(accounts * MERCHANTS_PER_ACCOUNT))
        demand = np.outer(category_p, type_p)
        # Every (category, channel) has a merchant in every region (online: one group for all regions).
        cells = [
            (c, t, r, demand[c, t] / (1 if t == _ONLINE else regions))
            for c in range(len(category_p))
            for t in range(_CHANNELS)
            for r in range(1 if t == _ONLINE else regions)
        ]
        share = np.asarray([cell[3] for cell in cells])
        counts = np.maximum(1, np.round(total * share)).astype(np.int64)
        category = np.repeat([cell[0] for cell in cells], counts)
        channel = np.repeat([cell[1] for cell in cells], counts)
        region = np.repeat([cell[2] for cell in cells], counts)
        shuffle = rng.permutation(category.size)
        category, channel, region = category[shuffle], channel[shuffle], region[shuffle]
        n = category.size
        popularity = rng.lognormal(0.0, POPULARITY_SIGMA, n)
        house = _house_methods(category, channel, rng)
        group = _group(category, channel, region, regions)
        order = np.lexsort((np.arange(n), group))
        g = group[order]
        within = np.cumsum(popularity[order])
        starts = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
        base = np.repeat(within[starts] - popularity[order][starts], np.diff(np.r_[starts, n]))
        sums = np.repeat(within[np.r_[starts[1:] - 1, n - 1]], np.diff(np.r_[starts, n]))
        cdf = g + (within - base) / (sums - base)
        end = np.zeros(len(category_p) * _CHANNELS * regions, dtype=np.int64)
        end[g[np.r_[starts[1:] - 1, n - 1]]] = np.r_[starts[1:], n]
        first = id_offset * ID_BLOCK_PER_ACCOUNT
        return cls(
            category=category,
            channel=channel,
            region=region,
            popularity=popularity,
            house_method=house,
            house_share=rng.uniform(*HOUSE_SHARE, n),
            regions=regions,
            ids=np.asarray([f"m-{first + i:06d}" for i in range(n)], dtype=object),
            _sorted=order,
            _cdf=cdf,
            _end=end,
        )

    def pick(
        self, category: np.ndarray, channel: np.ndarray, region: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """One merchant per payment among those of its category, channel and region, weighted by size."""
        group = _group(category, channel, region, self.regions)
        at = np.searchsorted(self._cdf, group + rng.random(group.size), side="right")
        picked: np.ndarray = self._sorted[np.minimum(at, self._end[group] - 1)]
        return picked

    def method(self, merchant: np.ndarray, own: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Each payment's method: the merchant's house method or the customer's own, within what its channel allows."""
        house = rng.random(merchant.size) < self.house_share[merchant]
        method = np.where(house, self.house_method[merchant], own)
        channel = self.channel[merchant]
        online_contactless = (channel == _ONLINE) & (method == METHOD["contactless"])
        atm_transfer = (channel == TYPE["atm"]) & np.isin(method, [METHOD["bank_transfer"], METHOD["check"]])
        out: np.ndarray = np.where(online_contactless | atm_transfer, METHOD["card"], method)
        return out


@dataclass(frozen=True)
class Favourites:
    """Each account's regular merchants, how it picks among them, and its share of payments that go to them."""

    merchant: np.ndarray
    """(accounts, FAVOURITES) merchant indexes."""
    cdf: np.ndarray
    """(accounts, FAVOURITES) cumulative pick probabilities (unused slots add nothing)."""
    regular: np.ndarray
    """Per account: the share of its payments that go to a regular merchant."""

    @classmethod
    def draw(
        cls,
        merchants: Merchants,
        category_cdf: np.ndarray,
        type_cdf: np.ndarray,
        home: np.ndarray,
        rng: np.random.Generator,
    ) -> Favourites:
        n = home.size
        rows = np.repeat(np.arange(n), FAVOURITES)
        category = pick(category_cdf[rows], rng)
        channel = pick(type_cdf[rows], rng)
        merchant = merchants.pick(category, channel, home[rows], rng).reshape(n, FAVOURITES)
        count = np.minimum(3 + rng.poisson(3.0, n), FAVOURITES)
        weight = np.where(np.arange(FAVOURITES) < count[:, None], 1.0 / np.arange(1, FAVOURITES + 1), 0.0)
        cdf = np.cumsum(weight, axis=1) / weight.sum(axis=1, keepdims=True)
        return cls(merchant=merchant, cdf=cdf, regular=rng.uniform(*REGULAR_SHARE, n))

    def expected_volume(
        self, merchants: Merchants, rate: np.ndarray, category_cdf: np.ndarray, type_cdf: np.ndarray, home: np.ndarray
    ) -> np.ndarray:
        """Expected legitimate payments a day per merchant, from each account's `rate` of payments a day."""
        slot_p = np.diff(self.cdf, axis=1, prepend=0.0)
        volume = np.bincount(
            self.merchant.ravel(), weights=((rate * self.regular)[:, None] * slot_p).ravel(), minlength=merchants.size
        )
        # Occasional payments: demand per (category, channel, region) group, shared by size within it.
        category_p = np.diff(category_cdf, axis=1, prepend=0.0)
        type_p = np.diff(type_cdf, axis=1, prepend=0.0)
        demand = (rate * (1.0 - self.regular))[:, None, None] * category_p[:, :, None] * type_p[:, None, :]
        c, t = np.meshgrid(np.arange(category_p.shape[1]), np.arange(_CHANNELS), indexing="ij")
        group = _group(c[None, :, :], t[None, :, :], home[:, None, None], merchants.regions)
        per_group = np.bincount(group.ravel(), weights=demand.ravel(), minlength=merchants._end.size)
        own_group = _group(merchants.category, merchants.channel, merchants.region, merchants.regions)
        size_in_group = np.bincount(own_group, weights=merchants.popularity, minlength=merchants._end.size)
        volume += per_group[own_group] * merchants.popularity / size_in_group[own_group]
        return volume


def _group(category: np.ndarray, channel: np.ndarray, region: np.ndarray, regions: int) -> np.ndarray:
    """The draw group of a category, channel and region: online merchants form one group for all regions."""
    out: np.ndarray = (category * _CHANNELS + channel) * regions + np.where(channel == _ONLINE, 0, region)
    return out.astype(np.int64)


def _house_methods(category: np.ndarray, channel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = category.size
    online = np.where(rng.random(n) < 0.7, METHOD["card"], METHOD["mobile"])
    onsite = np.where(rng.random(n) < 0.6, METHOD["contactless"], METHOD["card"])
    by_channel = np.where(channel == _ONLINE, online, np.where(channel == TYPE["atm"], METHOD["card"], onsite))
    payee = np.isin(category, [CATEGORY["money_transfer"], CATEGORY["utilities"]])
    out: np.ndarray = np.where(payee, METHOD["bank_transfer"], by_channel)
    return out
