"""Request and response bodies of reports, the review queue, decisions, appeals and the audit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from backend.accounts.schemas import Input

Target = Literal["clip", "comment", "user", "cameo"]
Reason = Literal[
    "sexual",
    "minors",
    "violence",
    "hate",
    "harassment",
    "self_harm",
    "spam",
    "impersonation",
    "likeness_without_consent",
    "ip",
    "undisclosed_ad",
    "other",
]
Action = Literal[
    "remove", "restore", "age_restrict", "strike", "suspend", "ban", "dismiss", "uphold", "overturn"
]
Ms = Annotated[int, msgspec.Meta(ge=0, le=600_000)]
Text = Annotated[str, msgspec.Meta(max_length=1000)]


class ReportIn(Input):
    target: Target
    id: int
    reason: Reason
    note: Text = ""
    start_ms: Ms | None = None
    end_ms: Ms | None = None


class Report(msgspec.Struct, kw_only=True):
    id: int
    case_id: int
    target: Target
    target_id: int
    reason: Reason
    note: str
    start_ms: int | None
    end_ms: int | None
    created_at: datetime


class Case(msgspec.Struct, kw_only=True):
    id: int
    kind: Literal["report", "appeal"]
    target: Target
    target_id: int
    subject_id: int | None
    status: Literal["open", "decided"]
    priority: float
    report_count: int
    auto_flags: int
    reasons: list[str]
    claimed_by: int | None
    claimed_until: datetime | None
    decided_by: int | None
    action: Action | None
    action_reason: str | None
    decided_at: datetime | None
    appeal_of: int | None
    statement: str | None = None  # the appellant's words, on an appeal
    created_at: datetime


class CaseDetail(Case, kw_only=True):
    reports: list[Report] = msgspec.field(default_factory=list)


class DecisionIn(Input):
    action: Action
    reason: Annotated[str, msgspec.Meta(max_length=1000)]
    duration_hours: Annotated[int, msgspec.Meta(ge=1, le=24 * 365)] | None = None


class AppealIn(Input):
    case_id: int
    statement: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    # For a suspended or banned account, which has no session: the token its sign-in offered.
    appeal_token: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class AuditEntry(msgspec.Struct, kw_only=True):
    id: int
    actor_id: int | None
    action: str
    case_id: int | None
    target: str | None
    target_id: int | None
    reason: str | None
    detail: dict[str, Any]
    at: datetime
