"""Shops, products, import, tags, taps, the tracked redirect, order webhooks and the ledger,
through the HTTP API as sellers, creators and shoppers use it."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient
from standardwebhooks.webhooks import Webhook

from backend.app import create_app
from tests.backend.generation.providers.fakes import FakeServer
from tests.conftest import make_settings
from tests.factories import UserFactory, make_clip

SHOP = {"platform": "shopify", "external_id": "aurora", "url": "https://aurora.example.com", "name": "Aurora"}
PRODUCT = {
    "title": "Aurora Travel Mug",
    "url": "https://aurora.example.com/mug",
    "price_minor": 2500,
    "currency": "USD",
}


async def _shop(client, seller, **fields: Any) -> dict[str, Any]:
    body = SHOP | {"external_id": f"shop-{uuid.uuid4().hex[:8]}"} | fields
    r = await client.post("/v1/shops", json=body, headers=seller.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _product(client, seller, shop_id: int, **fields: Any) -> dict[str, Any]:
    r = await client.post(f"/v1/shops/{shop_id}/products", json=PRODUCT | fields, headers=seller.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _signed(
    secret: str, body: dict[str, Any], *, msg_id: str | None = None, at: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, raw.decode()),
        "content-type": "application/json",
    }
    return raw, headers


async def _deliver(client, shop: dict[str, Any], body: dict[str, Any], **kw: Any):
    raw, headers = _signed(shop["webhook_secret"], body, **kw)
    return await client.post(f"/v1/commerce/webhooks/{shop['id']}", content=raw, headers=headers)


async def _ledger_ok(conn) -> None:
    unbalanced = await conn.fetchval(
        "SELECT count(*) FROM (SELECT transaction_id, currency FROM ledger_entries "
        "GROUP BY 1, 2 HAVING sum(amount_minor) <> 0) x"
    )
    assert unbalanced == 0


# --- shops and products ----------------------------------------------------------------------


async def test_a_seller_links_a_shop_and_only_they_see_it(client, users) -> None:
    seller, other = await users.make("seller"), await users.make("other")
    shop = await _shop(client, seller)
    assert shop["webhook_secret"].startswith("whsec_")
    assert shop["webhook_url"].endswith(f"/v1/commerce/webhooks/{shop['id']}")
    listed = (await client.get("/v1/shops", headers=seller.headers)).json()
    assert [s["id"] for s in listed["items"]] == [shop["id"]]
    assert listed["items"][0]["webhook_secret"] is None
    for method, path in [
        ("GET", f"/v1/shops/{shop['id']}"),
        ("PATCH", f"/v1/shops/{shop['id']}"),
        ("DELETE", f"/v1/shops/{shop['id']}"),
        ("GET", f"/v1/shops/{shop['id']}/webhook-secret"),
        ("POST", f"/v1/shops/{shop['id']}/webhook-secret:rotate"),
        ("POST", f"/v1/shops/{shop['id']}/products"),
        ("GET", f"/v1/shops/{shop['id']}/products"),
    ]:
        body = {"name": "mine now"} if method == "PATCH" else PRODUCT if method == "POST" else None
        r = await client.request(method, path, json=body, headers=other.headers)
        assert r.status_code == 404, (method, path, r.text)
    assert (await client.get("/v1/shops", headers=other.headers)).json()["items"] == []
    again = await client.post(
        "/v1/shops", json=SHOP | {"external_id": shop["external_id"]}, headers=other.headers
    )
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")


async def test_rotating_the_secret_replaces_it(client, users) -> None:
    seller = await users.make("seller")
    shop = await _shop(client, seller)
    rotated = (
        await client.post(f"/v1/shops/{shop['id']}/webhook-secret:rotate", headers=seller.headers)
    ).json()
    assert rotated["webhook_secret"] != shop["webhook_secret"]
    shown = (await client.get(f"/v1/shops/{shop['id']}/webhook-secret", headers=seller.headers)).json()
    assert shown["webhook_secret"] == rotated["webhook_secret"]
    old = await _deliver(
        client, shop, {"type": "order.placed", "order_id": "o1", "amount_minor": 100, "currency": "USD"}
    )
    assert old.status_code == 401


async def test_products_by_hand_and_who_sees_them(client, users, conn) -> None:
    seller, creator = await users.make("seller"), await users.make("creator")
    closed = await _shop(client, seller)
    product = await _product(client, seller, closed["id"])
    assert product["source"] == "manual"
    assert product["price_minor"] == 2500
    assert (await client.get(f"/v1/products/{product['id']}", headers=creator.headers)).status_code == 404
    await client.patch(f"/v1/shops/{closed['id']}", json={"allow_affiliates": True}, headers=seller.headers)
    assert (await client.get(f"/v1/products/{product['id']}", headers=creator.headers)).status_code == 200
    assert (
        await client.patch(f"/v1/products/{product['id']}", json={"title": "x"}, headers=creator.headers)
    ).status_code == 404
    bad = await client.post(
        f"/v1/shops/{closed['id']}/products", json=PRODUCT | {"currency": "XYZ"}, headers=seller.headers
    )
    assert bad.status_code == 422
    assert bad.json()["code"] == "unknown_currency"
    for code in ("XTS", "XAU", "DEM"):  # a test code, a metal, a withdrawn currency: not money
        not_money = await client.post(
            f"/v1/shops/{closed['id']}/products", json=PRODUCT | {"currency": code}, headers=seller.headers
        )
        assert not_money.json()["code"] == "unknown_currency", code
    half = await client.post(
        f"/v1/shops/{closed['id']}/products", json={**PRODUCT, "currency": None}, headers=seller.headers
    )
    assert half.status_code == 422
    assert await conn.fetchval("SELECT count(*) FROM products") == 1
    gone = await client.delete(f"/v1/products/{product['id']}", headers=seller.headers)
    assert gone.status_code == 204
    assert (await client.get(f"/v1/products/{product['id']}", headers=seller.headers)).status_code == 404


# --- import ----------------------------------------------------------------------------------

JSON_LD_PAGE = """<!doctype html><html><head><title>Mug | Aurora</title>
<script type="application/ld+json">{"@context": "https://schema.org", "@graph": [
 {"@type": "BreadcrumbList"},
 {"@type": "Product", "name": "Aurora Travel Mug", "description": "Hot for 12 hours.",
  "image": ["https://cdn.example.com/mug.jpg", {"url": "https://cdn.example.com/mug2.jpg"}],
  "brand": {"@type": "Brand", "name": "Aurora"},
  "offers": [{"@type": "Offer", "price": "24.99", "priceCurrency": "USD",
              "availability": "https://schema.org/InStock"}]}]}</script>
