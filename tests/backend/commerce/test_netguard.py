"""The SSRF guard: what product import refuses to fetch, and that it pins what it checked."""

from __future__ import annotations

import ipaddress

import pytest
from litestar import Litestar, Response, get

from backend.netguard import FetchFailed, Guard, UrlRefused, fetch, public_address
from tests.backend.generation.providers.fakes import FakeServer


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "fd12::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "2002:7f00:1::1", "198.18.0.1",
    ],
)  # fmt: skip
def test_private_and_special_addresses_are_not_public(address: str) -> None:
    assert not public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are(address: str) -> None:
    assert public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/", "http://10.0.0.5/product", "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/", "http://[fc00::1]/", "http://[::ffff:127.0.0.1]/", "http://localhost/",
        "http://0x7f000001/", "http://2130706433/", "ftp://example.com/", "file:///etc/passwd",
        "gopher://example.com/", "http://example.com:6379/",
    ],
)  # fmt: skip
async def test_refused_urls(url: str) -> None:
    with pytest.raises(UrlRefused):
        await fetch(url, Guard(timeout_s=2))


@pytest.fixture(scope="module")
def pages():
    @get("/product", media_type="text/html")
    async def product() -> str:
        return "<html><head><title>ok</title></head></html>"

    @get("/to-private")
    async def to_private() -> Response[None]:
        return Response(None, status_code=302, headers={"Location": "http://10.0.0.1/secret"})

    @get("/to-metadata")
    async def to_metadata() -> Response[None]:
        return Response(None, status_code=301, headers={"Location": "http://169.254.169.254/latest/"})

    @get("/loop")
    async def loop() -> Response[None]:
        return Response(None, status_code=302, headers={"Location": "/loop"})

    @get("/big", media_type="text/html")
    async def big() -> str:
        return "<html>" + "x" * 300_000 + "</html>"

    @get("/json", media_type="application/json")
    async def json_page() -> dict[str, str]:
        return {"not": "html"}

    server = FakeServer(Litestar([product, to_private, to_metadata, loop, big, json_page])).start()
    yield server
    server.stop()


def _local(max_bytes: int = 100_000) -> Guard:
    # The test allowance: only the local page server's own address may be private.
    return Guard(allow_hosts=frozenset({"127.0.0.1"}), max_bytes=max_bytes, timeout_s=5)


async def test_the_allowance_fetches_the_local_page(pages) -> None:
    page = await fetch(f"{pages.url}/product", _local())
    assert page.status == 200
    assert b"<title>ok</title>" in page.body


async def test_without_the_allowance_the_local_page_is_refused(pages) -> None:
    with pytest.raises(UrlRefused):
        await fetch(f"{pages.url}/product", Guard(timeout_s=5))


@pytest.mark.parametrize("path", ["/to-private", "/to-metadata"])
async def test_a_redirect_to_a_private_address_is_refused(pages, path: str) -> None:
    with pytest.raises(UrlRefused):
        await fetch(f"{pages.url}{path}", _local())


async def test_redirect_loops_end(pages) -> None:
    with pytest.raises(FetchFailed) as failed:
        await fetch(f"{pages.url}/loop", _local())
    assert failed.value.reason == "redirects"


async def test_oversized_pages_are_cut_off(pages) -> None:
    with pytest.raises(FetchFailed) as failed:
        await fetch(f"{pages.url}/big", _local(max_bytes=100_000))
    assert failed.value.reason == "too_large"


async def test_only_html_is_read(pages) -> None:
    with pytest.raises(FetchFailed) as failed:
        await fetch(f"{pages.url}/json", _local())
    assert failed.value.reason == "type"


async def test_a_name_is_resolved_once_and_the_checked_address_is_used(monkeypatch, pages) -> None:
    """DNS rebinding: the first answer is checked, and the connection goes to that address,
    whatever a second lookup would say."""
    import backend.netguard as netguard

    answers = iter([[ipaddress.ip_address("127.0.0.1")], [ipaddress.ip_address("10.9.9.9")]])
    calls: list[str] = []

    async def resolve(host: str, port: int):
        calls.append(host)
        return next(answers)

    monkeypatch.setattr(netguard, "resolve", resolve)
    guard = Guard(allow_hosts=frozenset({"shop.test"}), timeout_s=5)
    page = await fetch(f"http://shop.test:{pages.port}/product", guard)
    assert page.status == 200
    assert calls == ["shop.test"]


async def test_a_name_resolving_to_a_private_address_is_refused(monkeypatch) -> None:
    import backend.netguard as netguard

    async def resolve(host: str, port: int):
        return [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("192.168.0.10")]

    monkeypatch.setattr(netguard, "resolve", resolve)
    with pytest.raises(UrlRefused):
        await fetch("http://rebind.example/", Guard(timeout_s=2))
