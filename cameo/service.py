"""Cameos: a verified likeness whose owner decides who may use it, sees every clip that uses it
and can pull any of them, and may license it.

Consent is one SQL function (``cameo_allows``, migration 0008) asked at three moments:
generation (:func:`authorize`), publishing (:func:`on_publish`) and every read of a clip (the
clips visibility rule). So a revoked grant, a narrowed consent, an unfollow between mutuals, a
block or a deleted cameo takes effect on the next read: others' clips that use the cameo leave
feeds, profiles and clip pages at once, and come back if consent does. :func:`enforce` does what
a read cannot: it cancels others' generations still running.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from backend.accounts.schemas import UserSummary
from backend.commerce import ledger
from backend.db import Conn
from backend.errors import Conflict, Forbidden, NotFound, ValidationFailed
from backend.notifications import service as notifications
from cameo import queries as q
from cameo.schemas import (
    Appearance,
    Cameo,
    CameoCreate,
    CameoUpdate,
    Challenge,
    Earnings,
    EarningsLine,
    Grant,
    Licence,
    LicenceIn,
    LineKind,
    Total,
)
from cameo.verifier import Evidence, Verdict, Verifier
from feed import visibility
from moderation.screening import normalise, screen_text

CHALLENGE_TTL_S = 600
_WORDS = (
    "amber", "beacon", "cactus", "delta", "ember", "falcon", "glacier", "harbor", "indigo", "juniper",
    "kettle", "lantern", "meadow", "nectar", "orbit", "pepper", "quartz", "river", "saffron", "tundra",
    "umbrella", "velvet", "willow", "yonder", "zephyr", "copper", "maple", "pebble", "thistle", "violet",
)  # fmt: skip
# Rules that forbid something: "no politics", "never alcohol", "don't show smoking".
_PROHIBITION = re.compile(r"^(?:no|never|not|don'?t(?: show| use| put)?|without)\s+(?:any\s+)?(.+)$")


def _owner(row: asyncpg.Record) -> UserSummary:
    return UserSummary(
        id=row["owner_id"], handle=row["handle"], display_name=row["owner_name"], avatar_url=row["avatar_url"]
    )


def _licence(row: asyncpg.Record) -> Licence | None:
    if row["licence_price_minor"] is None:
        return None
    return Licence(
        price_minor=row["licence_price_minor"],
        unit=row["licence_unit"],
        currency=row["licence_currency"],
        revenue_share_percent=row["revenue_share_bps"] / 100,
    )


def _cameo(row: asyncpg.Record) -> Cameo:
    return Cameo(
        id=row["id"],
        kind=row["kind"],
        display_name=row["display_name"],
        owner=_owner(row),
        status=row["status"],
        consent=row["consent"],
        rules=row["rules"],
        allow_remix=row["allow_remix"],
        declared_rights=row["declared_rights"],
        licence=_licence(row),
        created_at=row["created_at"],
        verified_at=row["verified_at"],
        usable=bool(row["usable"]),
        my_request=row["my_request"],
    )


def prohibitions(rules: str) -> list[str]:
    """What the owner's rules forbid, normalised: "No politics, never alcohol" → ["politics",
    "alcohol"]."""
    found = []
    for part in re.split(r"[,;\n.]+|\band\b", normalise(rules)):
        match = _PROHIBITION.match(part.strip())
        if match:
            found.append(match.group(1).strip())
    return [f for f in found if f]


def _breaks(prompt: str, forbidden: str) -> bool:
    """Whether the prompt mentions what a rule forbids (a word that starts the same way:
    "politics" catches "political", "alcohol" catches "alcoholic")."""
    stem = forbidden if len(forbidden) <= 5 else forbidden[: max(5, len(forbidden) - 3)]
    return re.search(rf"(?<!\w){re.escape(stem)}", normalise(prompt)) is not None


def _screen_rules(rules: str) -> None:
    verdict = screen_text(rules)
    if not verdict.allowed:
        raise ValidationFailed(
            verdict.reason or "these rules can't be used", code="rules_blocked", field="rules"
        )


# --- creating, reading, changing ---------------------------------------------------------------


async def create(conn: Conn, *, owner_id: int, data: CameoCreate) -> Cameo:
    if data.kind == "character" and data.declared_rights is None:
        raise ValidationFailed(
            "a character cameo needs the rights you hold to it",
            code="rights_required",
            field="declared_rights",
        )
    _screen_rules(data.rules)
    cameo_id = await conn.fetchval(
        q.INSERT,
        owner_id,
        data.kind,
        data.display_name,
        data.consent,
        data.rules,
        data.allow_remix,
        data.declared_rights,
    )
    if data.kind != "person":
        # Only people prove liveness; pets, objects and characters are the owner's to declare,
        # and wait for a moderator like a person's video does.
        await conn.execute("UPDATE cameos SET status = 'pending_review' WHERE id = $1", cameo_id)
    return await get(conn, viewer_id=owner_id, cameo_id=cameo_id)


async def get(conn: Conn, *, viewer_id: int | None, cameo_id: int, moderator: bool = False) -> Cameo:
    """Its owner (and a moderator) sees a cameo in any state; anyone else only a verified one,
    and not across a block."""
    row = await conn.fetchrow(q.ONE, cameo_id, viewer_id)
    hidden = (
        row is not None and row["owner_id"] != viewer_id and (row["status"] != "verified" or row["blocked"])
    )
    if row is None or (hidden and not moderator):
        raise NotFound(f"no cameo {cameo_id}", code="unknown_cameo")
    return _cameo(row)


async def mine(conn: Conn, *, owner_id: int, before_id: int | None, limit: int) -> list[Cameo]:
    return [_cameo(r) for r in await conn.fetch(q.MINE, owner_id, before_id, limit)]


async def _owned(conn: Conn, owner_id: int, cameo_id: int) -> asyncpg.Record:
    row = await conn.fetchrow(q.OWNED_FOR_UPDATE, cameo_id, owner_id)
    if row is None:
        raise NotFound(f"no cameo {cameo_id} of yours", code="unknown_cameo")
    return row


def _given(value: Any) -> Any:
    return None if value is msgspec.UNSET else value


async def update(conn: Conn, *, owner_id: int, cameo_id: int, data: CameoUpdate) -> Cameo:
    """Change the cameo; narrowing its consent takes effect at once (see :func:`enforce`)."""
    await _owned(conn, owner_id, cameo_id)
    if isinstance(data.rules, str):
        _screen_rules(data.rules)
    await conn.execute(
        q.UPDATE,
        cameo_id,
        _given(data.display_name),
        _given(data.consent),
        _given(data.rules),
        _given(data.allow_remix),
        _given(data.declared_rights),
    )
    await enforce(conn, cameo_id)
    return await get(conn, viewer_id=owner_id, cameo_id=cameo_id)


async def delete(conn: Conn, *, owner_id: int, cameo_id: int) -> None:
    """Gone at once for everyone: no new use, others' clips hidden, their running generations
    canceled; its media is purged by the media job after its short grace period."""
    from backend.media import service as media

    await _owned(conn, owner_id, cameo_id)
    await conn.execute(q.SOFT_DELETE, cameo_id)
    challenge_media = [r["id"] for r in await conn.fetch(q.CAMEO_MEDIA, cameo_id)]
    if challenge_media:
        await media.delete_media(conn, challenge_media)
    await enforce(conn, cameo_id)


async def enforce(conn: Conn, cameo_id: int) -> int:
    """Cancel the running generations of makers the cameo no longer consents to (their seconds
    are given back, the providers asked to stop); returns how many. Clips with cameos leave
    this process's feed sessions now (the others are notified)."""
    from backend.generation import service as generation  # generation asks us; we answer it back

    visibility.changed(cameos=True)

    jobs = await conn.fetch(q.NO_LONGER_ALLOWED_JOBS, cameo_id)
    for job in jobs:
        try:
            await generation.cancel_generation(conn, user_id=job["user_id"], job_id=job["id"])
        except Conflict:  # finished meanwhile
            continue
    return len(jobs)


