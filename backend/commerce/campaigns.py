"""Pay-per-result campaigns: an advertiser funds a budget for a clip or a product and is billed
per thousand views of the clip (cpm) or per attributed order (cpa).

The budget moves into the advertiser's ``advertiser_budget`` account when the campaign is made
(from ``advertiser_funding``, what they paid in); each charge moves from the budget to the
platform; ending the campaign gives back what is left. The campaign row is locked for every
charge and the charge is capped at what remains, so concurrent orders can never spend more
than the budget (and the table's CHECK would refuse it if they tried); each charge's ledger
reference (``campaign:{id}:order:{order}``, ``campaign:{id}:views:{n}``) makes it happen once.
An order refunded in full is credited back (``…:order:{order}:refund``).
"""

from __future__ import annotations

from typing import Any

import structlog

from backend import idempotency
from backend.clips import service as clips
from backend.clips.service import Signer
from backend.commerce import importer, ledger
from backend.commerce import queries as q
from backend.commerce.schemas import Campaign, CampaignIn
from backend.db import Conn
from backend.errors import Conflict, NotFound, ValidationFailed

log = structlog.get_logger()

IDEMPOTENCY_SCOPE = "campaign"


def _campaign(row: Any) -> Campaign:
    return Campaign(
        id=row["id"],
        clip_id=row["clip_id"],
        product_id=row["product_id"],
        billing=row["billing"],
        rate_minor=row["rate_minor"],
        currency=row["currency"],
        budget_minor=row["budget_minor"],
        spent_minor=row["spent_minor"],
        remaining_minor=row["budget_minor"] - row["spent_minor"],
        status=row["status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def create(
    conn: Conn, *, advertiser_id: int, data: CampaignIn, idempotency_key: str, signer: Signer
) -> Campaign:
    if (data.clip_id is None) == (data.product_id is None):
        raise ValidationFailed(
            "a campaign promotes one clip or one product", code="one_target", field="clip_id"
        )
    if data.billing == "cpm" and data.clip_id is None:
        raise ValidationFailed("views are billed for a clip; a product campaign is cpa", field="billing")
    if not importer.known_currency(data.currency):
        raise ValidationFailed(
            f"{data.currency} is not an ISO 4217 currency", code="unknown_currency", field="currency"
        )
    fingerprint = idempotency.fingerprint(data)
    existing = await idempotency.claim(
        conn,
        user_id=advertiser_id,
        scope=IDEMPOTENCY_SCOPE,
        key=idempotency_key,
        body_fingerprint=fingerprint,
    )
    if existing is not None:
        return await get(conn, advertiser_id=advertiser_id, campaign_id=existing)
    if data.clip_id is not None:
        clip = await clips.get_clip(conn, viewer_id=advertiser_id, clip_id=data.clip_id, signer=signer)
        if clip.status != "published" or clip.visibility != "public":
            raise ValidationFailed(
                "only public, published clips can be promoted", code="not_promotable", field="clip_id"
            )
    else:
        from backend.commerce import service

        await service.product_for(
            conn, user_id=advertiser_id, product_id=data.product_id or 0, field="product_id"
        )
    row = await conn.fetchrow(
        q.INSERT_CAMPAIGN,
        advertiser_id,
        data.clip_id,
        data.product_id,
        data.billing,
        data.rate_minor,
        data.currency,
        data.budget_minor,
    )
    assert row is not None  # INSERT … RETURNING
    await ledger.book(
        conn,
        kind="campaign_funding",
        reference=f"campaign:{row['id']}:fund",
        currency=data.currency,
        amounts={
            ("advertiser_funding", advertiser_id): -data.budget_minor,
            ("advertiser_budget", advertiser_id): data.budget_minor,
        },
    )
    await idempotency.record(
        conn,
        user_id=advertiser_id,
        scope=IDEMPOTENCY_SCOPE,
        key=idempotency_key,
        body_fingerprint=fingerprint,
        resource_id=row["id"],
    )
    return _campaign(row)


async def get(conn: Conn, *, advertiser_id: int, campaign_id: int) -> Campaign:
    row = await conn.fetchrow(q.CAMPAIGN, campaign_id, advertiser_id)
    if row is None:
        raise NotFound(f"no campaign {campaign_id}", code="unknown_campaign")
    return _campaign(row)


async def mine(conn: Conn, *, advertiser_id: int, before_id: int | None, limit: int) -> list[Campaign]:
    return [_campaign(r) for r in await conn.fetch(q.MY_CAMPAIGNS, advertiser_id, before_id, limit)]


async def change(conn: Conn, *, advertiser_id: int, campaign_id: int, action: str) -> Campaign:
    """pause, resume or end (ending gives back the unspent budget)."""
    await get(conn, advertiser_id=advertiser_id, campaign_id=campaign_id)
    row = await conn.fetchrow(q.LOCK_CAMPAIGN, campaign_id)
    assert row is not None
    status = row["status"]
    if status == "ended" or (status == "exhausted" and action != "end"):
        raise Conflict(f"the campaign is {status}", code=f"campaign_{status}")
    target = {"pause": "paused", "resume": "active", "end": "ended"}[action]
    if target == status:
        return _campaign(row)
    if action == "end":
        rest = row["budget_minor"] - row["spent_minor"]
        if rest > 0:
            await ledger.book(
                conn,
                kind="campaign_refund",
                reference=f"campaign:{campaign_id}:end",
                currency=row["currency"],
                amounts={
                    ("advertiser_budget", advertiser_id): -rest,
                    ("advertiser_funding", advertiser_id): rest,
                },
            )
    updated = await conn.fetchrow(q.SET_CAMPAIGN_STATUS, campaign_id, target)
    return _campaign(updated)


async def _charge(
    conn: Conn, campaign_id: int, *, amount: int, reference: str, billed_views: int | None
) -> int:
    """Charge a locked campaign up to what remains; returns what was charged."""
    row = await conn.fetchrow(q.LOCK_CAMPAIGN, campaign_id)
    if row is None or row["status"] != "active":
        return 0
    charge = min(amount, row["budget_minor"] - row["spent_minor"])
    if charge <= 0:
        return 0
    booked = await ledger.book(
        conn,
        kind="campaign_charge",
        reference=reference,
        currency=row["currency"],
        amounts={("advertiser_budget", row["advertiser_id"]): -charge, ("platform_fees", None): charge},
    )
    if booked is None:  # charged for this before
        return 0
    views = billed_views if billed_views is not None else row["billed_views"]
    await conn.execute(q.CHARGE_CAMPAIGN, campaign_id, charge, views)
    return charge


async def bill_order(conn: Conn, *, order_id: int, clip_id: int | None, product_id: int | None) -> int:
    """Pay-per-order campaigns for an attributed order's clip or product; returns the total charged."""
    total = 0
    for row in await conn.fetch(q.CPA_CAMPAIGNS, clip_id, product_id):
        locked = await conn.fetchrow("SELECT rate_minor FROM campaigns WHERE id = $1", row["id"])
        total += await _charge(
            conn,
            row["id"],
            amount=locked["rate_minor"] if locked else 0,
            reference=f"campaign:{row['id']}:order:{order_id}",
            billed_views=None,
        )
    return total


async def credit_refunded_order(conn: Conn, *, order_id: int) -> int:
    """A fully refunded order was no result: each campaign charged for it gets the charge back,
    into its budget (an exhausted campaign runs again) or, once ended, to the advertiser.
    Booked once per charge (reference ``…:order:{id}:refund``). Returns the total credited."""
    total = 0
    for charge in await conn.fetch(q.ORDER_CHARGES, order_id):
        campaign_id = charge["campaign_id"]
        row = await conn.fetchrow(q.LOCK_CAMPAIGN, campaign_id)
        if row is None:
            continue
        amount = int(charge["amount_minor"])
        to = "advertiser_funding" if row["status"] == "ended" else "advertiser_budget"
        booked = await ledger.book(
            conn,
            kind="campaign_credit",
            reference=f"{charge['reference']}:refund",
            currency=charge["currency"],
            amounts={("platform_fees", None): -amount, (to, row["advertiser_id"]): amount},
        )
        if booked is None:
            continue
        if row["status"] != "ended":
            await conn.execute(q.CREDIT_CAMPAIGN, campaign_id, amount)
        total += amount
    return total


async def bill_views(conn: Conn, *, batch: int = 100) -> int:
    """Pay-per-thousand-views campaigns with whole thousands not yet billed; how many charged."""
    charged = 0
    for due in await conn.fetch(q.CPM_DUE, batch):
        row = await conn.fetchrow(q.LOCK_CAMPAIGN, due["id"])
        if row is None or row["status"] != "active":
            continue
        views = await conn.fetchval("SELECT impressions FROM clip_stats WHERE clip_id = $1", row["clip_id"])
        thousands = (int(views or 0) - row["billed_views"]) // 1000
        if thousands <= 0:
            continue
        billed = row["billed_views"] + thousands * 1000
        if await _charge(
            conn,
            row["id"],
            amount=thousands * row["rate_minor"],
            reference=f"campaign:{row['id']}:views:{billed}",
            billed_views=billed,
        ):
            charged += 1
    return charged
