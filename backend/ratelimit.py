"""A rate limiter on Redis: GCRA in one Lua script, so the limit holds across every process.

A :class:`Rule` says how many actions a key may take per period; :func:`enforce` charges one
action and either records the ``RateLimit-*`` headers for the response or raises 429 with
``Retry-After``. Keys are built per rule (``login:ip:203.0.113.9``), so one Redis serves all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from litestar import Request

from backend.errors import RateLimited
from backend.redis_pool import Keys, Redis

# GCRA (generic cell rate algorithm): the key holds the "theoretical arrival time" (TAT) in ms.
# An action is allowed when the new TAT stays within one period of now. Time comes from the
# Redis server so clocks of API processes do not matter.
_GCRA = """
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = period / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * cost
if new_tat - now > period then
  local retry_after = new_tat - now - period
  local remaining = math.floor((period - (tat - now)) / interval)
  return {0, remaining, math.ceil(tat - now), math.ceil(retry_after)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now))
local remaining = math.floor((period - (new_tat - now)) / interval)
return {1, remaining, math.ceil(new_tat - now), 0}
"""


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int
    period_s: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    retry_after_s: int

    def headers(self) -> dict[str, str]:
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(self.remaining, 0)),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after_s)
        return out


class Limiter:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._keys = Keys(prefix, "rl")
        self._script = redis.register_script(_GCRA)

    async def hit(self, rule: Rule, subject: str, cost: int = 1) -> Decision:
        allowed, remaining, reset_ms, retry_ms = await self._script(
            keys=[self._keys(rule.name, subject)], args=[rule.limit, rule.period_s * 1000, cost]
        )
        return Decision(
            allowed=bool(allowed),
            limit=rule.limit,
            remaining=int(remaining),
            reset_s=math.ceil(int(reset_ms) / 1000),
            retry_after_s=max(1, math.ceil(int(retry_ms) / 1000)) if not allowed else 0,
        )

    async def reset(self, rule: Rule, subject: str) -> None:
        await self._redis.delete(self._keys(rule.name, subject))


async def enforce(request: Request[Any, Any, Any], limiter: Limiter, rule: Rule, subject: str) -> Decision:
    """Charge one action; raise 429 when over the limit, else keep the headers for the response.

    When several rules apply to one request the tightest one's headers are sent.
    """
    decision = await limiter.hit(rule, subject)
    if not decision.allowed:
        raise RateLimited(
            f"too many attempts; try again in {decision.retry_after_s} s",
            code="rate_limited",
            headers=decision.headers(),
            extra={"retry_after": decision.retry_after_s},
        )
    state = request.scope.setdefault("state", {})
    current: Decision | None = state.get("ratelimit")
    if current is None or decision.remaining < current.remaining:
        state["ratelimit"] = decision
    return decision


def client_ip(request: Request[Any, Any, Any], trust_forwarded_for: bool) -> str:
    if trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.client.host if request.client else "unknown"