# --- verification ------------------------------------------------------------------------------


async def challenge(conn: Conn, *, owner_id: int, cameo_id: int) -> Challenge:
    row = await _owned(conn, owner_id, cameo_id)
    if row["kind"] != "person":
        raise ValidationFailed("only a person cameo is verified by a video", code="no_liveness_check")
    if row["status"] == "verified":
        raise Conflict("this cameo is already verified", code="already_verified")
    phrase = " ".join(secrets.choice(_WORDS) for _ in range(3)) + f" {secrets.randbelow(900) + 100}"
    made = await conn.fetchrow(q.INSERT_CHALLENGE, cameo_id, phrase, CHALLENGE_TTL_S)
    assert made is not None  # INSERT … RETURNING
    return Challenge(
        id=made["id"],
        phrase=made["phrase"],
        expires_at=made["expires_at"],
        instructions=(
            "Record a short video (2-30 s) facing the camera and say the phrase clearly; upload it "
            "to /v1/uploads and send its id with this challenge within 10 minutes."
        ),
    )


@dataclass(frozen=True)
class VideoUpload:
    media_id: int
    content_type: str
    duration_ms: int | None
    width: int | None
    height: int | None
    url: str


async def claim_challenge(conn: Conn, *, owner_id: int, cameo_id: int, challenge_id: int) -> str:
    """The phrase of a fresh, unused challenge of this cameo, now used; why not otherwise."""
    await _owned(conn, owner_id, cameo_id)
    phrase: str | None = await conn.fetchval(q.USE_CHALLENGE, challenge_id, cameo_id)
    if phrase is not None:
        return phrase
    state = await conn.fetchrow(q.CHALLENGE_STATE, challenge_id, cameo_id)
    if state is None:
        raise NotFound(
            f"no challenge {challenge_id} for this cameo", code="unknown_challenge", field="challenge_id"
        )
    if state["used_at"] is not None:
        raise Conflict("this challenge was already used; ask for a new one", code="challenge_used")
    raise Conflict("this challenge expired; ask for a new one", code="challenge_expired")


