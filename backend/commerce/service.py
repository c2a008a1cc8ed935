"""Shops, products, product tags, tracked taps and attributed orders.

A seller owns shops; a shop's products can be tagged in clips by the shop's owner, and by any
creator when the shop allows affiliates. A viewer's tap on a tag is counted once per tag per
UTC day and answered with a link carrying a signed attribution token; the redirect behind it
sends the viewer to the product page with UTM parameters and ``riffle_tap``. The shop reports
orders to a Standard Webhooks-signed webhook; an order is credited to the buyer's last tap on
the product within the attribution window and booked in the ledger once (:mod:`ledger`).
"""

from __future__ import annotations

import base64
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import structlog

from backend.clips import service as clips
from backend.clips.service import Signer
from backend.commerce import campaigns, importer, ledger
from backend.commerce import queries as q
from backend.commerce.schemas import (
    Analytics,
    AnalyticsRow,
    Booking,
    OrderEvent,
    Product,
    ProductIn,
    ProductUpdate,
    Shop,
    ShopIn,
    ShopUpdate,
    TagIn,
    Tap,
    WebhookSecret,
)
from backend.cursor import CursorCodec
from backend.db import Conn
from backend.errors import BadRequest, Conflict, Forbidden, NotFound, ValidationFailed
from backend.netguard import FetchFailed, Guard, fetch
from backend.settings import Settings

log = structlog.get_logger()

MAX_TAGS_PER_CLIP = 10
TAP_TOKEN = "tap"


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_url(settings: Settings, shop_id: int) -> str:
    return f"{settings.base_url}/v1/commerce/webhooks/{shop_id}"


def _shop(row: Any, settings: Settings, *, secret: bool = False) -> Shop:
    return Shop(
        id=row["id"],
        platform=row["platform"],
        external_id=row["external_id"],
        url=row["url"],
        name=row["name"],
        allow_affiliates=row["allow_affiliates"],
        commission_bps=row["commission_bps"],
        created_at=row["created_at"],
        webhook_url=webhook_url(settings, row["id"]),
        webhook_secret=row["webhook_secret"] if secret else None,
    )


