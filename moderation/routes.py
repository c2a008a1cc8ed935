"""HTTP routes of reports, the moderators' queue, decisions, appeals and the audit log.

Moderation routes answer 404 to anyone who is not a moderator, as the cameo review queue does:
they do not exist for other users."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from backend.auth import Viewer
from backend.clips import service as clips
from backend.clips.service import Signer
from backend.cursor import CursorCodec
from backend.errors import NotFound, Unauthorized, problems
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
from moderation import provenance, service
from moderation.schemas import AppealIn, AuditEntry, Case, CaseDetail, DecisionIn, Report, ReportIn, Target


def _moderator(viewer: Viewer) -> None:
    if not viewer.is_moderator:
        raise NotFound("no such resource")


class ReportController(Controller):
    path = "/v1/reports"
    tags = ["moderation"]

    @post(
        "",
        status_code=201,
        summary="Report a clip, comment, account or cameo",
        description=(
            "Something you can see (else 404), with a reason from the fixed list. Reports of one "
            "target join one case; reporting the same thing twice counts once."
        ),
        responses=problems(400, 401, 404, 422, 429),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        limiter: LimiterDep,
        data: JSONBody[ReportIn],
    ) -> Report:
        report = await service.report(conn, reporter_id=viewer.user_id, data=data)
        # Charged once the report is valid; over the limit, the 429 rolls the report back.
        await enforce(
            request, limiter, Rule("reports", settings.reports_per_day, 86400), f"user:{viewer.user_id}"
        )
        return report

    @get("", summary="Your reports, newest first", responses=problems(400, 401))
    async def mine(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        cursors: CursorsDep,
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Report]:
        before = cursor_id(cursors, "reports", cursor)
        items = await service.my_reports(conn, reporter_id=viewer.user_id, before_id=before, limit=limit)
        return id_page(cursors, "reports", items, limit)


class AppealController(Controller):
    path = "/v1/appeals"
    tags = ["moderation"]

    @post(
        "",
        status_code=201,
        summary="Appeal a moderation decision about you",
        description="Once per decision (409 after); heard by a different moderator. Signed in, or, "
        "for a suspended or banned account, with the `appeal_token` its sign-in attempt returned.",
        responses=problems(400, 401, 404, 409, 422),
    )
    async def create(
        self, conn: ConnDep, maybe_viewer: MaybeViewerDep, cursors: CursorsDep, data: JSONBody[AppealIn]
    ) -> Case:
        if maybe_viewer is not None:
            user_id = maybe_viewer.user_id
        elif data.appeal_token is not None:
            user_id = service.appellant(cursors, data.appeal_token)
        else:
            raise Unauthorized()
        return await service.appeal(conn, user_id=user_id, data=data)


class ModerationController(Controller):
    path = "/v1/moderation"
    tags = ["moderation"]

    @get(
        "/queue",
        summary="Open cases, highest priority first (moderators)",
        description="Priority: reports, automatic flags, reach; appeals first among equals. Cases "
        "claimed by another moderator, and appeals of your own decisions, are left out.",
        responses=problems(400, 401, 404),
    )
    async def queue(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        cursors: CursorsDep,
        cursor: CursorParam = None,
        limit: Limit = 20,
    ) -> Page[Case]:
        _moderator(viewer)
        after = None
        if cursor:
            position = cursors.decode("moderation-queue", cursor)
            if len(position) != 2:  # a cursor from before keyset paging
                raise CursorCodec.invalid()
            after = (float(position[0]), int(position[1]))
        items = await service.queue(conn, moderator_id=viewer.user_id, after=after, limit=limit)
        last = items[-1] if len(items) == limit else None
        more = cursors.encode("moderation-queue", [last.priority, last.id]) if last else None
        return Page(items=items, next_cursor=more)

    @get("/cases/{case_id:int}", summary="A case and its reports (moderators)", responses=problems(401, 404))
    async def case(self, conn: ConnDep, viewer: ViewerDep, case_id: FromPath[int]) -> CaseDetail:
        _moderator(viewer)
        return await service.get_case(conn, case_id=case_id)

    @post(
        "/cases/{case_id:int}/claim",
        status_code=200,
        summary="Claim a case for 15 minutes (moderators)",
        responses=problems(401, 404, 409),
    )
    async def claim(self, conn: ConnDep, viewer: ViewerDep, case_id: FromPath[int]) -> Case:
        _moderator(viewer)
        return await service.claim(conn, moderator_id=viewer.user_id, case_id=case_id)

    @post(
        "/cases/{case_id:int}/decide",
        status_code=200,
        summary="Decide a case you claimed (moderators)",
        description=(
            "remove, restore, age_restrict, strike, suspend (duration_hours), ban or dismiss; an "
            "appeal: uphold or overturn. A reason is required. Effects are immediate and the person "
            "affected is told."
        ),
        responses=problems(400, 401, 404, 409, 422),
    )
    async def decide(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        settings: SettingsDep,
        case_id: FromPath[int],
        data: JSONBody[DecisionIn],
    ) -> Case:
        _moderator(viewer)
        return await service.decide(
            conn,
            moderator_id=viewer.user_id,
            case_id=case_id,
            data=data,
            strikes_limit=settings.strikes_before_suspension,
        )

    @get(
        "/audit",
        summary="Every moderation action, newest first (moderators)",
        responses=problems(400, 401, 404),
    )
    async def audit(
        self,
        conn: ConnDep,
        viewer: ViewerDep,
        cursors: CursorsDep,
        target: Annotated[
            Target | None, QueryParameter(description="Only actions on this kind of target.")
        ] = None,
        target_id: Annotated[int | None, QueryParameter(description="Only actions on this target.")] = None,
        cursor: CursorParam = None,
        limit: Limit = 50,
    ) -> Page[AuditEntry]:
        _moderator(viewer)
        before = cursor_id(cursors, "moderation-audit", cursor)
        items = await service.audit_page(
            conn, before_id=before, target=target, target_id=target_id, limit=limit
        )
        return id_page(cursors, "moderation-audit", items, limit)


class ProvenanceController(Controller):
    path = "/v1"
    tags = ["moderation"]

    @get(
        "/clips/{clip_id:int}/provenance",
        summary="A clip's signed provenance manifest",
        description=(
            "Bound to the video's SHA-256: AI-generated, model, provider, time, maker, cameos, parent "
            "clip. Canonical JSON signed with Ed25519; verify with `GET /v1/provenance/key`."
        ),
        responses=problems(401, 404),
    )
    async def clip(
        self,
        conn: ConnDep,
        maybe_viewer: MaybeViewerDep,
        settings: SettingsDep,
        signing_key: SigningKeyDep,
        clip_id: FromPath[int],
    ) -> dict[str, Any]:
        viewer_id = maybe_viewer.user_id if maybe_viewer else None
        await clips.get_clip(conn, viewer_id=viewer_id, clip_id=clip_id, signer=Signer(settings, signing_key))
        return provenance.sign(signing_key, await provenance.manifest(conn, clip_id))

    @get("/provenance/key", summary="The public key provenance manifests are signed with (JWK)")
    async def key(self, signing_key: SigningKeyDep) -> dict[str, str]:
        return provenance.public_jwk(signing_key)