async def record_verdict(conn: Conn, *, cameo_id: int, upload: VideoUpload, verdict: Verdict) -> Cameo:
    owner_id = await conn.fetchval(
        "UPDATE cameos SET updated_at = now() WHERE id = $1 RETURNING owner_id", cameo_id
    )
    await conn.execute(q.SET_VERIFICATION, cameo_id, verdict.outcome, upload.media_id, verdict.reason)
    return await get(conn, viewer_id=owner_id, cameo_id=cameo_id)


async def judge(verifier: Verifier, *, cameo: Cameo, phrase: str, upload: VideoUpload) -> Verdict:
    return await verifier.verify(
        Evidence(
            cameo_id=cameo.id,
            kind=cameo.kind,
            phrase=phrase,
            video_url=upload.url,
            content_type=upload.content_type,
            duration_ms=upload.duration_ms,
            width=upload.width,
            height=upload.height,
        )
    )


async def review(conn: Conn, *, moderator_id: int, cameo_id: int, verify: bool, reason: str) -> Cameo:
    row = await conn.fetchrow(q.REVIEW, cameo_id, "verified" if verify else "rejected", reason)
    if row is None:
        if await conn.fetchval("SELECT 1 FROM cameos WHERE id = $1 AND deleted_at IS NULL", cameo_id):
            raise Conflict("this cameo is not waiting for review", code="not_pending_review")
        raise NotFound(f"no cameo {cameo_id}", code="unknown_cameo")
    await notifications.notify(
        conn,
        recipient_id=row["owner_id"],
        kind="cameo_review",
        data={"cameo_id": cameo_id, "verified": verify, "reason": reason},
    )
    return await get(conn, viewer_id=moderator_id, cameo_id=cameo_id, moderator=True)


async def review_queue(conn: Conn, *, after_id: int | None, limit: int) -> list[Cameo]:
    return [_cameo(r) for r in await conn.fetch(q.REVIEW_QUEUE, after_id, limit)]


# --- consent: requests and grants --------------------------------------------------------------


async def request_use(conn: Conn, *, user_id: int, cameo_id: int, note: str) -> Cameo:
    cameo = await get(conn, viewer_id=user_id, cameo_id=cameo_id)
    if cameo.owner.id == user_id:
        raise ValidationFailed("this is your own cameo", code="own_cameo")
    if cameo.consent == "only_me":
        raise Forbidden("its owner does not let anyone else use this cameo", code="cameo_private")
    if cameo.usable:
        raise Conflict("you may already use this cameo", code="already_allowed")
    status = await conn.fetchval(q.REQUEST, cameo_id, user_id, note)
    if status is None:  # a request already waits
        raise Conflict("you already asked; the owner has not answered yet", code="already_requested")
    await notifications.notify(
        conn,
        recipient_id=cameo.owner.id,
        kind="cameo_request",
        actor_id=user_id,
        data={"cameo_id": cameo_id, "cameo": cameo.display_name, "note": note},
    )
    return await get(conn, viewer_id=user_id, cameo_id=cameo_id)