def _product(row: Any) -> Product:
    return Product(
        id=row["id"],
        shop_id=row["shop_id"],
        title=row["title"],
        description=row["description"],
        url=row["url"],
        image_urls=list(row["image_urls"]),
        brand=row["brand"],
        price_minor=row["price_minor"],
        currency=row["currency"],
        availability=row["availability"],
        commission_bps=row["commission_bps"],
        source=row["source"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


# --- shops -----------------------------------------------------------------------------------


async def create_shop(conn: Conn, settings: Settings, *, owner_id: int, data: ShopIn) -> Shop:
    row = await conn.fetchrow(
        q.INSERT_SHOP,
        owner_id,
        data.platform,
        data.external_id,
        data.url,
        data.name,
        data.allow_affiliates,
        data.commission_bps,
        new_webhook_secret(),
    )
    if row is None:
        raise Conflict(
            f"a {data.platform} shop with external id {data.external_id!r} is already linked",
            code="shop_exists",
            field="external_id",
        )
    return _shop(row, settings, secret=True)


async def own_shop(conn: Conn, settings: Settings, *, owner_id: int, shop_id: int) -> Shop:
    row = await conn.fetchrow(q.OWN_SHOP, shop_id, owner_id)
    if row is None:
        raise NotFound(f"no shop {shop_id}", code="unknown_shop")
    return _shop(row, settings)


async def my_shops(
    conn: Conn, settings: Settings, *, owner_id: int, before_id: int | None, limit: int
) -> list[Shop]:
    return [_shop(r, settings) for r in await conn.fetch(q.MY_SHOPS, owner_id, before_id, limit)]


async def update_shop(
    conn: Conn, settings: Settings, *, owner_id: int, shop_id: int, data: ShopUpdate
) -> Shop:
    row = await conn.fetchrow(
        q.UPDATE_SHOP, shop_id, owner_id, data.url, data.name, data.allow_affiliates, data.commission_bps
    )
    if row is None:
        raise NotFound(f"no shop {shop_id}", code="unknown_shop")
    return _shop(row, settings)


async def delete_shop(conn: Conn, *, owner_id: int, shop_id: int) -> None:
    if await conn.fetchval(q.DELETE_SHOP, shop_id, owner_id) is None:
        raise NotFound(f"no shop {shop_id}", code="unknown_shop")


async def webhook_secret(
    conn: Conn, settings: Settings, *, owner_id: int, shop_id: int, rotate: bool
) -> WebhookSecret:
    if rotate:
        row = await conn.fetchrow(q.ROTATE_SECRET, shop_id, owner_id, new_webhook_secret())
    else:
        row = await conn.fetchrow(q.OWN_SHOP, shop_id, owner_id)
    if row is None:
        raise NotFound(f"no shop {shop_id}", code="unknown_shop")
    return WebhookSecret(webhook_url=webhook_url(settings, shop_id), webhook_secret=row["webhook_secret"])


# --- products --------------------------------------------------------------------------------


def _check_price(price_minor: int | None, currency: str | None) -> None:
    if (price_minor is None) != (currency is None):
        raise ValidationFailed(
            "price_minor and currency go together", code="price_needs_currency", field="currency"
        )
    if currency is not None and not importer.known_currency(currency):
        raise ValidationFailed(
            f"{currency} is not an ISO 4217 currency", code="unknown_currency", field="currency"
        )


async def create_product(
    conn: Conn, *, owner_id: int, shop_id: int, data: ProductIn, source: str = "manual"
) -> Product:
    await own_shop_id(conn, owner_id=owner_id, shop_id=shop_id)
    _check_price(data.price_minor, data.currency)
    row = await conn.fetchrow(
        q.INSERT_PRODUCT,
        shop_id,
        data.title,
        data.description,
        data.url,
        data.image_urls,
        data.brand,
        data.price_minor,
        data.currency,
        data.availability,
        data.commission_bps,
        source,
    )
    return _product(row)


async def own_shop_id(conn: Conn, *, owner_id: int, shop_id: int) -> int:
    if await conn.fetchval("SELECT id FROM shops WHERE id = $1 AND owner_id = $2", shop_id, owner_id) is None:
        raise NotFound(f"no shop {shop_id}", code="unknown_shop")
    return shop_id


async def product_for(conn: Conn, *, user_id: int, product_id: int, field: str | None = None) -> Any:
    """The product with its shop's owner, if ``user_id`` may see, tag or make clips of it
    (the shop's owner, or anyone when the shop allows affiliates); else a 404."""
    row = await conn.fetchrow(q.PRODUCT_FOR, product_id, user_id)
    if row is None:
        raise NotFound(f"no product {product_id}", code="unknown_product", field=field)
    return row


async def may_use_product(conn: Conn, *, user_id: int, product_id: int) -> bool:
    return await conn.fetchrow(q.PRODUCT_FOR, product_id, user_id) is not None


async def get_product(conn: Conn, *, user_id: int, product_id: int) -> Product:
    return _product(await product_for(conn, user_id=user_id, product_id=product_id))


async def shop_products(
    conn: Conn, *, user_id: int, shop_id: int, before_id: int | None, limit: int
) -> list[Product]:
    if await conn.fetchval(q.SHOP_FOR, shop_id, user_id) is None:
        raise NotFound(f"no shop {shop_id}", code="unknown_shop")
    return [_product(r) for r in await conn.fetch(q.SHOP_PRODUCTS, shop_id, user_id, before_id, limit)]


async def update_product(conn: Conn, *, owner_id: int, product_id: int, data: ProductUpdate) -> Product:
    price_given = "price_minor" in _given(data) or "currency" in _given(data)
    if price_given:
        _check_price(data.price_minor, data.currency)
    row = await conn.fetchrow(
        q.UPDATE_PRODUCT,
        product_id,
        owner_id,
        data.title,
        data.url,
        data.description,
        data.image_urls,
        data.brand,
        data.price_minor,
        data.currency,
        price_given,
        data.availability,
        data.commission_bps,
    )
    if row is None:
        raise NotFound(f"no product {product_id}", code="unknown_product")
    return _product(row)


def _given(data: Any) -> set[str]:
    return {f for f in data.__struct_fields__ if getattr(data, f) is not None}


async def delete_product(conn: Conn, *, owner_id: int, product_id: int) -> None:
    if await conn.fetchval(q.DELETE_PRODUCT, product_id, owner_id) is None:
        raise NotFound(f"no product {product_id}", code="unknown_product")


async def import_product(conn: Conn, settings: Settings, *, owner_id: int, shop_id: int, url: str) -> Product:
    """Fetch a product page (behind the SSRF guard) and make a product of what it describes.

    The shop is checked first, so nobody can use the import to probe URLs for a shop that is
    not theirs; nothing is written unless the page parsed."""
    await own_shop_id(conn, owner_id=owner_id, shop_id=shop_id)
    guard = Guard(
        allow_hosts=frozenset(h.strip() for h in settings.import_allow_private_hosts.split(",") if h.strip()),
        max_bytes=settings.import_max_bytes,
        timeout_s=settings.import_timeout_s,
    )
    try:
        page = await fetch(url, guard)
    except FetchFailed as exc:
        raise ValidationFailed(
            f"the product page could not be read: {exc.detail}", code=f"import_{exc.reason}", field="url"
        ) from None
    parsed = importer.parse(page.body, page_url=page.url)
    if parsed is None:
        raise ValidationFailed(
            "the page does not describe a product (no schema.org Product or OpenGraph title)",
            code="unparseable_product",
            field="url",
        )
    data = ProductIn(
        title=parsed.title,
        url=page.url,
        description=parsed.description,
        image_urls=[u for u in parsed.image_urls if len(u) <= 2000],
        brand=parsed.brand[:120] if parsed.brand else None,
        price_minor=parsed.price_minor,
        currency=parsed.currency,
        availability=parsed.availability,  # type: ignore[arg-type]
    )
    return await create_product(conn, owner_id=owner_id, shop_id=shop_id, data=data, source="import")


# --- tags and taps ---------------------------------------------------------------------------


async def add_tag(conn: Conn, *, viewer_id: int, clip_id: int, data: TagIn, signer: Signer) -> Any:
    clip = await clips.get_clip(conn, viewer_id=viewer_id, clip_id=clip_id, signer=signer)
    if clip.author.id != viewer_id:
        raise Forbidden("only the clip's author can tag products in it", code="not_clip_author")
    if not await may_use_product(conn, user_id=viewer_id, product_id=data.product_id):
        raise Forbidden(
            "you can tag products of your own shops, or of shops that allow affiliates",
            code="product_not_taggable",
            field="product_id",
        )
    for name in ("start_ms", "end_ms"):
        value = getattr(data, name)
        if value is not None and value > clip.duration_ms:
            raise ValidationFailed(f"{name} is past the clip's end ({clip.duration_ms} ms)", field=name)
    if data.start_ms is not None and data.end_ms is not None and data.start_ms >= data.end_ms:
        raise ValidationFailed("start_ms must be before end_ms", code="bad_range", field="end_ms")
    await conn.execute("SELECT id FROM clips WHERE id = $1 FOR UPDATE", clip_id)  # one tagger at a time
    if await conn.fetchval(q.LIVE_TAGS, clip_id) >= MAX_TAGS_PER_CLIP:
        raise Conflict(f"a clip carries at most {MAX_TAGS_PER_CLIP} product tags", code="too_many_tags")
    tag_id = await conn.fetchval(
        q.INSERT_TAG, clip_id, data.product_id, viewer_id, data.start_ms, data.end_ms, data.x, data.y
    )
    if tag_id is None:
        raise Conflict(
            "this product is already tagged in this clip", code="already_tagged", field="product_id"
        )
    return await clips.get_clip(conn, viewer_id=viewer_id, clip_id=clip_id, signer=signer)


async def remove_tag(conn: Conn, *, viewer_id: int, clip_id: int, tag_id: int, signer: Signer) -> None:
    clip = await clips.get_clip(conn, viewer_id=viewer_id, clip_id=clip_id, signer=signer)
    if clip.author.id != viewer_id:
        raise Forbidden("only the clip's author can remove its product tags", code="not_clip_author")
    if await conn.fetchval(q.REMOVE_TAG, tag_id, clip_id) is None:
        raise NotFound(f"no product tag {tag_id} on clip {clip_id}", code="unknown_tag")


async def tap(
    conn: Conn,
    settings: Settings,
    cursors: CursorCodec,
    *,
    viewer_id: int,
    clip_id: int,
    tag_id: int,
    signer: Signer,
) -> Tap:
    await clips.get_clip(conn, viewer_id=viewer_id, clip_id=clip_id, signer=signer)  # 404 unless visible
    tag = await conn.fetchrow(q.TAG_FOR_TAP, tag_id, clip_id)
    if tag is None:
        raise NotFound(f"no product tag {tag_id} on clip {clip_id}", code="unknown_tag")
    tap_id = await conn.fetchval(q.INSERT_TAP, tag_id, clip_id, tag["product_id"], tag["shop_id"], viewer_id)
    issued = int(time.time())
    token = cursors.encode(TAP_TOKEN, [tap_id, clip_id, tag_id, viewer_id, issued])
    return Tap(
        tap_id=tap_id,
        url=f"{settings.base_url}/r/{token}",
        expires_at=datetime.fromtimestamp(issued + settings.tap_token_ttl_s, UTC),
    )


async def redirect_target(conn: Conn, settings: Settings, cursors: CursorCodec, *, token: str) -> str:
    """The product page a tracked link leads to, with UTM parameters and ``riffle_tap``."""
    try:
        tap_id, clip_id, tag_id, viewer_id, issued = cursors.decode(TAP_TOKEN, token)
    except (BadRequest, ValueError):
        raise BadRequest("this link is not valid", code="invalid_tap_token") from None
    if int(issued) + settings.tap_token_ttl_s < time.time():
        raise BadRequest("this link has expired", code="tap_token_expired")
    row = await conn.fetchrow(q.TAP_TARGET, int(tap_id))
    if row is None or row["clip_id"] != clip_id or row["tag_id"] != tag_id or row["viewer_id"] != viewer_id:
        raise NotFound("this link leads nowhere any more", code="unknown_tap")
    parts = urlsplit(row["url"])
    query = [
        *[(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.startswith("utm_")],
        ("utm_source", "riffle"),
        ("utm_medium", "clip"),
        ("utm_campaign", str(clip_id)),
        ("utm_content", str(tag_id)),
        ("riffle_tap", str(tap_id)),
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


# --- orders ----------------------------------------------------------------------------------


async def shop_secret(conn: Conn, shop_id: int) -> str:
    secret = await conn.fetchval(q.SHOP_SECRET, shop_id)
    if secret is None:
        raise NotFound(f"no shop {shop_id}", code="unknown_shop")
    return str(secret)


async def remember_delivery(conn: Conn, *, shop_id: int, webhook_id: str) -> None:
    if await conn.fetchval(q.REMEMBER_DELIVERY, shop_id, webhook_id[:200]) is None:
        raise Conflict("this webhook delivery was already received", code="replayed")


async def _split(
    conn: Conn, settings: Settings, *, shop_id: int, product_id: int | None, attribution: Any
) -> tuple[ledger.Split, list[int]]:
    """The split of an attributed order, and the licensed cameos that share in it."""
    rates = await conn.fetchrow(q.SHARES, shop_id, product_id)
    assert rates is not None  # the shop's webhook was verified with its secret a moment ago
    cameos = await conn.fetch(q.CAMEO_SHARES, list(attribution["cameo_ids"]), attribution["author_id"])
    split = ledger.Split(
        fee_bps=settings.platform_fee_bps,
        commission_bps=rates["product_bps"] if rates["product_bps"] is not None else rates["shop_bps"],
        seller_id=rates["seller_id"],
        creator_id=attribution["author_id"],
        cameo_shares=tuple((c["owner_id"], c["revenue_share_bps"]) for c in cameos),
    )
    return split, [c["id"] for c in cameos]


async def receive_order(conn: Conn, settings: Settings, *, shop_id: int, event: OrderEvent) -> Booking:
    if event.type == "order.refunded":
        return await _refund(conn, settings, shop_id=shop_id, event=event)
    currency = event.currency.upper()
    if not importer.known_currency(currency):
        raise ValidationFailed(
            f"{event.currency!r} is not an ISO 4217 currency", code="unknown_currency", field="currency"
        )
    if event.product_id is not None:
        product = await conn.fetchrow(q.ORDER_PRODUCT, event.product_id, shop_id)
        if product is None:
            raise ValidationFailed(
                f"no product {event.product_id} in this shop", code="unknown_product", field="product_id"
            )
        if product["currency"] is not None and product["currency"] != currency:
            raise ValidationFailed(
                f"the product is priced in {product['currency']}, the order in {currency}",
                code="currency_mismatch",
                field="currency",
            )
    placed_at = event.placed_at or datetime.now(UTC)
    if placed_at.tzinfo is None:
        placed_at = placed_at.replace(tzinfo=UTC)
    if placed_at > datetime.now(UTC) + timedelta(minutes=5):
        raise ValidationFailed("placed_at is in the future", field="placed_at")
    attribution = None
    if event.tap_id is not None or event.buyer_id is not None:
        attribution = await conn.fetchrow(
            q.ATTRIBUTION,
            shop_id,
            event.product_id,
            event.buyer_id,
            event.tap_id,
            placed_at,
            settings.attribution_window_days,
        )
    row = await conn.fetchrow(
        q.INSERT_ORDER,
        shop_id,
        event.order_id,
        event.product_id,
        attribution["id"] if attribution else None,
        attribution["clip_id"] if attribution else None,
        event.buyer_id,
        event.quantity,
        event.amount_minor,
        currency,
        placed_at,
    )
    if row is None:  # delivered before (or at the same moment, and the other one won)
        existing = await conn.fetchrow(q.ORDER, shop_id, event.order_id)
        assert existing is not None  # the conflicting row is committed: the insert waited for it
        return Booking(
            order_id=existing["id"],
            status=existing["status"],
            attributed=existing["clip_id"] is not None,
            clip_id=existing["clip_id"],
            transaction_id=None,
            duplicate=True,
        )
    transaction_id = None
    if attribution is not None and event.amount_minor > 0:
        split, cameo_ids = await _split(
            conn, settings, shop_id=shop_id, product_id=event.product_id, attribution=attribution
        )
        transaction_id = await ledger.book(
            conn,
            kind="order",
            reference=f"order:{row['id']}",
            currency=currency,
            amounts=split.amounts(event.amount_minor),
            memo={
                "shop_id": shop_id,
                "clip_id": attribution["clip_id"],
                "tap_id": attribution["id"],
                # The cameos whose owners share in it, and each one's part of its owner's
                # entry: each cameo's statement reads these.
                "cameo_ids": cameo_ids,
                "cameo_amounts": {
                    str(cameo_id): share
                    for cameo_id, share in zip(cameo_ids, split.shares(event.amount_minor), strict=True)
                },
                # The rates as they were: a refund reverses with these, not with today's.
                "split": {
                    "fee_bps": split.fee_bps,
                    "commission_bps": split.commission_bps,
                    "seller_id": split.seller_id,
                    "creator_id": split.creator_id,
                    "cameo_shares": [list(share) for share in split.cameo_shares],
                },
            },
        )
        await campaigns.bill_order(
            conn, order_id=row["id"], clip_id=attribution["clip_id"], product_id=event.product_id
        )
    log.info("commerce.order", shop_id=shop_id, order_id=row["id"], attributed=attribution is not None)
    return Booking(
        order_id=row["id"],
        status=row["status"],
        attributed=attribution is not None,
        clip_id=row["clip_id"],
        transaction_id=transaction_id,
        duplicate=False,
    )


async def _refund(conn: Conn, settings: Settings, *, shop_id: int, event: OrderEvent) -> Booking:
    if event.refund_id is None or event.refund_amount_minor is None:
        raise ValidationFailed(
            "a refund needs refund_id and refund_amount_minor", code="refund_incomplete", field="refund_id"
        )
    order = await conn.fetchrow(q.LOCK_ORDER, shop_id, event.order_id)
    if order is None:
        raise NotFound(f"no order {event.order_id!r} in this shop", code="unknown_order", field="order_id")
    if event.currency and event.currency.upper() != order["currency"]:
        raise ValidationFailed(
            "the refund's currency is not the order's", code="currency_mismatch", field="currency"
        )
    if await conn.fetchval(q.INSERT_REFUND, order["id"], event.refund_id, event.refund_amount_minor) is None:
        return Booking(
            order_id=order["id"],
            status=order["status"],
            attributed=order["clip_id"] is not None,
            clip_id=order["clip_id"],
            transaction_id=None,
            duplicate=True,
        )
    refunded = order["refunded_minor"] + event.refund_amount_minor
    if refunded > order["amount_minor"]:
        raise ValidationFailed(
            "refunds would exceed the order's amount",
            code="refund_exceeds_order",
            field="refund_amount_minor",
        )
    status = await conn.fetchval(q.SET_REFUNDED, order["id"], refunded)
    if status == "refunded":
        await campaigns.credit_refunded_order(conn, order_id=order["id"])
    transaction_id = None
    booked = await conn.fetchval(
        "SELECT memo FROM ledger_transactions WHERE reference = $1", f"order:{order['id']}"
    )
    if booked is not None:
        rates = booked["split"]
        split = ledger.Split(
            fee_bps=rates["fee_bps"],
            commission_bps=rates["commission_bps"],
            seller_id=rates["seller_id"],
            creator_id=rates["creator_id"],
            cameo_shares=tuple((owner, bps) for owner, bps in rates["cameo_shares"]),
        )
        before = split.amounts(order["amount_minor"] - order["refunded_minor"])
        after = split.amounts(order["amount_minor"] - refunded)
        refund_id = await conn.fetchval(
            "SELECT id FROM refunds WHERE order_id = $1 AND external_refund_id = $2",
            order["id"],
            event.refund_id,
        )
        transaction_id = await ledger.book(
            conn,
            kind="refund",
            reference=f"refund:{refund_id}",
            currency=order["currency"],
            amounts=ledger.difference(before, after),
            memo={
                "order_id": order["id"],
                "clip_id": booked.get("clip_id"),
                "cameo_ids": booked.get("cameo_ids", []),
                "cameo_amounts": {
                    str(cameo_id): later - earlier
                    for cameo_id, earlier, later in zip(
                        booked.get("cameo_ids", []),
                        split.shares(order["amount_minor"] - order["refunded_minor"]),
                        split.shares(order["amount_minor"] - refunded),
                        strict=False,  # (orders booked before cameo_ids was kept have none)
                    )
                },
            },
        )
    return Booking(
        order_id=order["id"],
        status=status,
        attributed=order["clip_id"] is not None,
        clip_id=order["clip_id"],
        transaction_id=transaction_id,
        duplicate=False,
    )


# --- seller analytics ------------------------------------------------------------------------

MAX_ANALYTICS_DAYS = 366


async def analytics(
    conn: Conn,
    cursors: CursorCodec,
    *,
    owner_id: int,
    shop_id: int,
    start: datetime | None,
    end: datetime | None,
    group: str,
    cursor: str | None,
    limit: int,
) -> Analytics:
    """A page of the shop's figures per clip, product or day, in one query."""
    await own_shop_id(conn, owner_id=owner_id, shop_id=shop_id)
    end = end or datetime.now(UTC)
    start = start or end - timedelta(days=30)
    start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))
    if start >= end:
        raise ValidationFailed("from must be before to", code="bad_range", field="from")
    if end - start > timedelta(days=MAX_ANALYTICS_DAYS):
        raise ValidationFailed(
            f"at most {MAX_ANALYTICS_DAYS} days at a time", code="range_too_long", field="to"
        )
    kind = f"analytics:{shop_id}:{group}:{start.isoformat()}:{end.isoformat()}"
    after = str(cursors.decode(kind, cursor)[0]) if cursor else None
    rows = await conn.fetch(q.ANALYTICS, shop_id, start, end, group, after, limit)
    items = []
    for r in rows:
        key: str = r["key"]
        views = r["views"]
        gmv = {c: int(v) for c, v in r["gmv"].items()}
        items.append(
            AnalyticsRow(
                clip_id=int(key) if group == "clip" else None,
                product_id=int(key) if group == "product" else None,
                day=key if group == "day" else None,
                impressions=r["impressions"],
                views=views,
                taps=r["taps"],
                ctr=round(r["taps"] / r["impressions"], 4) if r["impressions"] else None,
                orders=r["orders"],
                conversion_rate=round(r["orders"] / r["taps"], 4) if r["taps"] else None,
                gmv_minor=gmv,
                gmv_per_mille_views={c: round(v * 1000 / views, 2) for c, v in gmv.items()} if views else {},
                commission_minor={c: int(v) for c, v in r["commission"].items()},
            )
        )
    next_cursor = cursors.encode(kind, [rows[-1]["key"]]) if len(rows) == limit else None
    return Analytics(shop_id=shop_id, group=group, from_=start, to=end, items=items, next_cursor=next_cursor)
