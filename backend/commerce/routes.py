"""HTTP routes of shops, products, product tags, taps, the tracked redirect, shops' order
webhooks and earnings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Redirect

from backend.clips.schemas import Clip
from backend.clips.service import Signer
from backend.commerce import campaigns, ledger, service
from backend.commerce.schemas import (
    Analytics,
    Balance,
    Booking,
    Campaign,
    CampaignIn,
    Earnings,
    Entry,
    ImportIn,
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
from backend.errors import BadRequest, ValidationFailed, problems
from backend.generation.routes import IdempotencyKey
from backend.idempotency import require_key
from backend.pagination import CursorParam, Limit, Page, cursor_id, id_page
from backend.ratelimit import Rule, enforce
from backend.runtime import (
    ConnDep,
    CursorsDep,
    LimiterDep,
    SettingsDep,
    SigningKeyDep,
    ViewerDep,
)
from backend.webhooks import WebhookRefused, verify_standard_webhook

IMPORTS_PER_HOUR = Rule("product-imports", 60, 3600)
TAPS_PER_HOUR = Rule("taps", 600, 3600)


class ShopController(Controller):
    path = "/v1/shops"
    tags = ["commerce"]

    @post(
        "",
        status_code=201,
        summary="Link a shop",
        description="The answer carries the shop's webhook secret (Standard Webhooks) for its order webhook.",
        responses=problems(400, 401, 409, 422),
    )
    async def create(
        self, conn: ConnDep, viewer: ViewerDep, settings: SettingsDep, data: JSONBody[ShopIn]
    ) -> Shop:
        return await service.create_shop(conn, settings, owner_id=viewer.user_id, data=data)

    @get("", summary="Your shops, newest first", responses=problems(400, 401))
    async def mine(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        cursors: CursorsDep,
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Shop]:
        before = cursor_id(cursors, "shops", cursor)
        items = await service.my_shops(conn, settings, owner_id=viewer.user_id, before_id=before, limit=limit)
        return id_page(cursors, "shops", items, limit)

    @get("/{shop_id:int}", summary="One of your shops", responses=problems(401, 404))
    async def get_one(
        self, conn: ConnDep, viewer: ViewerDep, settings: SettingsDep, shop_id: FromPath[int]
    ) -> Shop:
        return await service.own_shop(conn, settings, owner_id=viewer.user_id, shop_id=shop_id)

    @patch("/{shop_id:int}", summary="Change a shop", responses=problems(400, 401, 404, 422))
    async def update(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        shop_id: FromPath[int],
        data: JSONBody[ShopUpdate],
    ) -> Shop:
        return await service.update_shop(conn, settings, owner_id=viewer.user_id, shop_id=shop_id, data=data)

    @delete("/{shop_id:int}", summary="Unlink a shop and its products", responses=problems(401, 404))
    async def remove(self, conn: ConnDep, viewer: ViewerDep, shop_id: FromPath[int]) -> None:
        await service.delete_shop(conn, owner_id=viewer.user_id, shop_id=shop_id)

    @get(
        "/{shop_id:int}/webhook-secret",
        summary="The shop's webhook URL and secret",
        responses=problems(401, 404),
    )
    async def secret(
        self, conn: ConnDep, viewer: ViewerDep, settings: SettingsDep, shop_id: FromPath[int]
    ) -> WebhookSecret:
        return await service.webhook_secret(
            conn, settings, owner_id=viewer.user_id, shop_id=shop_id, rotate=False
        )

    @post(
        "/{shop_id:int}/webhook-secret:rotate",
        status_code=200,
        summary="Replace the shop's webhook secret",
        description="The old secret stops working at once.",
        responses=problems(401, 404),
    )
    async def rotate(
        self, conn: ConnDep, viewer: ViewerDep, settings: SettingsDep, shop_id: FromPath[int]
    ) -> WebhookSecret:
        return await service.webhook_secret(
            conn, settings, owner_id=viewer.user_id, shop_id=shop_id, rotate=True
        )

    @post(
        "/{shop_id:int}/products",
        status_code=201,
        summary="Add a product",
        responses=problems(400, 401, 404, 422),
    )
    async def add_product(
        self, conn: ConnDep, viewer: ViewerDep, shop_id: FromPath[int], data: JSONBody[ProductIn]
    ) -> Product:
        return await service.create_product(conn, owner_id=viewer.user_id, shop_id=shop_id, data=data)

    @post(
        "/{shop_id:int}/products:import",
        status_code=201,
        summary="Import a product from its web page",
        description=(
            "Fetches the page (public addresses only, redirects re-checked, 2 MiB, 10 s) and reads "
            "schema.org Product JSON-LD, then OpenGraph."
        ),
        responses=problems(400, 401, 404, 422, 429),
    )
    async def import_product(
        self,
        request: Request[Any, Any, Any],
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        limiter: LimiterDep,
        shop_id: FromPath[int],
        data: JSONBody[ImportIn],
    ) -> Product:
        await enforce(request, limiter, IMPORTS_PER_HOUR, f"user:{viewer.user_id}")
        return await service.import_product(
            conn, settings, owner_id=viewer.user_id, shop_id=shop_id, url=data.url
        )

    @get(
        "/{shop_id:int}/products",
        summary="A shop's products",
        description="Its owner's, or anyone's when the shop allows affiliates.",
        responses=problems(400, 401, 404),
    )
    async def products(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        cursors: CursorsDep,
        shop_id: FromPath[int],
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Product]:
        before = cursor_id(cursors, f"products:{shop_id}", cursor)
        items = await service.shop_products(
            conn, user_id=viewer.user_id, shop_id=shop_id, before_id=before, limit=limit
        )
        return id_page(cursors, f"products:{shop_id}", items, limit)

    @get(
        "/{shop_id:int}/analytics",
        summary="What the shop's clips did: impressions, views, taps, orders, GMV, commission",
        description=(
            "Per clip, product or UTC day over `[from, to)` (at most 366 days; the last 30 days by "
            "default): CTR is taps per impression, conversion orders per tap, GMV net of refunds "
            "per currency, GMV per thousand views, commission as booked. One query per page."
        ),
        responses=problems(400, 401, 404, 422),
    )
    async def analytics(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        cursors: CursorsDep,
        shop_id: FromPath[int],
        from_: Annotated[
            datetime | None,
            QueryParameter(name="from", description="Start (inclusive); default: 30 days before `to`."),
        ] = None,
        to: Annotated[datetime | None, QueryParameter(description="End (exclusive); default: now.")] = None,
        group: Annotated[
            Literal["clip", "product", "day"], QueryParameter(description="One row per …")
        ] = "day",
        cursor: CursorParam = None,
        limit: Limit = 50,
    ) -> Analytics:
        return await service.analytics(
            conn,
            cursors,
            owner_id=viewer.user_id,
            shop_id=shop_id,
            start=from_,
            end=to,
            group=group,
            cursor=cursor,
            limit=limit,
        )


class ProductController(Controller):
    path = "/v1/products"
    tags = ["commerce"]

    @get("/{product_id:int}", summary="A product", responses=problems(401, 404))
    async def get_one(self, conn: ConnDep, viewer: ViewerDep, product_id: FromPath[int]) -> Product:
        return await service.get_product(conn, user_id=viewer.user_id, product_id=product_id)

    @patch("/{product_id:int}", summary="Change a product", responses=problems(400, 401, 404, 422))
    async def update(
        self, conn: ConnDep, viewer: ViewerDep, product_id: FromPath[int], data: JSONBody[ProductUpdate]
    ) -> Product:
        return await service.update_product(conn, owner_id=viewer.user_id, product_id=product_id, data=data)

    @delete("/{product_id:int}", summary="Remove a product", responses=problems(401, 404))
    async def remove(self, conn: ConnDep, viewer: ViewerDep, product_id: FromPath[int]) -> None:
        await service.delete_product(conn, owner_id=viewer.user_id, product_id=product_id)


class ProductTagController(Controller):
    path = "/v1/clips/{clip_id:int}/product-tags"
    tags = ["commerce"]

    @post(
        "",
        status_code=201,
        summary="Tag a product in your clip",
        description="Products of your own shops, or of shops that allow affiliates; at most 10 per clip.",
        responses=problems(400, 401, 403, 404, 409, 422),
    )
    async def add(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        clip_id: FromPath[int],
        data: JSONBody[TagIn],
    ) -> Clip:
        signer = Signer(settings, signing_key)
        clip: Clip = await service.add_tag(
            conn, viewer_id=viewer.user_id, clip_id=clip_id, data=data, signer=signer
        )
        return clip

    @delete("/{tag_id:int}", summary="Remove a product tag", responses=problems(401, 403, 404))
    async def remove(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        clip_id: FromPath[int],
        tag_id: FromPath[int],
    ) -> None:
        signer = Signer(settings, signing_key)
        await service.remove_tag(
            conn, viewer_id=viewer.user_id, clip_id=clip_id, tag_id=tag_id, signer=signer
        )

    @post(
        "/{tag_id:int}/tap",
        status_code=200,
        summary="Tap a product tag",
        description=(
            "Counted once per viewer, tag and day. Returns a tracked link (`/r/{token}`, signed, "
            "expiring) that leads to the product page."
        ),
        responses=problems(401, 404, 429),
    )
    async def tap(
        self,
        request: Request[Any, Any, Any],
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        cursors: CursorsDep,
        limiter: LimiterDep,
        clip_id: FromPath[int],
        tag_id: FromPath[int],
    ) -> Tap:
        await enforce(request, limiter, TAPS_PER_HOUR, f"user:{viewer.user_id}")
        signer = Signer(settings, signing_key)
        return await service.tap(
            conn, settings, cursors, viewer_id=viewer.user_id, clip_id=clip_id, tag_id=tag_id, signer=signer
        )


@get(
    "/r/{token:str}",
    summary="Follow a tracked product link",
    description=(
        "302 to the product page with UTM parameters and `riffle_tap`; a forged or expired link is a 400."
    ),
    tags=["commerce"],
    responses=problems(400, 404),
    status_code=302,
)
async def tracked_redirect(
    conn: ConnDep, settings: SettingsDep, cursors: CursorsDep, token: FromPath[str]
) -> Redirect:
    if len(token) > 512:
        raise BadRequest("this link is not valid", code="invalid_tap_token")
    return Redirect(await service.redirect_target(conn, settings, cursors, token=token), status_code=302)


class CommerceWebhookController(Controller):
    path = "/v1/commerce/webhooks"
    tags = ["commerce"]

    @post(
        "/{shop_id:int}",
        status_code=200,
        summary="A shop's order webhook (Standard Webhooks signed)",
        description=(
            "Orders and refunds, signed with the shop's secret (`webhook-id`, `webhook-timestamp`, "
            "`webhook-signature`). A replayed delivery id is a 409; a stale timestamp or bad "
            "signature a 401. Idempotent by order id and refund id."
        ),
        responses=problems(400, 401, 404, 409, 422),
    )
    async def receive(
        self, request: Request[Any, Any, Any], conn: ConnDep, settings: SettingsDep, shop_id: FromPath[int]
    ) -> Booking:
        from backend.errors import Unauthorized

        secret = await service.shop_secret(conn, shop_id)
        body = await request.body()
        try:
            webhook_id, _ = verify_standard_webhook(secret, dict(request.headers), body)
        except WebhookRefused as exc:
            raise Unauthorized(f"webhook refused: {exc}", code="bad_webhook") from None
        try:
            event = msgspec.json.decode(body, type=OrderEvent)
        except msgspec.ValidationError as exc:
            raise ValidationFailed(f"the order event is not valid: {exc}", code="bad_order_event") from None
        await service.remember_delivery(conn, shop_id=shop_id, webhook_id=webhook_id)
        return await service.receive_order(conn, settings, shop_id=shop_id, event=event)


class EarningsController(Controller):
    path = "/v1/me/earnings"
    tags = ["commerce"]

    @get(
        "",
        summary="Your balances and statement",
        description=(
            "Creator commissions, cameo earnings, shop payables: balances per account and currency, "
            "entries newest first."
        ),
        responses=problems(400, 401),
    )
    async def earnings(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        cursors: CursorsDep,
        cursor: CursorParam = None,
        limit: Limit = 50,
    ) -> Earnings:
        before = cursor_id(cursors, "earnings", cursor)
        balances = [
            Balance(account=r["kind"], currency=r["currency"], balance_minor=r["balance"])
            for r in await ledger.balances(conn, viewer.user_id)
        ]
        entries = [
            Entry(
                id=r["id"],
                account=r["account"],
                amount_minor=r["amount_minor"],
                currency=r["currency"],
                kind=r["kind"],
                reference=r["reference"],
                created_at=r["created_at"],
            )
            for r in await ledger.statement(conn, viewer.user_id, before_id=before, limit=limit)
        ]
        page = id_page(cursors, "earnings", entries, limit)
        return Earnings(balances=balances, entries=entries, next_cursor=page.next_cursor)


class CampaignController(Controller):
    path = "/v1/campaigns"
    tags = ["commerce"]

    @post(
        "",
        status_code=201,
        summary="Fund a pay-per-result campaign",
        description=(
            "For one public clip (billed per thousand views, `cpm`, or per attributed order, "
            "`cpa`) or one product you may use (`cpa`). The budget is booked at once; it is never "
            "overspent. Needs an `Idempotency-Key`."
        ),
        responses=problems(400, 401, 404, 422),
    )
    async def create(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        data: JSONBody[CampaignIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Campaign:
        key = require_key(idempotency_key)
        signer = Signer(settings, signing_key)
        return await campaigns.create(
            conn, advertiser_id=viewer.user_id, data=data, idempotency_key=key, signer=signer
        )

    @get("", summary="Your campaigns, newest first", responses=problems(400, 401))
    async def mine(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        cursors: CursorsDep,
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Campaign]:
        before = cursor_id(cursors, "campaigns", cursor)
        items = await campaigns.mine(conn, advertiser_id=viewer.user_id, before_id=before, limit=limit)
        return id_page(cursors, "campaigns", items, limit)

    @get("/{campaign_id:int}", summary="One of your campaigns", responses=problems(401, 404))
    async def get_one(self, conn: ConnDep, viewer: ViewerDep, campaign_id: FromPath[int]) -> Campaign:
        return await campaigns.get(conn, advertiser_id=viewer.user_id, campaign_id=campaign_id)

    @post(
        "/{campaign_id:int}/pause",
        status_code=200,
        summary="Pause a campaign",
        responses=problems(401, 404, 409),
    )
    async def pause(self, conn: ConnDep, viewer: ViewerDep, campaign_id: FromPath[int]) -> Campaign:
        return await campaigns.change(
            conn, advertiser_id=viewer.user_id, campaign_id=campaign_id, action="pause"
        )

    @post(
        "/{campaign_id:int}/resume",
        status_code=200,
        summary="Resume a campaign",
        responses=problems(401, 404, 409),
    )
    async def resume(self, conn: ConnDep, viewer: ViewerDep, campaign_id: FromPath[int]) -> Campaign:
        return await campaigns.change(
            conn, advertiser_id=viewer.user_id, campaign_id=campaign_id, action="resume"
        )

    @post(
        "/{campaign_id:int}/end",
        status_code=200,
        summary="End a campaign",
        description="The unspent budget goes back to you.",
        responses=problems(401, 404, 409),
    )
    async def end(self, conn: ConnDep, viewer: ViewerDep, campaign_id: FromPath[int]) -> Campaign:
        return await campaigns.change(
            conn, advertiser_id=viewer.user_id, campaign_id=campaign_id, action="end"
        )
