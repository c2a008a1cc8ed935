"""Reports, cases, the review queue, decisions with immediate effects, appeals and the audit.

Reports of one target fold into one open case; automatic flags (screening's review outcome,
near-duplicates) open or join the same case through :func:`open_case`. A moderator claims a
case from the queue (highest priority first), then decides it with a reason. Effects are
immediate because every read goes through the clips domain's visibility rule: a removed clip is
not ``published``; a suspended or banned author's clips fail the author check; an
age-restricted clip needs a signed-in adult. Suspending or banning also revokes every session.
The person affected is told, and may appeal a decision once; the appeal is a case of its own
that only another moderator can decide. Every step is written to the append-only audit log.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from backend.accounts import service as accounts
from backend.cursor import CursorCodec
from backend.db import Conn
from backend.errors import BadRequest, Conflict, NotFound, Unauthorized, ValidationFailed
from backend.notifications import service as notifications
from feed import visibility
from moderation import queries as q
from moderation.schemas import AppealIn, AuditEntry, Case, CaseDetail, DecisionIn, Report, ReportIn

log = structlog.get_logger()

CLAIM_MINUTES = 15
DEFAULT_SUSPENSION_HOURS = 72
STRIKE_SUSPENSION_HOURS = 7 * 24
APPEALABLE = ("remove", "age_restrict", "strike", "suspend", "ban")
ACTIONS_BY_TARGET = {
    "clip": {"remove", "restore", "age_restrict", "strike", "suspend", "ban", "dismiss"},
    "comment": {"remove", "restore", "strike", "suspend", "ban", "dismiss"},
    "user": {"strike", "suspend", "ban", "dismiss"},
    "cameo": {"remove", "restore", "strike", "suspend", "ban", "dismiss"},
}
_SUBJECT = {
    "clip": q.CLIP_SUBJECT,
    "comment": q.COMMENT_SUBJECT,
    "user": q.USER_SUBJECT,
    "cameo": q.CAMEO_SUBJECT,
}


def _report(row: Any) -> Report:
    return Report(**dict(row))


def _case(row: Any) -> Case:
    fields = {k: row[k] for k in Case.__struct_fields__ if k in row.keys()}  # noqa: SIM118
    fields["reasons"] = list(row["reasons"])
    return Case(**fields)


async def audit(
    conn: Conn,
    *,
    actor_id: int | None,
    action: str,
    case_id: int | None = None,
    target: str | None = None,
    target_id: int | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(q.AUDIT, actor_id, action, case_id, target, target_id, reason, detail or {})


# --- reports and automatic flags -------------------------------------------------------------


async def report(conn: Conn, *, reporter_id: int, data: ReportIn) -> Report:
    if data.start_ms is not None and data.end_ms is not None and data.start_ms > data.end_ms:
        raise ValidationFailed("start_ms must not be after end_ms", code="bad_range", field="end_ms")
    subject_id = await conn.fetchval(_SUBJECT[data.target], reporter_id, data.id)
    if subject_id is None:
        raise NotFound(f"no {data.target} {data.id} you can see", code="unknown_target", field="id")
    if subject_id == reporter_id:
        raise ValidationFailed("you cannot report your own content", code="own_content", field="id")
    case_id = await conn.fetchval(q.OPEN_CASE, data.target, data.id, subject_id)
    row = await conn.fetchrow(
        q.INSERT_REPORT,
        case_id,
        reporter_id,
        data.target,
        data.id,
        data.reason,
        data.note,
        data.start_ms,
        data.end_ms,
    )
    if row is None:  # they reported this already: the same report, counted once
        row = await conn.fetchrow(q.EXISTING_REPORT, case_id, reporter_id)
        assert row is not None
        return _report(row)
    await conn.execute(q.COUNT_REPORT, case_id, data.reason)
    return _report(row)


async def my_reports(conn: Conn, *, reporter_id: int, before_id: int | None, limit: int) -> list[Report]:
    return [_report(r) for r in await conn.fetch(q.MY_REPORTS, reporter_id, before_id, limit)]


async def open_case(
    conn: Conn, *, target: str, target_id: int, subject_id: int | None, reason: str, detail: dict[str, Any]
) -> int:
    """An automatic flag (screening said review, a near-duplicate, …): opens the target's case or
    joins the open one, and is audited as the system's."""
    case_id = int(await conn.fetchval(q.OPEN_CASE, target, target_id, subject_id))
    await conn.execute(q.COUNT_FLAG, case_id, reason)
    await audit(
        conn,
        actor_id=None,
        action="flag",
        case_id=case_id,
        target=target,
        target_id=target_id,
        reason=reason,
        detail=detail,
    )
    return case_id


