"""Reading a product out of its web page: schema.org ``Product`` in JSON-LD first, OpenGraph
(and its ``product:`` extension) for whatever JSON-LD left out.

The page is fetched by :mod:`backend.netguard`; this module only parses bytes. The stdlib's
HTML parser is enough here: what we read are ``<script type="application/ld+json">`` blocks
and ``<meta>`` tags, which it tokenises reliably however broken the rest of the page is, and
it adds no compiled dependency. Prices become integer minor units with the currency's own
exponent (JPY 0, USD 2, KWD 3) from Babel's CLDR data, which also says which ISO 4217 codes
are legal tender somewhere today: test (XTS), precious-metal (XAU), fund and withdrawn codes
are refused, since nobody can pay in them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser
from typing import Any

from babel.core import get_global
from babel.numbers import get_currency_precision, get_territory_currencies


def _tender_currencies() -> frozenset[str]:
    today = datetime.now(UTC).date()
    return frozenset(
        code
        for territory in get_global("territory_currencies")
        for code in get_territory_currencies(territory, today, tender=True, non_tender=False)
    )


_CURRENCIES = _tender_currencies()
_AVAILABILITY = {
    "instock": "in_stock",
    "in_stock": "in_stock",
    "instoreonly": "in_stock",
    "onlineonly": "in_stock",
    "limitedavailability": "in_stock",
    "outofstock": "out_of_stock",
    "out_of_stock": "out_of_stock",
    "soldout": "out_of_stock",
    "discontinued": "out_of_stock",
    "preorder": "preorder",
    "presale": "preorder",
    "backorder": "preorder",
}


def known_currency(code: str) -> bool:
    return code in _CURRENCIES


def to_minor(amount: str | int | float, currency: str) -> int | None:
    """``"19.99"``, ``"USD"`` → 1999; None when the amount is not a number or has more
    decimals than the currency (a price of 0.001 USD is not a price)."""
    try:
        value = Decimal(str(amount).strip().replace(",", ""))
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0:
        return None
    minor = value.scaleb(get_currency_precision(currency))
    if minor != minor.to_integral_value():
        return None
    return int(minor)


@dataclass
class ParsedProduct:
    title: str
    description: str = ""
    image_urls: list[str] = field(default_factory=list)
    brand: str | None = None
    price_minor: int | None = None
    currency: str | None = None
    availability: str = "unknown"


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ld: list[str] = []
        self.meta: dict[str, str] = {}
        self.title = ""
        self._in_ld = False
        self._in_title = False
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "script" and a.get("type", "").strip().lower() == "application/ld+json":
            self._in_ld, self._buffer = True, []
        elif tag == "meta":
            key = (a.get("property") or a.get("name") or "").strip().lower()
            if key and "content" in a and key not in self.meta:
                self.meta[key] = a["content"].strip()
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._in_ld:
            self.ld.append("".join(self._buffer))
            self._in_ld = False
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_ld:
            self._buffer.append(data)
        elif self._in_title and not self.title:
            self.title = data.strip()


def _types(node: dict[str, Any]) -> set[str]:
    kind = node.get("@type", [])
    kinds = kind if isinstance(kind, list) else [kind]
    return {str(k).rsplit("/", 1)[-1].lower() for k in kinds}


def _walk(node: Any) -> list[dict[str, Any]]:
    """Every JSON object in a JSON-LD document (``@graph``, arrays, nesting)."""
    found: list[dict[str, Any]] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            found.append(item)
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
    return found


def _text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("name") or value.get("@value")
    if isinstance(value, list):
        value = next((v for v in value if v), None)
        return _text(value)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _images(value: Any) -> list[str]:
    out: list[str] = []
    for item in value if isinstance(value, list) else [value]:
        url = item.get("url") or item.get("contentUrl") if isinstance(item, dict) else item
        if isinstance(url, str) and url.strip().startswith(("http://", "https://")):
            out.append(url.strip())
    return out


def _availability(value: Any) -> str:
    text = (_text(value) or "").rsplit("/", 1)[-1].replace(" ", "").lower()
    return _AVAILABILITY.get(text, "unknown")


def _offer(value: Any) -> dict[str, Any]:
    offers = value if isinstance(value, list) else [value]
    for offer in offers:
        if isinstance(offer, dict):
            if "price" not in offer and "lowPrice" in offer:
                return {**offer, "price": offer["lowPrice"]}
            if "price" not in offer and isinstance(offer.get("priceSpecification"), dict):
                spec = offer["priceSpecification"]
                return {**offer, "price": spec.get("price"), "priceCurrency": spec.get("priceCurrency")}
            return offer
    return {}


def _price(amount: Any, currency: Any) -> tuple[int | None, str | None]:
    code = str(currency or "").strip().upper()
    if amount is None or not known_currency(code):
        return None, None
    minor = to_minor(amount, code)
    return (minor, code) if minor is not None else (None, None)


def parse(html: bytes | str, *, page_url: str = "") -> ParsedProduct | None:
    """The product a page describes, or None when it describes none we can read."""
    text = html.decode("utf-8", "replace") if isinstance(html, bytes) else html
    collector = _Collector()
    collector.feed(text)
    collector.close()
    meta = collector.meta

    product: dict[str, Any] | None = None
    for block in collector.ld:
        try:
            doc = json.loads(block)
        except ValueError:
            continue
        product = next((n for n in _walk(doc) if "product" in _types(n)), None)
        if product is not None:
            break

    title = _text(product.get("name")) if product else None
    title = title or meta.get("og:title") or meta.get("twitter:title") or None
    if not title:
        return None
    out = ParsedProduct(title=title[:300])
    offer = _offer(product.get("offers")) if product else {}
    out.description = (
        (_text(product.get("description")) if product else None)
        or meta.get("og:description")
        or meta.get("description")
        or ""
    )[:5000]
    images = _images(product.get("image")) if product else []
    images += [meta[k] for k in ("og:image", "og:image:url", "og:image:secure_url") if meta.get(k)]
    out.image_urls = list(dict.fromkeys(u for u in images if u.startswith(("http://", "https://"))))[:10]
    out.brand = (_text(product.get("brand")) if product else None) or meta.get("product:brand") or None
    out.price_minor, out.currency = _price(offer.get("price"), offer.get("priceCurrency"))
    if out.price_minor is None:
        out.price_minor, out.currency = _price(
            meta.get("product:price:amount") or meta.get("og:price:amount"),
            meta.get("product:price:currency") or meta.get("og:price:currency"),
        )
    out.availability = _availability(offer.get("availability")) if offer else "unknown"
    if out.availability == "unknown":
        out.availability = _availability(meta.get("product:availability") or meta.get("og:availability"))
    return out
