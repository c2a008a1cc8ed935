"""The cameo API: what clients send and get back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from backend.accounts.schemas import Input, UserSummary

Kind = Literal["person", "pet", "object", "character"]
Consent = Literal["only_me", "approved", "mutuals", "everyone"]
Status = Literal["pending", "pending_review", "verified", "rejected"]
DisplayName = Annotated[str, Meta(min_length=1, max_length=80)]
Rules = Annotated[str, Meta(max_length=500)]
Rights = Annotated[str, Meta(min_length=10, max_length=1000)]
Note = Annotated[str, Meta(max_length=300)]
Reason = Annotated[str, Meta(min_length=3, max_length=500)]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$")]


class CameoCreate(Input):
    kind: Kind
    display_name: DisplayName
    consent: Consent = "only_me"
    rules: Rules = ""
    allow_remix: bool = True
    # Character cameos are for rights holders: say what rights you hold (required for them).
    declared_rights: Rights | None = None


class CameoUpdate(Input):
    display_name: DisplayName | UnsetType = UNSET
    consent: Consent | UnsetType = UNSET
    rules: Rules | UnsetType = UNSET
    allow_remix: bool | UnsetType = UNSET
    declared_rights: Rights | UnsetType = UNSET


class Licence(msgspec.Struct, kw_only=True):
    """A price per use (each published clip) or per second of clip, and a share of the commerce
    earned by clips featuring the cameo."""

    price_minor: Annotated[int, Meta(ge=0, le=100_000_000)]
    unit: Literal["use", "second"]
    currency: Currency
    revenue_share_percent: Annotated[float, Meta(ge=0, le=100)] = 0.0


class LicenceIn(Licence, Input):
    pass


class Cameo(msgspec.Struct, kw_only=True):
    id: int
    kind: Kind
    display_name: str
    owner: UserSummary
    status: Status
    consent: Consent
    rules: str
    allow_remix: bool
    declared_rights: str | None
    licence: Licence | None
    created_at: datetime
    verified_at: datetime | None
    # For the caller: may they put this cameo in a clip now, and what did they ask for?
    usable: bool
    my_request: Literal["requested", "approved", "denied", "revoked"] | None = None


class Challenge(msgspec.Struct, kw_only=True):
    id: int
    phrase: str
    expires_at: datetime
    instructions: str


class VerificationIn(Input):
    challenge_id: Annotated[int, Meta(ge=1)]
    upload_id: Annotated[int, Meta(ge=1)]


class ReviewIn(Input):
    decision: Literal["verify", "reject"]
    reason: Reason


class RequestIn(Input):
    note: Note = ""


class Grant(msgspec.Struct, kw_only=True):
    user: UserSummary
    status: Literal["requested", "approved", "denied", "revoked"]
    note: str
    created_at: datetime
    decided_at: datetime | None


class Appearance(msgspec.Struct, kw_only=True):
    """One clip or generation that uses the cameo, whoever made it."""

    kind: Literal["clip", "draft", "generation"]
    clip_id: int | None
    generation_id: int | None
    maker: UserSummary
    status: str
    prompt: str
    created_at: datetime
    removed: bool  # the owner removed it; it stays hidden
    allowed: bool  # consent still covers its maker today


# licence: a fee for a published clip using the cameo; revenue_share: its share of an order
# attributed to such a clip; refund: that share given back.
LineKind = Literal["licence", "revenue_share", "refund"]


class EarningsLine(msgspec.Struct, kw_only=True):
    """One ledger line of the owner's cameo earnings caused by this cameo."""

    id: int
    kind: LineKind
    clip_id: int | None
    user: UserSummary | None  # who made the clip
    amount_minor: int
    currency: str
    created_at: datetime


class Total(msgspec.Struct, kw_only=True):
    currency: str
    amount_minor: int
    uses: int  # licence fees booked


class Earnings(msgspec.Struct, kw_only=True):
    cameo_id: int
    totals: list[Total]
    entries: list[EarningsLine]
    next_cursor: str | None = None
