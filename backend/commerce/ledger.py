"""The double-entry ledger: accounts per (kind, owner, currency), transactions that sum to zero,
and the split of an attributed order.

Money is integer minor units. Every transaction names its cause in a unique ``reference``
(``order:17``, ``refund:4``, ``usage:9``), so booking the same cause twice books it once,
whatever the concurrency. PostgreSQL enforces the rest (migrations/0015_commerce.sql): a
deferred constraint trigger refuses a transaction whose entries do not sum to zero per
currency, and entries can never be updated or deleted; a refund is a new transaction.

The split of an order of ``amount`` (its net after refunds):

- the platform's fee: ``floor(amount * fee_bps / 10000)``;
- the creator's commission: ``floor(amount * commission_bps / 10000)``, the product's rate or
  else the shop's;
- out of that commission, each licensed cameo in the clip takes ``floor(commission * share_bps
  / 10000)`` for its owner (at most the whole commission between them);
- the shop owes the sum (its ``shop_payable`` account goes negative by it).

Rounding is always down, so nobody is credited a fraction of a cent; the shop keeps the
remainders. A refund books the difference between the split of the old net and the split of
the new one, which makes a full refund an exact reversal however the cents were rounded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backend.commerce import queries as q
from backend.db import Conn

USER_ACCOUNTS = (
    "creator_earnings",
    "cameo_earnings",
    "shop_payable",
    "advertiser_budget",
    "advertiser_funding",
)

Key = tuple[str, int | None]  # (account kind, owner user id or None for the platform)


@dataclass(frozen=True)
class Split:
    fee_bps: int
    commission_bps: int
    seller_id: int
    creator_id: int
    cameo_shares: tuple[tuple[int, int], ...]  # (cameo owner id, share in bps of the commission)

    def shares(self, amount: int) -> list[int]:
        """Each cameo's share of an order of ``amount``, in ``cameo_shares`` order (an owner with
        two cameos in the clip gets both, in one entry; their statements need them apart)."""
        commission = amount * self.commission_bps // 10000
        out: list[int] = []
        for _, bps in self.cameo_shares:
            out.append(min(commission * bps // 10000, commission - sum(out)))
        return out

    def amounts(self, amount: int) -> dict[Key, int]:
        """Entries for an order of ``amount``: every value an integer, their sum zero."""
        fee = amount * self.fee_bps // 10000
        commission = amount * self.commission_bps // 10000
        out: dict[Key, int] = {}
        shares = self.shares(amount)
        for (owner_id, _), share in zip(self.cameo_shares, shares, strict=True):
            if share > 0:
                out[("cameo_earnings", owner_id)] = out.get(("cameo_earnings", owner_id), 0) + share
        out[("creator_earnings", self.creator_id)] = commission - sum(shares)
        out[("platform_fees", None)] = fee
        out[("shop_payable", self.seller_id)] = -(commission + fee)
        return {k: v for k, v in out.items() if v != 0}


def difference(before: Mapping[Key, int], after: Mapping[Key, int]) -> dict[Key, int]:
    """What to book to move from ``before`` to ``after`` (sums to zero when both do)."""
    keys = set(before) | set(after)
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys if after.get(k, 0) != before.get(k, 0)}


async def account(conn: Conn, kind: str, owner_id: int | None, currency: str) -> int:
    # Made on first use; the unique index makes a racing twin's insert a no-op, then found.
    for _ in range(2):
        found = await conn.fetchval(q.ACCOUNT, kind, owner_id, currency)
        if found is not None:
            return int(found)
    raise RuntimeError(f"ledger account {kind}/{owner_id}/{currency} could not be made")


async def book(
    conn: Conn,
    *,
    kind: str,
    reference: str,
    currency: str,
    amounts: Mapping[Key, int],
    memo: Mapping[str, Any] | None = None,
) -> int | None:
    """Book one transaction; None when ``reference`` was booked before (nothing written)."""
    if sum(amounts.values()) != 0:
        raise ValueError(f"transaction {reference} does not sum to zero")
    transaction_id = await conn.fetchval(q.INSERT_TRANSACTION, kind, reference, dict(memo or {}))
    if transaction_id is None:
        return None
    for (account_kind, owner_id), amount in sorted(amounts.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        if amount:
            account_id = await account(conn, account_kind, owner_id, currency)
            await conn.execute(q.INSERT_ENTRY, transaction_id, account_id, amount, currency)
    return int(transaction_id)


async def book_licence_fee(
    conn: Conn,
    *,
    usage_id: int,
    cameo_id: int,
    owner_id: int,
    maker_id: int,
    clip_id: int,
    amount_minor: int,
    currency: str,
) -> int | None:
    """A cameo licence fee (a usage entry: a published clip using a licensed cameo) moves from the
    maker's earnings to the cameo owner's, in the publishing transaction, once per entry."""
    if amount_minor <= 0:
        return None
    return await book(
        conn,
        kind="cameo_licence",
        reference=f"usage:{usage_id}",
        currency=currency,
        amounts={("creator_earnings", maker_id): -amount_minor, ("cameo_earnings", owner_id): amount_minor},
        memo={"cameo_id": cameo_id, "clip_id": clip_id},
    )


async def balances(conn: Conn, owner_id: int, kinds: Sequence[str] = USER_ACCOUNTS) -> list[Any]:
    return list(await conn.fetch(q.BALANCES, owner_id, list(kinds)))


async def statement(
    conn: Conn, owner_id: int, *, before_id: int | None, limit: int, kinds: Sequence[str] = USER_ACCOUNTS
) -> list[Any]:
    return list(await conn.fetch(q.STATEMENT, owner_id, list(kinds), before_id, limit))