# --- the queue -------------------------------------------------------------------------------


async def queue(conn: Conn, *, moderator_id: int, after: tuple[float, int] | None, limit: int) -> list[Case]:
    """Highest priority first; ``after`` is the (priority, id) of the last case of the page before."""
    priority, last_id = after if after is not None else (None, None)
    return [_case(r) for r in await conn.fetch(q.QUEUE, moderator_id, priority, last_id, limit)]


async def get_case(conn: Conn, *, case_id: int) -> CaseDetail:
    row = await conn.fetchrow(q.CASE, case_id)
    if row is None:
        raise NotFound(f"no case {case_id}", code="unknown_case")
    case = _case(row)
    reports = [_report(r) for r in await conn.fetch(q.CASE_REPORTS, case_id)]
    return CaseDetail(**{f: getattr(case, f) for f in Case.__struct_fields__}, reports=reports)


async def _lock(conn: Conn, case_id: int) -> Any:
    row = await conn.fetchrow(q.LOCK_CASE, case_id)
    if row is None:
        raise NotFound(f"no case {case_id}", code="unknown_case")
    return row


async def _decided_by(conn: Conn, case_id: int | None) -> int | None:
    if case_id is None:
        return None
    value = await conn.fetchval("SELECT decided_by FROM moderation_cases WHERE id = $1", case_id)
    return int(value) if value is not None else None


def _lapsed(until: datetime | None) -> bool:
    return until is None or until < datetime.now(UTC)


async def claim(conn: Conn, *, moderator_id: int, case_id: int) -> Case:
    row = await _lock(conn, case_id)
    if row["status"] != "open":
        raise Conflict("this case is decided", code="case_decided")
    if row["subject_id"] == moderator_id:
        raise Conflict("a case about you goes to another moderator", code="own_case")
    if row["kind"] == "appeal" and await _decided_by(conn, row["appeal_of"]) == moderator_id:
        raise Conflict("an appeal goes to another moderator than the one who decided", code="own_decision")
    held = row["claimed_by"] is not None and row["claimed_by"] != moderator_id
    if (
        held
        and row["claimed_until"] is not None
        and row["claimed_until"] > datetime.now(row["claimed_until"].tzinfo)
    ):
        raise Conflict("another moderator is working on this case", code="case_claimed")
    await conn.execute(q.CLAIM, case_id, moderator_id, CLAIM_MINUTES)
    await audit(
        conn,
        actor_id=moderator_id,
        action="claim",
        case_id=case_id,
        target=row["target"],
        target_id=row["target_id"],
    )
    return _case(await _lock(conn, case_id))


# --- decisions and their effects -------------------------------------------------------------


async def _set_clip(conn: Conn, clip_id: int, **values: Any) -> None:
    visibility.changed(clip=clip_id)  # feed sessions in this process; the rest are notified
    if "status" in values:
        if values["status"] == "removed":
            await conn.execute(
                "UPDATE clips SET status = 'removed', removed_at = now(), removed_reason = $2, "
                "updated_at = now() WHERE id = $1 AND status = 'published'",
                clip_id,
                values.get("reason") or "moderation",
            )
        else:
            await conn.execute(
                "UPDATE clips SET status = 'published', removed_at = NULL, removed_reason = NULL, "
                "updated_at = now() WHERE id = $1 AND status = 'removed'",
                clip_id,
            )
    if "age_restricted" in values:
        await conn.execute(
            "UPDATE clips SET age_restricted = $2 WHERE id = $1", clip_id, values["age_restricted"]
        )


