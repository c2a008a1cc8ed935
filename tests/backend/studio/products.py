"""Shops and products made with SQL until the commerce API that creates them lands."""

from __future__ import annotations

import itertools
from typing import Any

from backend.db import Conn
from tests.factories import User

_seq = itertools.count(1)


async def make_shop(conn: Conn, owner: User, *, allow_affiliates: bool = False) -> int:
    n = next(_seq)
    shop_id: int = await conn.fetchval(
        "INSERT INTO shops (owner_id, platform, external_id, url, name, webhook_secret, allow_affiliates) "
        "VALUES ($1, 'own_site', $2, $3, $4, 'whsec_dGVzdA==', $5) RETURNING id",
        owner.id,
        f"shop-{n}",
        f"https://shop{n}.example.com",
        f"Shop {n}",
        allow_affiliates,
    )
    return shop_id


async def make_product(
    conn: Conn, owner: User, *, shop_id: int | None = None, allow_affiliates: bool = False, **fields: Any
) -> int:
    shop_id = shop_id or await make_shop(conn, owner, allow_affiliates=allow_affiliates)
    values: dict[str, Any] = {
        "title": "Aurora Travel Mug",
        "description": (
            "Keeps coffee hot for 12 hours. Leak-proof lid that opens with one hand. "
            "Fits every car cup holder."
        ),
        "url": "https://shop.example.com/mug",
        "brand": "Aurora",
        "price_minor": 2499,
        "currency": "USD",
        **fields,
    }
    product_id: int = await conn.fetchval(
        "INSERT INTO products (shop_id, title, description, url, brand, price_minor, currency) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        shop_id,
        values["title"],
        values["description"],
        values["url"],
        values["brand"],
        values["price_minor"],
        values["currency"],
    )
    return product_id
