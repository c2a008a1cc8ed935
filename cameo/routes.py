"""HTTP routes of cameos: create and verify, consent (requests, grants), appearances, licence."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from litestar import Controller, Request, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody, QueryParameter

from backend.accounts.routes import HandlePath
from backend.cursor import CursorCodec
from backend.errors import NotFound, Unavailable, ValidationFailed, problems
from backend.media import service as media
from backend.pagination import CursorParam, Limit, Page, cursor_id, id_page
from backend.ratelimit import Rule, enforce
from backend.runtime import (
    ConnDep,
    CursorsDep,
    LimiterDep,
    MaybeViewerDep,
    SettingsDep,
    SigningKeyDep,
    ViewerDep,
)
from backend.settings import Settings
from cameo import service
from cameo.schemas import (
    Appearance,
    Cameo,
    CameoCreate,
    CameoUpdate,
    Challenge,
    Earnings,
    Grant,
    LicenceIn,
    RequestIn,
    ReviewIn,
    VerificationIn,
)
from cameo.verifier import BuiltinVerifier, HttpVerifier, Verifier, VerifierUnavailable

GrantStatusParam = Annotated[
    Literal["requested", "approved", "denied", "revoked"] | None,
    QueryParameter(description="Only grants in this state."),
]
CAMEO_REQUESTS_PER_DAY = Rule("cameo-requests", 50, 86400)
CHALLENGES_PER_HOUR = Rule("cameo-challenges", 10, 3600)


@lru_cache(maxsize=4)
def _http_verifier(base_url: str, api_key: str | None) -> HttpVerifier:
    return HttpVerifier(base_url, api_key)


def verifier_for(settings: Settings) -> Verifier:
    if settings.cameo_verifier == "http" and settings.cameo_verifier_url:
        return _http_verifier(settings.cameo_verifier_url, settings.cameo_verifier_api_key)
    return BuiltinVerifier()


def _keyset(cursors: CursorCodec, kind: str, cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    at, last = cursors.decode(kind, cursor)
    return datetime.fromisoformat(at), int(last)


class CameoController(Controller):
    path = "/v1/cameos"
    tags = ["cameos"]

    @post("", status_code=201, summary="Create a cameo", responses=problems(400, 401, 422))
    async def create(self, conn: ConnDep, viewer: ViewerDep, data: JSONBody[CameoCreate]) -> Cameo:
        return await service.create(conn, owner_id=viewer.user_id, data=data)

    @get("", summary="Your cameos, newest first", responses=problems(400, 401))
    async def mine(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        cursors: CursorsDep,
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Cameo]:
        before = cursor_id(cursors, "cameos", cursor)
        items = await service.mine(conn, owner_id=viewer.user_id, before_id=before, limit=limit)
        return id_page(cursors, "cameos", items, limit)

    @get(
        "/review-queue",
        summary="Cameos waiting for a moderator (moderators only)",
        responses=problems(400, 401, 404),
    )
    async def review_queue(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        cursors: CursorsDep,
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Cameo]:
        if not viewer.is_moderator:
            raise NotFound("no such resource")
        after = cursor_id(cursors, "cameo-review", cursor)
        items = await service.review_queue(conn, after_id=after, limit=limit)
        return id_page(cursors, "cameo-review", items, limit)

    @get(
        "/{cameo_id:int}",
        summary="A cameo",
        description="Its owner sees it in any state; anyone else only once it is verified.",
        responses=problems(401, 404),
    )
    async def get_one(self, conn: ConnDep, maybe_viewer: MaybeViewerDep, cameo_id: FromPath[int]) -> Cameo:
        viewer_id = maybe_viewer.user_id if maybe_viewer else None
        moderator = bool(maybe_viewer and maybe_viewer.is_moderator)
        return await service.get(conn, viewer_id=viewer_id, cameo_id=cameo_id, moderator=moderator)

    @patch(
        "/{cameo_id:int}",
        summary="Change a cameo's name, consent, rules or remix setting",
        description="Narrowing consent takes effect at once: see the revoke route.",
        responses=problems(400, 401, 404, 422),
    )
    async def update(
        self, conn: ConnDep, viewer: ViewerDep, cameo_id: FromPath[int], data: JSONBody[CameoUpdate]
    ) -> Cameo:
        return await service.update(conn, owner_id=viewer.user_id, cameo_id=cameo_id, data=data)

    @delete(
        "/{cameo_id:int}",
        summary="Delete a cameo",
        description="Stops every use at once; its media is purged within the hour.",
        responses=problems(401, 404),
    )
    async def remove(self, conn: ConnDep, viewer: ViewerDep, cameo_id: FromPath[int]) -> None:
        await service.delete(conn, owner_id=viewer.user_id, cameo_id=cameo_id)

    # --- verification ---

    @post(
        "/{cameo_id:int}/challenge",
        status_code=201,
        summary="Get a liveness challenge: a phrase to say on video, valid 10 minutes, once",
        responses=problems(401, 404, 409, 422, 429),
    )
    async def challenge(
        self,
        request: Request[Any, Any, Any],
        conn: ConnDep,
        viewer: ViewerDep,
        limiter: LimiterDep,
        cameo_id: FromPath[int],
    ) -> Challenge:
        await enforce(request, limiter, CHALLENGES_PER_HOUR, f"user:{viewer.user_id}")
        return await service.challenge(conn, owner_id=viewer.user_id, cameo_id=cameo_id)

    @post(
        "/{cameo_id:int}/verification",
        status_code=200,
        summary="Send the video of you reading a challenge",
        description=(
            "Upload the video to `/v1/uploads` first. The built-in verifier checks the video and "
            "the challenge and leaves the cameo `pending_review` for a moderator; an external "
            "verification service, when configured, may verify or reject it at once."
        ),
        responses=problems(401, 404, 409, 422, 503),
    )
    async def verification(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        cameo_id: FromPath[int],
        data: JSONBody[VerificationIn],
    ) -> Cameo:
        upload = await media.get_owned_upload(conn, owner_id=viewer.user_id, media_id=data.upload_id)
        if not upload.content_type.startswith("video/"):
            raise ValidationFailed(
                "the upload must be a video of you reading the phrase", code="not_a_video", field="upload_id"
            )
        phrase = await service.claim_challenge(
            conn, owner_id=viewer.user_id, cameo_id=cameo_id, challenge_id=data.challenge_id
        )
        cameo = await service.get(conn, viewer_id=viewer.user_id, cameo_id=cameo_id)
        video = service.VideoUpload(
            media_id=upload.id,
            content_type=upload.content_type,
            duration_ms=upload.duration_ms,
            width=upload.width,
            height=upload.height,
            url=media.media_url(settings, signing_key, upload.id),
        )
        try:
            verdict = await service.judge(verifier_for(settings), cameo=cameo, phrase=phrase, upload=video)
        except VerifierUnavailable as exc:
            raise Unavailable(str(exc)) from None  # the challenge stays unused: the request rolls back
        return await service.record_verdict(conn, cameo_id=cameo_id, upload=video, verdict=verdict)

    @post(
        "/{cameo_id:int}/review",
        status_code=200,
        summary="Verify or reject a cameo waiting for review (moderators only)",
        responses=problems(401, 404, 409, 422),
    )
    async def review(
        self, conn: ConnDep, viewer: ViewerDep, cameo_id: FromPath[int], data: JSONBody[ReviewIn]
    ) -> Cameo:
        if not viewer.is_moderator:
            raise NotFound(f"no cameo {cameo_id}", code="unknown_cameo")
        return await service.review(
            conn,
            moderator_id=viewer.user_id,
            cameo_id=cameo_id,
            verify=data.decision == "verify",
            reason=data.reason,
        )

    # --- consent ---

    @post(
        "/{cameo_id:int}/requests",
        status_code=201,
        summary="Ask the owner to let you use their cameo",
        responses=problems(401, 403, 404, 409, 422, 429),
    )
    async def request_use(
        self,
        request: Request[Any, Any, Any],
        conn: ConnDep,
        viewer: ViewerDep,
        limiter: LimiterDep,
        cameo_id: FromPath[int],
        data: JSONBody[RequestIn],
    ) -> Cameo:
        await enforce(request, limiter, CAMEO_REQUESTS_PER_DAY, f"user:{viewer.user_id}")
        return await service.request_use(conn, user_id=viewer.user_id, cameo_id=cameo_id, note=data.note)

    @get(
        "/{cameo_id:int}/grants",
        summary="Who asked for and who holds your cameo (owner only)",
        responses=problems(400, 401, 404),
    )
    async def grants(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        cursors: CursorsDep,
        cameo_id: FromPath[int],
        status: GrantStatusParam = None,
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Grant]:
        items = await service.grants(
            conn,
            owner_id=viewer.user_id,
            cameo_id=cameo_id,
            status=status,
            after=_keyset(cursors, "cameo-grants", cursor),
            limit=limit,
        )
        last = items[-1] if len(items) == limit else None
        next_cursor = (
            cursors.encode("cameo-grants", [last.created_at.isoformat(), last.user.id]) if last else None
        )
        return Page(items=items, next_cursor=next_cursor)

    @post(
        "/{cameo_id:int}/requests/{handle:str}/approve",
        status_code=200,
        summary="Approve a request (owner only)",
        responses=problems(401, 404),
    )
    async def approve(
        self, conn: ConnDep, viewer: ViewerDep, cameo_id: FromPath[int], handle: str = HandlePath
    ) -> Grant:
        return await service.decide(
            conn, owner_id=viewer.user_id, cameo_id=cameo_id, handle=handle, approve=True
        )

    @post(
        "/{cameo_id:int}/requests/{handle:str}/deny",
        status_code=200,
        summary="Deny a request (owner only)",
        responses=problems(401, 404),
    )
    async def deny(
        self, conn: ConnDep, viewer: ViewerDep, cameo_id: FromPath[int], handle: str = HandlePath
    ) -> Grant:
        return await service.decide(
            conn, owner_id=viewer.user_id, cameo_id=cameo_id, handle=handle, approve=False
        )

    @put(
        "/{cameo_id:int}/grants/{handle:str}",
        summary="Let someone use your cameo (owner only)",
        responses=problems(401, 404, 422),
    )
    async def grant(
        self, conn: ConnDep, viewer: ViewerDep, cameo_id: FromPath[int], handle: str = HandlePath
    ) -> Grant:
        return await service.grant(conn, owner_id=viewer.user_id, cameo_id=cameo_id, handle=handle)

    @delete(
        "/{cameo_id:int}/grants/{handle:str}",
        status_code=200,
        summary="Revoke someone's use of your cameo (owner only)",
        description=(
            "At once: their running generations with it are canceled, their drafts can no longer "
            "be published, their clips with it leave every feed, profile and clip page. Granting "
            "again brings the clips back."
        ),
        responses=problems(401, 404),
    )
    async def revoke(
        self, conn: ConnDep, viewer: ViewerDep, cameo_id: FromPath[int], handle: str = HandlePath
    ) -> Grant:
        return await service.revoke(conn, owner_id=viewer.user_id, cameo_id=cameo_id, handle=handle)

    # --- appearances ---

    @get(
        "/{cameo_id:int}/appearances",
        summary="Every clip, draft and running generation that uses your cameo (owner only)",
        responses=problems(400, 401, 404),
    )
    async def appearances(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        cursors: CursorsDep,
        cameo_id: FromPath[int],
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Appearance]:
        items = await service.appearances(
            conn,
            owner_id=viewer.user_id,
            cameo_id=cameo_id,
            after=_keyset(cursors, "cameo-appearances", cursor),
            limit=limit,
        )
        next_cursor = None
        if len(items) == limit:
            last = items[-1]
            position = last.clip_id if last.clip_id is not None else -(last.generation_id or 0)
            next_cursor = cursors.encode("cameo-appearances", [last.created_at.isoformat(), position])
        return Page(items=items, next_cursor=next_cursor)

    @delete(
        "/{cameo_id:int}/appearances/{clip_id:int}",
        summary="Remove a clip that uses your cameo (owner only)",
        description="Hidden from everyone but its maker and moderators; the maker is told why.",
        responses=problems(401, 404, 422),
    )
    async def remove_appearance(
        self, conn: ConnDep, viewer: ViewerDep, cameo_id: FromPath[int], clip_id: FromPath[int]
    ) -> None:
        await service.remove_appearance(conn, owner_id=viewer.user_id, cameo_id=cameo_id, clip_id=clip_id)

    # --- licence ---

    @put(
        "/{cameo_id:int}/licence",
        summary="License your cameo (owner only)",
        responses=problems(401, 404, 422),
    )
    async def set_licence(
        self, conn: ConnDep, viewer: ViewerDep, cameo_id: FromPath[int], data: JSONBody[LicenceIn]
    ) -> Cameo:
        return await service.set_licence(conn, owner_id=viewer.user_id, cameo_id=cameo_id, licence=data)

    @delete(
        "/{cameo_id:int}/licence",
        status_code=200,
        summary="Stop licensing your cameo (owner only)",
        responses=problems(401, 404),
    )
    async def clear_licence(self, conn: ConnDep, viewer: ViewerDep, cameo_id: FromPath[int]) -> Cameo:
        return await service.set_licence(conn, owner_id=viewer.user_id, cameo_id=cameo_id, licence=None)

    @get(
        "/{cameo_id:int}/earnings",
        summary="What your cameo's licence has earned: totals and usage entries (owner only)",
        responses=problems(400, 401, 404),
    )
    async def earnings(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        cursors: CursorsDep,
        cameo_id: FromPath[int],
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Earnings:
        before = cursor_id(cursors, "cameo-earnings", cursor)
        result = await service.earnings(
            conn, owner_id=viewer.user_id, cameo_id=cameo_id, before_id=before, limit=limit
        )
        if len(result.entries) == limit:
            result.next_cursor = cursors.encode("cameo-earnings", [result.entries[-1].id])
        return result