async def _user_id(conn: Conn, handle: str) -> int:
    user_id: int | None = await conn.fetchval(
        "SELECT id FROM users WHERE lower(handle) = lower($1) AND account_active(status, suspended_until)",
        handle,
    )
    if user_id is None:
        raise NotFound(f"no user @{handle}", code="unknown_user")
    return user_id


async def decide(conn: Conn, *, owner_id: int, cameo_id: int, handle: str, approve: bool) -> Grant:
    row = await _owned(conn, owner_id, cameo_id)
    user_id = await _user_id(conn, handle)
    status = await conn.fetchval(
        q.DECIDE, cameo_id, user_id, "approved" if approve else "denied", ["requested"]
    )
    if status is None:
        raise NotFound(f"no request from @{handle} waits", code="unknown_request")
    await notifications.notify(
        conn,
        recipient_id=user_id,
        kind="cameo_decision",
        actor_id=owner_id,
        data={"cameo_id": cameo_id, "cameo": row["display_name"], "status": status},
    )
    return await _grant(conn, cameo_id, user_id)


async def grant(conn: Conn, *, owner_id: int, cameo_id: int, handle: str) -> Grant:
    await _owned(conn, owner_id, cameo_id)
    user_id = await _user_id(conn, handle)
    if user_id == owner_id:
        raise ValidationFailed("you may always use your own cameo", code="own_cameo", field="handle")
    await conn.execute(q.GRANT, cameo_id, user_id)
    return await _grant(conn, cameo_id, user_id)


async def revoke(conn: Conn, *, owner_id: int, cameo_id: int, handle: str) -> Grant:
    """Takes effect at once: their running generations with it are canceled, their drafts can
    no longer be published and their clips with it are hidden, until granted again."""
    row = await _owned(conn, owner_id, cameo_id)
    user_id = await _user_id(conn, handle)
    status = await conn.fetchval(q.DECIDE, cameo_id, user_id, "revoked", ["approved", "requested"])
    if status is None:
        raise NotFound(f"@{handle} holds no grant to revoke", code="unknown_grant")
    await enforce(conn, cameo_id)
    await notifications.notify(
        conn,
        recipient_id=user_id,
        kind="cameo_decision",
        actor_id=owner_id,
        data={"cameo_id": cameo_id, "cameo": row["display_name"], "status": "revoked"},
    )
    return await _grant(conn, cameo_id, user_id)


async def _grant(conn: Conn, cameo_id: int, user_id: int) -> Grant:
    rows = await conn.fetch(
        q.GRANTS.replace("WHERE g.cameo_id = $1", "WHERE g.cameo_id = $1 AND g.user_id = $6"),
        cameo_id,
        None,
        None,
        None,
        1,
        user_id,
    )
    return _grant_of(rows[0])


def _grant_of(r: asyncpg.Record) -> Grant:
    return Grant(
        user=UserSummary(
            id=r["id"], handle=r["handle"], display_name=r["display_name"], avatar_url=r["avatar_url"]
        ),
        status=r["status"],
        note=r["note"],
        created_at=r["created_at"],
        decided_at=r["decided_at"],
    )