async def _suspend(conn: Conn, user_id: int, *, hours: int | None, ban: bool) -> None:
    if ban:
        await conn.execute(
            "UPDATE users SET status = 'banned', suspended_until = NULL WHERE id = $1", user_id
        )
    else:
        await conn.execute(
            "UPDATE users SET status = 'suspended', suspended_until = now() + make_interval(hours => $2) "
            "WHERE id = $1 AND status <> 'banned'",
            user_id,
            hours or DEFAULT_SUSPENSION_HOURS,
        )
    # Their sessions end now: the next request with any of their tokens is a 401.
    await accounts.revoke_all_sessions(conn, user_id)
    visibility.changed(author=user_id, viewer=user_id)  # and their clips leave feed sessions


async def _apply(
    conn: Conn,
    *,
    target: str,
    target_id: int,
    subject_id: int | None,
    action: str,
    reason: str,
    hours: int | None,
    strikes_limit: int,
    case_id: int,
    undo: bool = False,
) -> None:
    """Carry out ``action`` on the target (or undo it, for an overturned appeal)."""
    if action in ("remove", "restore"):
        removing = (action == "remove") != undo
        if target == "clip":
            await _set_clip(conn, target_id, status="removed" if removing else "published", reason=reason)
        elif target == "comment":
            await conn.execute(
                "UPDATE comments SET status = $2 WHERE id = $1 AND status IN ('visible', 'removed')",
                target_id,
                "removed" if removing else "visible",
            )
        elif target == "cameo":
            visibility.changed(cameos=True)
            await conn.execute(
                "UPDATE cameos SET status = $2, updated_at = now() WHERE id = $1",
                target_id,
                "rejected" if removing else "verified",
            )
    elif action == "age_restrict" and target == "clip":
        await _set_clip(conn, target_id, age_restricted=not undo)
    elif action == "strike" and subject_id is not None:
        strikes = await conn.fetchval(
            "UPDATE users SET strikes = greatest(strikes + $2, 0) WHERE id = $1 RETURNING strikes",
            subject_id,
            -1 if undo else 1,
        )
        if not undo and strikes is not None and strikes >= strikes_limit and strikes % strikes_limit == 0:
            await _suspend(conn, subject_id, hours=STRIKE_SUSPENSION_HOURS, ban=False)
            await audit(
                conn,
                actor_id=None,
                action="suspend",
                case_id=case_id,
                target="user",
                target_id=subject_id,
                reason=f"{strikes} strikes",
                detail={"hours": STRIKE_SUSPENSION_HOURS},
            )
    elif action in ("suspend", "ban") and subject_id is not None:
        if undo:
            await conn.execute(
                "UPDATE users SET status = 'active', suspended_until = NULL WHERE id = $1", subject_id
            )
        else:
            await _suspend(conn, subject_id, hours=hours, ban=action == "ban")


async def decide(
    conn: Conn, *, moderator_id: int, case_id: int, data: DecisionIn, strikes_limit: int
) -> Case:
    reason = data.reason.strip()
    if not reason:
        raise ValidationFailed("a decision needs a reason", code="reason_required", field="reason")
    if data.duration_hours is not None and data.action != "suspend":
        raise ValidationFailed(
            "duration_hours goes with suspend only", code="duration_not_allowed", field="duration_hours"
        )
    row = await _lock(conn, case_id)
    if row["status"] != "open":
        raise Conflict("this case is decided", code="case_decided")
    if row["claimed_by"] != moderator_id or _lapsed(row["claimed_until"]):
        raise Conflict("claim the case before deciding it", code="not_claimed")
    target, target_id, subject_id = row["target"], row["target_id"], row["subject_id"]
    if row["kind"] == "appeal":
        if data.action not in ("uphold", "overturn"):
            raise ValidationFailed("an appeal is upheld or overturned", code="bad_action", field="action")
        original = await conn.fetchrow(
            "SELECT action, action_reason FROM moderation_cases WHERE id = $1", row["appeal_of"]
        )
        if data.action == "overturn" and original is not None:
            await _apply(
                conn,
                target=target,
                target_id=target_id,
                subject_id=subject_id,
                action=original["action"],
                reason=reason,
                hours=None,
                strikes_limit=strikes_limit,
                case_id=case_id,
                undo=True,
            )
    else:
        if data.action not in ACTIONS_BY_TARGET[target]:
            raise ValidationFailed(
                f"{data.action} does not apply to a {target}", code="bad_action", field="action"
            )
        await _apply(
            conn,
            target=target,
            target_id=target_id,
            subject_id=subject_id,
            action=data.action,
            reason=reason,
            hours=data.duration_hours,
            strikes_limit=strikes_limit,
            case_id=case_id,
        )
    await conn.execute(q.DECIDE, case_id, moderator_id, data.action, reason)
    await audit(
        conn,
        actor_id=moderator_id,
        action=data.action,
        case_id=case_id,
        target=target,
        target_id=target_id,
        reason=reason,
        detail={"duration_hours": data.duration_hours} if data.duration_hours else {},
    )
    if subject_id is not None and data.action != "dismiss":
        await notifications.notify(
            conn,
            recipient_id=subject_id,
            kind="moderation",
            clip_id=target_id if target == "clip" else None,
            data={
                "case_id": case_id,
                "action": data.action,
                "reason": reason,
                "target": target,
                "target_id": target_id,
                "appealable": row["kind"] == "report" and data.action in APPEALABLE,
            },
        )
    log.info("moderation.decided", case_id=case_id, action=data.action, moderator_id=moderator_id)
    return _case(await _lock(conn, case_id))