</head><body>mug</body></html>"""

OG_PAGE = """<html><head>
<meta property="og:title" content="抹茶セット">
<meta property="og:image" content="https://cdn.example.jp/matcha.jpg">
<meta property="product:price:amount" content="3200">
<meta property="product:price:currency" content="JPY">
<meta property="product:availability" content="out of stock">
</head></html>"""


@pytest.fixture
def product_pages():
    @get("/mug", media_type="text/html")
    async def mug() -> str:
        return JSON_LD_PAGE

    @get("/matcha", media_type="text/html")
    async def matcha() -> str:
        return OG_PAGE

    @get("/nothing", media_type="text/html")
    async def nothing() -> str:
        return "<html><body>no product here</body></html>"

    server = FakeServer(Litestar([mug, matcha, nothing])).start()
    yield server
    server.stop()


@pytest.fixture
async def import_client(database_url, redis_url, tmp_path):
    settings = make_settings(database_url, redis_url, tmp_path, import_allow_private_hosts="127.0.0.1")
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


async def test_import_reads_json_ld_and_opengraph(import_client, conn, product_pages) -> None:
    seller = await UserFactory(conn, import_client).make("seller")
    shop = await _shop(import_client, seller)
    r = await import_client.post(
        f"/v1/shops/{shop['id']}/products:import",
        json={"url": f"{product_pages.url}/mug"},
        headers=seller.headers,
    )
    assert r.status_code == 201, r.text
    mug = r.json()
    assert (mug["title"], mug["price_minor"], mug["currency"], mug["brand"], mug["availability"]) == (
        "Aurora Travel Mug", 2499, "USD", "Aurora", "in_stock",
    )  # fmt: skip
    assert mug["image_urls"] == ["https://cdn.example.com/mug.jpg", "https://cdn.example.com/mug2.jpg"]
    assert mug["source"] == "import"
    matcha = (
        await import_client.post(
            f"/v1/shops/{shop['id']}/products:import",
            json={"url": f"{product_pages.url}/matcha"},
            headers=seller.headers,
        )
    ).json()
    assert (matcha["title"], matcha["price_minor"], matcha["currency"], matcha["availability"]) == (
        "抹茶セット", 3200, "JPY", "out_of_stock",
    )  # fmt: skip
    nothing = await import_client.post(
        f"/v1/shops/{shop['id']}/products:import",
        json={"url": f"{product_pages.url}/nothing"},
        headers=seller.headers,
    )
    assert nothing.status_code == 422
    assert nothing.json()["code"] == "unparseable_product"
    assert await conn.fetchval("SELECT count(*) FROM products") == 2


async def test_import_refuses_private_addresses(client, users, conn) -> None:
    seller = await users.make("seller")
    shop = await _shop(client, seller)
    for url in [
        "http://127.0.0.1:8080/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://10.0.0.2/",
    ]:
        r = await client.post(
            f"/v1/shops/{shop['id']}/products:import", json={"url": url}, headers=seller.headers
        )
        assert r.status_code == 422, (url, r.text)
        assert r.json()["code"] == "url_refused", url
    stranger = await users.make("stranger")
    r = await client.post(
        f"/v1/shops/{shop['id']}/products:import",
        json={"url": "https://example.com/"},
        headers=stranger.headers,
    )
    assert r.status_code == 404  # no probing through someone else's shop
    assert await conn.fetchval("SELECT count(*) FROM products") == 0


# --- tags, taps and the tracked link ---------------------------------------------------------


async def test_tags_taps_and_the_redirect(client, users, conn) -> None:
    seller, creator, viewer = (
        await users.make("seller"),
        await users.make("creator"),
        await users.make("viewer"),
    )
    shop = await _shop(client, seller, allow_affiliates=True)
    product = await _product(
        client, seller, shop["id"], url="https://aurora.example.com/mug?ref=x&utm_source=old"
    )
    closed = await _shop(client, seller)
    closed_product = await _product(client, seller, closed["id"])
    clip = await make_clip(conn, client, creator, caption="my mug", visibility="public")

    refused = await client.post(
        f"/v1/clips/{clip['id']}/product-tags",
        json={"product_id": closed_product["id"]},
        headers=creator.headers,
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "product_not_taggable"
    not_mine = await client.post(
        f"/v1/clips/{clip['id']}/product-tags", json={"product_id": product["id"]}, headers=viewer.headers
    )
    assert not_mine.status_code == 403
    assert not_mine.json()["code"] == "not_clip_author"
    bad_range = await client.post(
        f"/v1/clips/{clip['id']}/product-tags",
        json={"product_id": product["id"], "start_ms": 900, "end_ms": 100},
        headers=creator.headers,
    )
    assert bad_range.status_code == 422
    assert await conn.fetchval("SELECT count(*) FROM product_tags") == 0

    tagged = await client.post(
        f"/v1/clips/{clip['id']}/product-tags",
        json={"product_id": product["id"], "start_ms": 0, "end_ms": 1000, "x": 0.5, "y": 0.8},
        headers=creator.headers,
    )
    assert tagged.status_code == 201, tagged.text
    [tag] = tagged.json()["product_tags"]
    assert (tag["product_id"], tag["title"], tag["price_minor"]) == (product["id"], "Aurora Travel Mug", 2500)
    seen = (await client.get(f"/v1/clips/{clip['id']}", headers=viewer.headers)).json()
    assert seen["product_tags"] == [tag]  # every clip response carries its tags

    first = await client.post(f"/v1/clips/{clip['id']}/product-tags/{tag['id']}/tap", headers=viewer.headers)
    again = await client.post(f"/v1/clips/{clip['id']}/product-tags/{tag['id']}/tap", headers=viewer.headers)
    assert first.status_code == again.status_code == 200
    assert first.json()["tap_id"] == again.json()["tap_id"]
    assert await conn.fetchval("SELECT count(*) FROM taps") == 1  # once per viewer, tag and day

    link = urlsplit(first.json()["url"])
    followed = await client.get(link.path, follow_redirects=False)
    assert followed.status_code == 302
    target = urlsplit(followed.headers["location"])
    params = parse_qs(target.query)
    assert target.netloc == "aurora.example.com"
    assert params["ref"] == ["x"]
    assert params["utm_source"] == ["riffle"]
    assert params["utm_campaign"] == [str(clip["id"])]
    assert params["riffle_tap"] == [str(first.json()["tap_id"])]

    token = link.path.rsplit("/", 1)[1]
    forged = await client.get(f"/r/{token[:-2]}xx", follow_redirects=False)
    assert forged.status_code == 400
    assert forged.json()["code"] == "invalid_tap_token"


async def test_an_expired_link_and_an_invisible_clip(database_url, redis_url, tmp_path, conn) -> None:
    settings = make_settings(database_url, redis_url, tmp_path, tap_token_ttl_s=60)
    async with AsyncTestClient(app=create_app(settings)) as client:
        users = UserFactory(conn, client)
        seller, viewer = await users.make("seller"), await users.make("viewer")
        shop = await _shop(client, seller)
        product = await _product(client, seller, shop["id"])
        private = await make_clip(conn, client, seller, visibility="private")
        tagged = await client.post(
            f"/v1/clips/{private['id']}/product-tags",
            json={"product_id": product["id"]},
            headers=seller.headers,
        )
        tag_id = tagged.json()["product_tags"][0]["id"]
        hidden = await client.post(
            f"/v1/clips/{private['id']}/product-tags/{tag_id}/tap", headers=viewer.headers
        )
        assert hidden.status_code == 404
        own = (
            await client.post(f"/v1/clips/{private['id']}/product-tags/{tag_id}/tap", headers=seller.headers)
        ).json()
        app = client.app
        cursors = app.state.runtime.cursors
        tap_id, clip_id, tag, viewer_id, issued = cursors.decode("tap", own["url"].rsplit("/", 1)[1])
        stale = cursors.encode("tap", [tap_id, clip_id, tag, viewer_id, issued - 120])
        expired = await client.get(f"/r/{stale}", follow_redirects=False)
        assert expired.status_code == 400
        assert expired.json()["code"] == "tap_token_expired"


# --- orders and the ledger -------------------------------------------------------------------


async def _tapped(client, users, conn, *, commission_bps: int = 1000, cameo_ids: list[int] | None = None):
    seller, creator, buyer = (
        await users.make("seller"),
        await users.make("creator"),
        await users.make("buyer"),
    )
    shop = await _shop(client, seller, allow_affiliates=True, commission_bps=commission_bps)
    product = await _product(client, seller, shop["id"])
    clip = await make_clip(conn, client, creator, visibility="public", cameo_ids=cameo_ids or [])
    tag = (
        await client.post(
            f"/v1/clips/{clip['id']}/product-tags",
            json={"product_id": product["id"]},
            headers=creator.headers,
        )
    ).json()["product_tags"][0]
    tap = (
        await client.post(f"/v1/clips/{clip['id']}/product-tags/{tag['id']}/tap", headers=buyer.headers)
    ).json()
    return seller, creator, buyer, shop, product, clip, tap


async def test_an_attributed_order_is_booked_and_split(client, users, conn) -> None:
    seller, creator, buyer, shop, product, clip, _tap = await _tapped(client, users, conn)
    order = {"type": "order.placed", "order_id": "A-1", "product_id": product["id"], "amount_minor": 2500,
             "currency": "USD", "buyer_id": buyer.id}  # fmt: skip
    r = await _deliver(client, shop, order)
    assert r.status_code == 200, r.text
    booked = r.json()
    assert booked["attributed"]
    assert booked["clip_id"] == clip["id"]
    assert not booked["duplicate"]
    await _ledger_ok(conn)
    earnings = (await client.get("/v1/me/earnings", headers=creator.headers)).json()
    assert earnings["balances"] == [{"account": "creator_earnings", "currency": "USD", "balance_minor": 250}]
    owed = (await client.get("/v1/me/earnings", headers=seller.headers)).json()
    assert owed["balances"] == [
        {"account": "shop_payable", "currency": "USD", "balance_minor": -375}
    ]  # 10% + 5%
    assert (await client.get("/v1/me/earnings", headers=buyer.headers)).json()["balances"] == []

    # Refunded in two parts: the second brings every account back to zero exactly.
    part = {"type": "order.refunded", "order_id": "A-1", "refund_id": "R-1", "refund_amount_minor": 999}
    assert (await _deliver(client, shop, part)).json()["status"] == "partially_refunded"
    rest = {"type": "order.refunded", "order_id": "A-1", "refund_id": "R-2", "refund_amount_minor": 1501}
    assert (await _deliver(client, shop, rest)).json()["status"] == "refunded"
    await _ledger_ok(conn)
    sums = await conn.fetch(
        "SELECT a.kind, sum(e.amount_minor) AS s "
        "FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id GROUP BY 1"
    )
    assert all(r["s"] == 0 for r in sums)
    too_much = {"type": "order.refunded", "order_id": "A-1", "refund_id": "R-3", "refund_amount_minor": 1}
    assert (await _deliver(client, shop, too_much)).status_code == 422


async def test_a_licensed_cameo_earns_its_fee_and_its_share_in_its_own_statement(client, users, conn) -> None:
    from tests.cameo.test_cameos import cameo

    star = await users.make("star")
    made = await cameo(client, conn, star, consent="everyone")
    licence = {"price_minor": 100, "unit": "use", "currency": "USD", "revenue_share_percent": 20}
    r = await client.put(f"/v1/cameos/{made['id']}/licence", json=licence, headers=star.headers)
    assert r.status_code == 200, r.text
    _, creator, buyer, shop, product, clip, _ = await _tapped(client, users, conn, cameo_ids=[made["id"]])
    order = {"type": "order.placed", "order_id": "S-1", "product_id": product["id"], "amount_minor": 10000,
             "currency": "USD", "buyer_id": buyer.id}  # fmt: skip
    assert (await _deliver(client, shop, order)).json()["attributed"]

    statement = (await client.get(f"/v1/cameos/{made['id']}/earnings", headers=star.headers)).json()
    # 10% commission of 10000 is 1000; the cameo's owner takes 20% of it; the licence fee is 100.
    assert statement["totals"] == [{"currency": "USD", "amount_minor": 300, "uses": 1}]
    assert [(e["kind"], e["amount_minor"], e["clip_id"]) for e in statement["entries"]] == [
        ("revenue_share", 200, clip["id"]),
        ("licence", 100, clip["id"]),
    ]
    assert statement["entries"][0]["user"]["id"] == creator.id
    assert (await client.get(f"/v1/cameos/{made['id']}/earnings", headers=creator.headers)).status_code == 404

    refund = {"type": "order.refunded", "order_id": "S-1", "refund_id": "SR-1", "refund_amount_minor": 10000}
    assert (await _deliver(client, shop, refund)).status_code == 200
    statement = (await client.get(f"/v1/cameos/{made['id']}/earnings", headers=star.headers)).json()
    assert statement["totals"] == [{"currency": "USD", "amount_minor": 100, "uses": 1}]
    assert statement["entries"][0]["kind"] == "refund"
    assert statement["entries"][0]["amount_minor"] == -200
    mine = (await client.get("/v1/me/earnings", headers=creator.headers)).json()["balances"]
    assert {b["account"]: b["balance_minor"] for b in mine} == {"creator_earnings": -100}  # the fee it paid
    await _ledger_ok(conn)


async def test_two_cameos_of_one_owner_in_a_clip_each_show_their_own_share(client, users, conn) -> None:
    from tests.cameo.test_cameos import cameo

    star = await users.make("star")
    made = [await cameo(client, conn, star, consent="everyone") for _ in range(2)]
    for one, percent in zip(made, (20, 10), strict=True):
        licence = {"price_minor": 0, "unit": "use", "currency": "USD", "revenue_share_percent": percent}
        r = await client.put(f"/v1/cameos/{one['id']}/licence", json=licence, headers=star.headers)
        assert r.status_code == 200, r.text
    _, _, buyer, shop, product, _, _ = await _tapped(client, users, conn, cameo_ids=[m["id"] for m in made])
    order = {"type": "order.placed", "order_id": "T-1", "product_id": product["id"], "amount_minor": 10000,
             "currency": "USD", "buyer_id": buyer.id}  # fmt: skip
    assert (await _deliver(client, shop, order)).json()["attributed"]

    async def shown(one) -> tuple[int, list[int]]:
        r = await client.get(f"/v1/cameos/{one['id']}/earnings", headers=star.headers)
        statement = r.json()
        return statement["totals"][0]["amount_minor"], [e["amount_minor"] for e in statement["entries"]]

    # A commission of 1000: 20% of it for the first cameo, 10% for the second, in one entry.
    assert await shown(made[0]) == (200, [200])
    assert await shown(made[1]) == (100, [100])
    star_balance = (await client.get("/v1/me/earnings", headers=star.headers)).json()["balances"]
    assert star_balance == [{"account": "cameo_earnings", "currency": "USD", "balance_minor": 300}]

    half = {"type": "order.refunded", "order_id": "T-1", "refund_id": "TR-1", "refund_amount_minor": 5000}
    assert (await _deliver(client, shop, half)).status_code == 200
    assert await shown(made[0]) == (100, [-100, 200])
    assert await shown(made[1]) == (50, [-50, 100])
    await _ledger_ok(conn)


async def test_bad_signatures_replays_stale_times_and_unknown_currencies_book_nothing(
    client, users, conn
) -> None:
    seller, _, buyer, shop, product, _, _ = await _tapped(client, users, conn)
    order = {"type": "order.placed", "order_id": "B-1", "product_id": product["id"], "amount_minor": 1000,
             "currency": "USD", "buyer_id": buyer.id}  # fmt: skip
    raw, headers = _signed(shop["webhook_secret"], order)
    tampered = raw.replace(b"1000", b"9000")
    assert (
        await client.post(f"/v1/commerce/webhooks/{shop['id']}", content=tampered, headers=headers)
    ).status_code == 401
    other = await _shop(client, seller)
    assert (
        await client.post(f"/v1/commerce/webhooks/{other['id']}", content=raw, headers=headers)
    ).status_code == 401
    stale = await _deliver(client, shop, order, at=datetime.now(UTC) - timedelta(minutes=10))
    assert stale.status_code == 401
    for code in ("ZZZ", "XTS"):
        unknown = await _deliver(client, shop, order | {"currency": code})
        assert unknown.status_code == 422
        assert unknown.json()["code"] == "unknown_currency"
    mismatch = await _deliver(client, shop, order | {"currency": "EUR"})
    assert mismatch.status_code == 422
    assert mismatch.json()["code"] == "currency_mismatch"
    assert (
        await client.post("/v1/commerce/webhooks/999999", content=raw, headers=headers)
    ).status_code == 404
    assert await conn.fetchval("SELECT count(*) FROM orders") == 0
    assert await conn.fetchval("SELECT count(*) FROM ledger_entries") == 0

    ok = await client.post(f"/v1/commerce/webhooks/{shop['id']}", content=raw, headers=headers)
    assert ok.status_code == 200
    replay = await client.post(f"/v1/commerce/webhooks/{shop['id']}", content=raw, headers=headers)
    assert replay.status_code == 409
    assert replay.json()["code"] == "replayed"
    assert await conn.fetchval("SELECT count(*) FROM ledger_transactions") == 1


async def test_an_order_without_a_tap_in_the_window_earns_no_commission(client, users, conn) -> None:
    _, creator, buyer, shop, product, clip, tap = await _tapped(client, users, conn)
    # The creator taps their own tag and buys: no commission on their own purchase.
    tag_id = (await client.get(f"/v1/clips/{clip['id']}")).json()["product_tags"][0]["id"]
    own = await client.post(f"/v1/clips/{clip['id']}/product-tags/{tag_id}/tap", headers=creator.headers)
    assert own.status_code in (200, 201), own.text
    self_order = {"type": "order.placed", "order_id": "C-0", "product_id": product["id"],
                  "amount_minor": 1000, "currency": "USD", "buyer_id": creator.id}  # fmt: skip
    assert not (await _deliver(client, shop, self_order)).json()["attributed"]
    await conn.execute("DELETE FROM orders")
    await conn.execute("UPDATE taps SET created_at = now() - interval '8 days'")
    order = {"type": "order.placed", "order_id": "C-1", "product_id": product["id"], "amount_minor": 1000,
             "currency": "USD", "buyer_id": buyer.id, "tap_id": tap["tap_id"]}  # fmt: skip
    booked = (await _deliver(client, shop, order)).json()
    assert not booked["attributed"]
    assert booked["transaction_id"] is None
    assert await conn.fetchval("SELECT count(*) FROM orders") == 1
    assert await conn.fetchval("SELECT count(*) FROM ledger_entries") == 0
    # A buyer id the shop holds for a deleted (or never existing) account: the order is still
    # kept, unattributed, without a buyer.
    gone = await _deliver(client, shop, order | {"order_id": "C-2", "buyer_id": 987654321, "tap_id": None})
    assert gone.status_code == 200, gone.text
    assert not gone.json()["attributed"]
    assert await conn.fetchval("SELECT buyer_id FROM orders WHERE external_order_id = 'C-2'") is None


async def test_the_same_order_delivered_twice_at_once_is_booked_once(
    tmp_path, database_url, redis_url, conn
) -> None:
    """Real concurrent requests against a live server: two deliveries (different webhook ids)
    of one order, many times over; each order is booked exactly once."""
    from tests.live import Server

    settings = make_settings(database_url, redis_url, tmp_path)
    async with AsyncTestClient(app=create_app(settings)) as client:
        users = UserFactory(conn, client)
        _, _, buyer, shop, product, _, _ = await _tapped(client, users, conn)
    with Server(settings) as server:
        import httpx

        async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:

            async def deliver(order_id: str) -> int:
                raw, headers = _signed(shop["webhook_secret"], {
                    "type": "order.placed", "order_id": order_id, "product_id": product["id"],
                    "amount_minor": 1999, "currency": "USD", "buyer_id": buyer.id,
                })  # fmt: skip
                r = await http.post(f"/v1/commerce/webhooks/{shop['id']}", content=raw, headers=headers)
                assert r.status_code == 200, r.text
                return int(r.json()["duplicate"])

            duplicates = await asyncio.gather(*[deliver(f"D-{i // 2}") for i in range(20)])
    assert sum(duplicates) == 10
    assert await conn.fetchval("SELECT count(*) FROM orders") == 10
    assert await conn.fetchval("SELECT count(*) FROM ledger_transactions WHERE kind = 'order'") == 10
    await _ledger_ok(conn)


ENTRY = (
    "INSERT INTO ledger_entries (transaction_id, account_id, amount_minor, currency) "
    "VALUES ($1, $2, $3, 'USD')"
)
TRANSACTION = "INSERT INTO ledger_transactions (kind, reference) VALUES ('t', $1) RETURNING id"


async def _one_sided(conn, account: int) -> None:
    async with conn.transaction():
        await conn.execute(ENTRY, await conn.fetchval(TRANSACTION, "x"), account, 5)


async def test_the_ledger_refuses_unbalanced_and_edited_entries(conn) -> None:
    import asyncpg

    account = await conn.fetchval(
        "INSERT INTO ledger_accounts (kind, currency) VALUES ('platform_fees', 'USD') RETURNING id"
    )
    with pytest.raises(asyncpg.CheckViolationError):
        await _one_sided(conn, account)
    async with conn.transaction():
        tx = await conn.fetchval(TRANSACTION, "y")
        for amount in (5, -5):
            await conn.execute(ENTRY, tx, account, amount)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute("UPDATE ledger_entries SET amount_minor = 6 WHERE amount_minor = 5")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await conn.execute("DELETE FROM ledger_entries")


# --- seller analytics ------------------------------------------------------------------------


async def test_seller_analytics_per_clip_product_and_day(client, users, conn) -> None:
    seller, creator, buyer, shop, product, clip, _ = await _tapped(client, users, conn)
    now = datetime.now(UTC)
    await conn.executemany(
        "INSERT INTO events (user_id, client_event_id, type, clip_id, at) VALUES ($1, $2, $3, $4, $5)",
        [(buyer.id, f"e{i}", "impression" if i < 40 else "watch", clip["id"], now) for i in range(60)],
    )
    order = {"type": "order.placed", "order_id": "AN-1", "product_id": product["id"], "amount_minor": 5000,
             "currency": "USD", "buyer_id": buyer.id}  # fmt: skip
    assert (await _deliver(client, shop, order)).status_code == 200
    span = {"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(days=1)).isoformat()}
    for group, key, value in [("clip", "clip_id", clip["id"]), ("product", "product_id", product["id"]),
                              ("day", "day", now.date().isoformat())]:  # fmt: skip
        r = await client.get(
            f"/v1/shops/{shop['id']}/analytics", params=span | {"group": group}, headers=seller.headers
        )
        assert r.status_code == 200, r.text
        [row] = r.json()["items"]
        assert row[key] == value
        assert (row["impressions"], row["views"], row["taps"], row["orders"]) == (40, 20, 1, 1)
        assert row["ctr"] == 0.025
        assert row["conversion_rate"] == 1.0
        assert row["gmv_minor"] == {"USD": 5000}
        assert row["gmv_per_mille_views"] == {"USD": 250000.0}
        assert row["commission_minor"] == {"USD": 500}
    other = await client.get(f"/v1/shops/{shop['id']}/analytics", params=span, headers=creator.headers)
    assert other.status_code == 404
    backwards = {"from": span["to"], "to": span["from"]}
    bad = await client.get(f"/v1/shops/{shop['id']}/analytics", params=backwards, headers=seller.headers)
    assert bad.status_code == 422
    too_long = {"from": (now - timedelta(days=400)).isoformat(), "to": now.isoformat()}
    bad = await client.get(f"/v1/shops/{shop['id']}/analytics", params=too_long, headers=seller.headers)
    assert bad.status_code == 422
    wrong_group = await client.get(
        f"/v1/shops/{shop['id']}/analytics", params=span | {"group": "month"}, headers=seller.headers
    )
    assert wrong_group.status_code in (400, 422)


# --- campaigns -------------------------------------------------------------------------------


async def _campaign(client, who, body: dict[str, Any]) -> Any:
    return await client.post(
        "/v1/campaigns", json=body, headers=who.headers | {"Idempotency-Key": uuid.uuid4().hex}
    )


async def test_a_pay_per_order_budget_is_never_overspent(tmp_path, database_url, redis_url, conn) -> None:
    """Twenty attributed orders at once against a budget for two and a half: exactly the budget
    is spent, by real concurrent requests to a live server."""
    from tests.live import Server

    settings = make_settings(database_url, redis_url, tmp_path)
    async with AsyncTestClient(app=create_app(settings)) as client:
        users = UserFactory(conn, client)
        seller, _, buyer, shop, product, clip, _ = await _tapped(client, users, conn)
        r = await _campaign(
            client,
            seller,
            {
                "clip_id": clip["id"],
                "billing": "cpa",
                "rate_minor": 100,
                "currency": "USD",
                "budget_minor": 250,
            },
        )
        assert r.status_code == 201, r.text
        campaign = r.json()
    with Server(settings) as server:
        import httpx

        async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:

            async def order(n: int) -> None:
                raw, headers = _signed(shop["webhook_secret"], {
                    "type": "order.placed", "order_id": f"CPA-{n}", "product_id": product["id"],
                    "amount_minor": 1000, "currency": "USD", "buyer_id": buyer.id,
                })  # fmt: skip
                r = await http.post(f"/v1/commerce/webhooks/{shop['id']}", content=raw, headers=headers)
                assert r.status_code == 200, r.text

            await asyncio.gather(*[order(n) for n in range(20)])
    async with AsyncTestClient(app=create_app(settings)) as client:
        seen = (await client.get(f"/v1/campaigns/{campaign['id']}", headers=seller.headers)).json()
    assert (seen["spent_minor"], seen["remaining_minor"], seen["status"]) == (250, 0, "exhausted")
    charged = await conn.fetchval(
        "SELECT sum(e.amount_minor) FROM ledger_entries e "
        "JOIN ledger_transactions t ON t.id = e.transaction_id "
        "WHERE t.kind = 'campaign_charge' AND e.amount_minor > 0"
    )
    assert charged == 250
    await _ledger_ok(conn)
    # An order refunded in full was no result: its charge goes back and the campaign runs again.
    charged_order = await conn.fetchval(
        "SELECT o.external_order_id FROM orders o JOIN ledger_transactions t "
        "ON t.reference = 'campaign:' || $1::bigint || ':order:' || o.id LIMIT 1",
        campaign["id"],
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        refund = {"type": "order.refunded", "order_id": charged_order, "refund_id": "R-1",
                  "refund_amount_minor": 1000, "currency": "USD"}  # fmt: skip
        for _ in range(2):  # delivered twice, credited once
            r = await _deliver(client, shop, refund)
            assert r.status_code == 200, r.text
        seen = (await client.get(f"/v1/campaigns/{campaign['id']}", headers=seller.headers)).json()
    assert (seen["spent_minor"], seen["status"]) == (150, "active")
    await _ledger_ok(conn)


async def test_campaigns_bill_views_by_the_thousand_and_end_with_a_refund(client, users, conn) -> None:
    from backend.commerce import campaigns

    advertiser, creator, stranger = (
        await users.make("brand"),
        await users.make("creator"),
        await users.make("stranger"),
    )
    clip = await make_clip(conn, client, creator, visibility="public")
    body = {
        "clip_id": clip["id"],
        "billing": "cpm",
        "rate_minor": 300,
        "currency": "EUR",
        "budget_minor": 1000,
    }
    key = {"Idempotency-Key": uuid.uuid4().hex}
    made = await client.post("/v1/campaigns", json=body, headers=advertiser.headers | key)
    again = await client.post("/v1/campaigns", json=body, headers=advertiser.headers | key)
    assert made.status_code == 201
    assert again.json()["id"] == made.json()["id"]  # the same key makes it once
    campaign = made.json()
    await conn.execute(
        "INSERT INTO clip_stats (clip_id, impressions) VALUES ($1, 2500) "
        "ON CONFLICT (clip_id) DO UPDATE SET impressions = clip_stats.impressions + 2500",
        clip["id"],
    )
    async with conn.transaction():
        assert await campaigns.bill_views(conn) == 1
    async with conn.transaction():
        assert await campaigns.bill_views(conn) == 0  # the 500 left wait for the next thousand
    seen = (await client.get(f"/v1/campaigns/{campaign['id']}", headers=advertiser.headers)).json()
    assert seen["spent_minor"] == 600
    assert (await client.get(f"/v1/campaigns/{campaign['id']}", headers=stranger.headers)).status_code == 404
    assert (
        await client.post(f"/v1/campaigns/{campaign['id']}/end", headers=stranger.headers)
    ).status_code == 404
    paused = await client.post(f"/v1/campaigns/{campaign['id']}/pause", headers=advertiser.headers)
    assert paused.json()["status"] == "paused"
    ended = await client.post(f"/v1/campaigns/{campaign['id']}/end", headers=advertiser.headers)
    assert ended.json()["status"] == "ended"
    assert (
        await client.post(f"/v1/campaigns/{campaign['id']}/resume", headers=advertiser.headers)
    ).status_code == 409
    balances = (await client.get("/v1/me/earnings", headers=advertiser.headers)).json()["balances"]
    assert {b["account"]: b["balance_minor"] for b in balances} == {
        "advertiser_budget": 0,
        "advertiser_funding": -600,
    }
    await _ledger_ok(conn)

    private = await make_clip(conn, client, creator, visibility="private")
    hidden = await _campaign(client, advertiser, body | {"clip_id": private["id"]})
    assert hidden.status_code == 404
    both = await _campaign(client, advertiser, body | {"product_id": 1})
    assert both.status_code == 422
    no_key = await client.post("/v1/campaigns", json=body, headers=advertiser.headers)
    assert no_key.status_code in (400, 422)