async def grants(
    conn: Conn,
    *,
    owner_id: int,
    cameo_id: int,
    status: str | None,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[Grant]:
    await _owned(conn, owner_id, cameo_id)
    at, last = after or (None, None)
    return [_grant_of(r) for r in await conn.fetch(q.GRANTS, cameo_id, status, at, last, limit)]


# --- appearances -------------------------------------------------------------------------------


async def appearances(
    conn: Conn, *, owner_id: int, cameo_id: int, after: tuple[datetime, int] | None, limit: int
) -> list[Appearance]:
    await _owned(conn, owner_id, cameo_id)
    at, last = after or (None, None)
    return [
        Appearance(
            kind=r["kind"],
            clip_id=r["clip_id"],
            generation_id=r["generation_id"],
            maker=UserSummary(
                id=r["maker_id"],
                handle=r["handle"],
                display_name=r["display_name"],
                avatar_url=r["avatar_url"],
            ),
            status=r["status"],
            prompt=r["prompt"],
            created_at=r["created_at"],
            removed=r["removed"],
            allowed=r["allowed"],
        )
        for r in await conn.fetch(q.APPEARANCES, cameo_id, at, last, limit)
    ]


async def remove_appearance(conn: Conn, *, owner_id: int, cameo_id: int, clip_id: int) -> None:
    """Hide a clip that uses the cameo from everyone but its maker and moderators, for good; its
    maker is told why. The owner's own clips are theirs to delete instead."""
    row = await _owned(conn, owner_id, cameo_id)
    clip = await conn.fetchrow(q.APPEARANCE_CLIP, cameo_id, clip_id)
    if clip is None:
        raise NotFound(f"clip {clip_id} does not use this cameo", code="unknown_appearance")
    if clip["author_id"] == owner_id:
        raise ValidationFailed("this is your own clip; delete it instead", code="own_clip")
    if await conn.fetchval(q.REMOVE_APPEARANCE, cameo_id, clip_id) is None:
        return  # already removed: the same answer again
    visibility.changed(clip=clip_id)
    await notifications.notify(
        conn,
        recipient_id=clip["author_id"],
        kind="cameo_appearance_removed",
        clip_id=clip_id,
        data={
            "cameo_id": cameo_id,
            "cameo": row["display_name"],
            "reason": f"{row['display_name']}'s owner removed this clip: it shows their cameo.",
        },
    )


# --- licensing ---------------------------------------------------------------------------------


async def set_licence(conn: Conn, *, owner_id: int, cameo_id: int, licence: LicenceIn | None) -> Cameo:
    await _owned(conn, owner_id, cameo_id)
    if licence is None:
        await conn.execute(q.SET_LICENCE, cameo_id, None, None, None, 0)
    else:
        await conn.execute(
            q.SET_LICENCE,
            cameo_id,
            licence.price_minor,
            licence.unit,
            licence.currency,
            round(licence.revenue_share_percent * 100),
        )
    return await get(conn, viewer_id=owner_id, cameo_id=cameo_id)


_LINE_KINDS: dict[str, LineKind] = {"cameo_licence": "licence", "order": "revenue_share", "refund": "refund"}


def _maker(row: Any) -> UserSummary | None:
    if row["user_id"] is None:  # the clip is gone
        return None
    return UserSummary(
        id=row["user_id"],
        handle=row["handle"],
        display_name=row["display_name"],
        avatar_url=row["avatar_url"],
    )


async def earnings(
    conn: Conn, *, owner_id: int, cameo_id: int, before_id: int | None, limit: int
) -> Earnings:
    """The cameo's statement, read from the ledger: licence fees and revenue shares."""
    await _owned(conn, owner_id, cameo_id)
    totals = [
        Total(currency=r["currency"], amount_minor=r["amount_minor"], uses=r["uses"])
        for r in await conn.fetch(q.EARNINGS_TOTALS, owner_id, cameo_id)
    ]
    entries = [
        EarningsLine(
            id=r["id"],
            kind=_LINE_KINDS[r["kind"]],
            clip_id=r["clip_id"],
            user=_maker(r),
            amount_minor=r["amount_minor"],
            currency=r["currency"],
            created_at=r["created_at"],
        )
        for r in await conn.fetch(q.EARNINGS_LINES, owner_id, cameo_id, before_id, limit)
    ]
    return Earnings(cameo_id=cameo_id, totals=totals, entries=entries)


# --- what generation and clips ask -------------------------------------------------------------


@dataclass(frozen=True)
class Authorization:
    """What the provider is told: each cameo's positive rules, and one cameo's reference video."""

    prompt_suffix: str
    reference_media_id: int | None
    people: tuple[str, ...] = ()  # verified person and character cameos: who may be named


async def authorize(
    conn: Conn, *, user_id: int, cameo_ids: list[int], prompt: str, remix: bool = False
) -> Authorization:
    """Check that ``user_id`` may put every cameo in ``cameo_ids`` into a clip made from
    ``prompt`` today (a remix is checked anew, and against each owner's remix setting).

    Raises a 4xx that says which cameo and why; returns what to add to the provider prompt.
    """
    if not cameo_ids:
        return Authorization("", None)
    people: list[str] = []
    rows = {r["id"]: r for r in await conn.fetch(q.FOR_GENERATION, cameo_ids, user_id)}
    suffix: list[str] = []
    reference: int | None = None
    for cameo_id in cameo_ids:
        row = rows.get(cameo_id)
        own = row is not None and row["owner_id"] == user_id
        if (
            row is None
            or not row["alive"]
            or (not own and row["status"] != "verified" and not row["allowed"])
        ):
            if row is not None and row["alive"] and not own and row["status"] != "verified":
                raise ValidationFailed(
                    f"cameo {cameo_id} is not verified yet", code="cameo_not_verified", field="cameo_ids"
                )
            raise ValidationFailed(f"unknown cameo {cameo_id}", code="unknown_cameo", field="cameo_ids")
        if not row["allowed"]:
            raise Forbidden(
                f"you may not use {row['display_name']}: ask its owner first",
                code="cameo_not_allowed",
                field="cameo_ids",
                extra={"cameo_id": cameo_id},
            )
        if remix and not own and not row["allow_remix"]:
            raise Forbidden(
                f"{row['display_name']}'s owner does not allow remixes of clips with this cameo",
                code="cameo_remix_not_allowed",
                field="remix_of",
                extra={"cameo_id": cameo_id},
            )
        if not own:
            for forbidden in prohibitions(row["rules"]):
                if _breaks(prompt, forbidden):
                    raise ValidationFailed(
                        f"{row['display_name']}'s owner does not allow {forbidden}",
                        code="cameo_rule",
                        field="prompt",
                        extra={"cameo_id": cameo_id, "rule": forbidden},
                    )
        if row["status"] == "verified" and row["kind"] in ("person", "character"):
            people.append(row["display_name"])
        if row["rules"]:
            suffix.append(f"{row['display_name']} ({row['kind']}): {row['rules']}")
        if reference is None and row["reference_media_id"] is not None:
            reference = row["reference_media_id"]
    text = "Cameo rules, follow them exactly:\n" + "\n".join(suffix) if suffix else ""
    return Authorization(text, reference, tuple(people))


async def on_publish(
    conn: Conn, *, clip_id: int, author_id: int, cameo_ids: list[int], duration_ms: int
) -> None:
    """A clip with cameos is being published (in the publishing transaction): refuse it if any
    owner's consent is gone, write each licensed use once, and tell the owners."""
    if not cameo_ids:
        return
    for row in await conn.fetch(q.FOR_CLIP, cameo_ids, author_id):
        if not row["allowed"]:
            raise Forbidden(
                f"{row['display_name']}'s owner no longer lets you use their cameo",
                code="cameo_not_allowed",
                field="take_id",
                extra={"cameo_id": row["id"]},
            )
        if row["owner_id"] == author_id:
            continue
        if await conn.fetchval(
            "SELECT 1 FROM cameo_removals WHERE cameo_id = $1 AND clip_id = $2", row["id"], clip_id
        ):
            raise Forbidden("the cameo's owner removed this clip", code="cameo_removed", field="take_id")
        if row["licence_price_minor"] is not None:
            units = 1 if row["licence_unit"] == "use" else max(1, -(-duration_ms // 1000))
            fee = row["licence_price_minor"] * units
            usage_id = await conn.fetchval(
                q.INSERT_USAGE, row["id"], row["owner_id"], author_id, clip_id, fee, row["licence_currency"]
            )
            if usage_id is not None:
                await ledger.book_licence_fee(
                    conn,
                    usage_id=usage_id,
                    cameo_id=row["id"],
                    owner_id=row["owner_id"],
                    maker_id=author_id,
                    clip_id=clip_id,
                    amount_minor=fee,
                    currency=row["licence_currency"],
                )
        await notifications.notify(
            conn,
            recipient_id=row["owner_id"],
            kind="cameo_used",
            actor_id=author_id,
            clip_id=clip_id,
            data={"cameo_id": row["id"], "cameo": row["display_name"]},
        )
