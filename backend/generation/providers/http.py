"""What every HTTP provider adapter shares: one client per adapter, and one mapping from
transport failures and HTTP answers to :class:`ProviderError` kinds.

Messages are safe to show an end user: no secrets, no raw bodies.
"""

from __future__ import annotations

import email.utils
import time
from pathlib import Path
from typing import Any

import httpx

from backend.generation.providers.base import ProviderError

UNREADABLE = "the video service sent an unreadable answer"


def client(base_url: str, headers: dict[str, str], timeout_s: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        headers={"User-Agent": "riffle", **headers},
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
        follow_redirects=False,
    )


def retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (it may be a number or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, when.timestamp() - time.time()) if when else None


def error_for(response: httpx.Response, service: str) -> ProviderError:
    status = response.status_code
    if status == 429:
        return ProviderError(
            "rate_limited",
            f"{service} is busy; trying again shortly",
            retry_after_s=retry_after(response.headers.get("retry-after")),
            code="provider_rate_limited",
        )
    if status >= 500:
        return ProviderError("transient", f"{service} had a problem; trying again", code=f"provider_{status}")
    if status in (401, 403):
        return ProviderError("fatal", f"{service} refused our credentials", code="provider_auth")
    if status == 404:
        return ProviderError("fatal", f"{service} does not know this job or model", code="provider_not_found")
    return ProviderError("invalid", f"{service} could not accept this request", code=f"provider_{status}")


async def request(http: httpx.AsyncClient, method: str, url: str, service: str, **kwargs: Any) -> Any:
    """Send, map failures to ProviderError, and return the JSON body (a dict)."""
    try:
        response = await http.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise ProviderError(
            "transient", f"{service} did not answer in time", code="provider_timeout"
        ) from exc
    except httpx.HTTPError as exc:
        raise ProviderError(
            "transient", f"{service} could not be reached", code="provider_unreachable"
        ) from exc
    if response.status_code >= 400:
        raise error_for(response, service)
    try:
        body = response.json()
    except ValueError as exc:
        raise ProviderError("transient", UNREADABLE, code="provider_unreadable") from exc
    if not isinstance(body, dict):
        raise ProviderError("transient", UNREADABLE, code="provider_unreadable")
    return body


async def download(http: httpx.AsyncClient, url: str, destination: Path, service: str, **kwargs: Any) -> None:
    """Stream a result to ``destination`` (following the storage's redirects)."""
    try:
        async with http.stream("GET", url, follow_redirects=True, **kwargs) as response:
            if response.status_code >= 400:
                raise error_for(response, service)
            with destination.open("wb") as out:
                async for chunk in response.aiter_bytes(1 << 20):
                    out.write(chunk)
    except httpx.TimeoutException as exc:
        raise ProviderError(
            "transient", f"{service} did not send the video in time", code="provider_timeout"
        ) from exc
    except httpx.HTTPError as exc:
        raise ProviderError(
            "transient", f"the video from {service} could not be fetched", code="provider_unreachable"
        ) from exc