# --- appeals and the audit -------------------------------------------------------------------


APPEAL_TOKEN_MINUTES = 60


async def appeal_offer(conn: Conn, cursors: CursorCodec, *, user_id: int) -> dict[str, Any]:
    """What a suspended or banned account is shown when it signs in: the decisions it may
    still appeal and a short-lived token that stands in for a session on ``POST /v1/appeals``
    only (its sessions were revoked, so it could not appeal otherwise)."""
    rows = await conn.fetch(q.APPEALABLE, user_id, list(APPEALABLE))
    expires = datetime.now(UTC) + timedelta(minutes=APPEAL_TOKEN_MINUTES)
    return {
        "appealable": [
            {**dict(r), "decided_at": r["decided_at"].isoformat() if r["decided_at"] else None} for r in rows
        ],
        "appeal_token": cursors.encode("appeal", [user_id, int(expires.timestamp())]),
        "appeal_token_expires_at": expires.isoformat(),
    }


def appellant(cursors: CursorCodec, token: str) -> int:
    """The account an appeal token was issued to; 401 when forged or expired."""
    try:
        user_id, expires = cursors.decode("appeal", token)
    except (BadRequest, ValueError, TypeError):
        raise Unauthorized("this appeal token is not valid", code="invalid_appeal_token") from None
    if not isinstance(user_id, int) or not isinstance(expires, int):
        raise Unauthorized("this appeal token is not valid", code="invalid_appeal_token")
    if expires < datetime.now(UTC).timestamp():
        raise Unauthorized("this appeal token has expired; sign in again", code="invalid_appeal_token")
    return user_id


async def appeal(conn: Conn, *, user_id: int, data: AppealIn) -> Case:
    row = await conn.fetchrow(q.CASE, data.case_id)
    if row is None or row["subject_id"] != user_id or row["kind"] != "report" or row["status"] != "decided":
        raise NotFound(
            f"no decision {data.case_id} about you to appeal", code="unknown_case", field="case_id"
        )
    if row["action"] not in APPEALABLE:
        raise ValidationFailed("only actions taken against you can be appealed", code="not_appealable")
    appeal_id = await conn.fetchval(
        q.INSERT_APPEAL, row["target"], row["target_id"], user_id, data.case_id, data.statement
    )
    if appeal_id is None:
        raise Conflict("this decision was appealed already; an appeal is heard once", code="appealed")
    await audit(
        conn,
        actor_id=user_id,
        action="appeal",
        case_id=appeal_id,
        target=row["target"],
        target_id=row["target_id"],
        detail={"appeal_of": data.case_id},
    )
    return _case(await conn.fetchrow(q.CASE, appeal_id))


async def audit_page(
    conn: Conn, *, before_id: int | None, target: str | None, target_id: int | None, limit: int
) -> list[AuditEntry]:
    rows = await conn.fetch(q.AUDIT_PAGE, before_id, target, target_id, limit)
    return [AuditEntry(**dict(r)) for r in rows]
