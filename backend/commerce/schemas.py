"""Request and response bodies of shops, products, product tags, taps, order webhooks and
earnings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from backend.accounts.schemas import Input

Platform = Literal["tiktok_shop", "shopify", "amazon", "own_site"]
Availability = Literal["in_stock", "out_of_stock", "preorder", "unknown"]
Url = Annotated[str, msgspec.Meta(min_length=8, max_length=2000, pattern=r"^https?://\S+$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Bps = Annotated[int, msgspec.Meta(ge=0, le=10000, description="basis points (1/100 of a percent)")]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217")]
Minor = Annotated[int, msgspec.Meta(ge=0, le=10**13, description="integer minor units (cents)")]
Ms = Annotated[int, msgspec.Meta(ge=0, le=600_000)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]


class ShopIn(Input):
    platform: Platform
    external_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    url: Url
    name: Name
    allow_affiliates: bool = False
    commission_bps: Bps = 1000


class ShopUpdate(Input):
    url: Url | None = None
    name: Name | None = None
    allow_affiliates: bool | None = None
    commission_bps: Bps | None = None


class Shop(msgspec.Struct, kw_only=True):
    id: int
    platform: Platform
    external_id: str
    url: str
    name: str
    allow_affiliates: bool
    commission_bps: int
    created_at: datetime
    webhook_url: str
    # Shown when the shop is created and by the webhook-secret route, never in lists.
    webhook_secret: str | None = None


class WebhookSecret(msgspec.Struct, kw_only=True):
    webhook_url: str
    webhook_secret: str


class ProductIn(Input):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    url: Url
    description: Annotated[str, msgspec.Meta(max_length=5000)] = ""
    image_urls: Annotated[list[Url], msgspec.Meta(max_length=10)] = msgspec.field(default_factory=list)
    brand: Annotated[str, msgspec.Meta(min_length=1, max_length=120)] | None = None
    price_minor: Minor | None = None
    currency: Currency | None = None
    availability: Availability = "unknown"
    commission_bps: Bps | None = None


class ProductUpdate(Input):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=300)] | None = None
    url: Url | None = None
    description: Annotated[str, msgspec.Meta(max_length=5000)] | None = None
    image_urls: Annotated[list[Url], msgspec.Meta(max_length=10)] | None = None
    brand: Annotated[str, msgspec.Meta(min_length=1, max_length=120)] | None = None
    price_minor: Minor | None = None
    currency: Currency | None = None
    availability: Availability | None = None
    commission_bps: Bps | None = None


class ImportIn(Input):
    url: Url


class Product(msgspec.Struct, kw_only=True):
    id: int
    shop_id: int
    title: str
    description: str
    url: str
    image_urls: list[str]
    brand: str | None
    price_minor: int | None
    currency: str | None
    availability: Availability
    commission_bps: int | None
    source: Literal["manual", "import"]
    created_at: datetime
    updated_at: datetime


class TagIn(Input):
    product_id: int
    start_ms: Ms | None = None
    end_ms: Ms | None = None
    x: Fraction | None = None
    y: Fraction | None = None


class Tap(msgspec.Struct, kw_only=True):
    tap_id: int
    url: str
    expires_at: datetime


class OrderEvent(msgspec.Struct, kw_only=True):
    """What a shop posts to its webhook (Standard Webhooks signed)."""

    type: Literal["order.placed", "order.refunded"]
    order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    amount_minor: Minor = 0
    currency: Annotated[str, msgspec.Meta(min_length=1, max_length=8)] = ""
    product_id: int | None = None
    quantity: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1
    placed_at: datetime | None = None
    tap_id: int | None = None
    buyer_id: int | None = None
    refund_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    refund_amount_minor: Annotated[int, msgspec.Meta(ge=1, le=10**13)] | None = None


class Booking(msgspec.Struct, kw_only=True):
    order_id: int
    status: str
    attributed: bool
    clip_id: int | None
    transaction_id: int | None
    duplicate: bool


class Balance(msgspec.Struct, kw_only=True):
    account: str
    currency: str
    balance_minor: int


class Entry(msgspec.Struct, kw_only=True):
    id: int
    account: str
    amount_minor: int
    currency: str
    kind: str
    reference: str
    created_at: datetime


class Earnings(msgspec.Struct, kw_only=True):
    balances: list[Balance]
    entries: list[Entry]
    next_cursor: str | None = None


class AnalyticsRow(msgspec.Struct, kw_only=True, omit_defaults=True):
    clip_id: int | None = None
    product_id: int | None = None
    day: str | None = None  # YYYY-MM-DD (UTC)
    impressions: int
    views: int
    taps: int
    ctr: float | None  # taps per impression
    orders: int
    conversion_rate: float | None  # orders per tap
    gmv_minor: dict[str, int]  # per currency, net of refunds
    gmv_per_mille_views: dict[str, float]
    commission_minor: dict[str, int]


class Analytics(msgspec.Struct, kw_only=True):
    shop_id: int
    group: str
    from_: datetime = msgspec.field(name="from")
    to: datetime
    items: list[AnalyticsRow]
    next_cursor: str | None = None


class CampaignIn(Input):
    billing: Literal["cpm", "cpa"]
    rate_minor: Annotated[
        int, msgspec.Meta(ge=1, le=10**9, description="per thousand views (cpm) or per order (cpa)")
    ]
    currency: Currency
    budget_minor: Annotated[int, msgspec.Meta(ge=1, le=10**12)]
    clip_id: int | None = None
    product_id: int | None = None


class Campaign(msgspec.Struct, kw_only=True):
    id: int
    clip_id: int | None
    product_id: int | None
    billing: Literal["cpm", "cpa"]
    rate_minor: int
    currency: str
    budget_minor: int
    spent_minor: int
    remaining_minor: int
    status: Literal["active", "paused", "exhausted", "ended"]
    created_at: datetime
    updated_at: datetime
