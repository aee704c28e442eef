"""Bearer tokens of the HTTP API, kept in Redis as their sha256 only (`firewatch token ...`).

A token is `fw_` and 32 random bytes (secrets.token_urlsafe), printed once by `add` and never
stored: Redis holds sha256(token) -> {role, name, created} and name -> sha256 (keys.py). A
request's token is found by its sha256 (gate.py), so no lookup's timing can tell anything
about the token. Roles: `ingest` (POST detections), `dashboard`
(read only), `team:<id>` (its own team's orders), `admin` (everything).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import redis
from pydantic import BaseModel, ConfigDict

from firewatch.api import keys
from firewatch.errors import FirewatchError

RoleKind = Literal["ingest", "dashboard", "team", "admin"]
KINDS: tuple[RoleKind, ...] = ("ingest", "dashboard", "team", "admin")
_SIMPLE: dict[str, RoleKind] = {k: k for k in KINDS if k != "team"}
_NAME = re.compile(r"^[\w.@:+-]{1,100}$")

# KEYS: token_names, tokens; ARGV: name, digest, record JSON. 1 added, 0 the name is taken.
_ADD = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"""
# KEYS: token_names, tokens; ARGV: name. 1 revoked, 0 no such name.
_REVOKE = """
local digest = redis.call('HGET', KEYS[1], ARGV[1])
if not digest then return 0 end
redis.call('HDEL', KEYS[2], digest)
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
"""


class TokenError(FirewatchError):
    """A token command that cannot be carried out (names the role or token name at fault)."""


@dataclass(frozen=True)
class Role:
    kind: RoleKind
    team: str | None = None  # for kind `team`

    @classmethod
    def parse(cls, text: str) -> Role:
        """`ingest`, `dashboard`, `admin` or `team:<id>`."""
        kind, colon, team = text.partition(":")
        if kind == "team" and team.strip() == team and 0 < len(team) <= 200:
            return cls("team", team)
        if not colon and kind in _SIMPLE:
            return cls(_SIMPLE[kind])
        raise TokenError(f"role {text!r}: choose ingest, dashboard, admin or team:<team id>")

    def __str__(self) -> str:
        return f"team:{self.team}" if self.kind == "team" else self.kind


class TokenRecord(BaseModel):
    """What Redis keeps of a token (under its sha256): never the token itself."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: str
    created: datetime

    @property
    def parsed_role(self) -> Role:
        return Role.parse(self.role)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "fw_" + secrets.token_urlsafe(32)


class TokenStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r: Any = client  # redis-py's return types are unions of its sync and async clients
        self._add = client.register_script(_ADD)
        self._revoke = client.register_script(_REVOKE)

    def add(self, role: str, name: str, now: datetime) -> str:
        """A new token for `name` with `role`; returns the token (shown once, stored hashed)."""
        if not _NAME.match(name):
            raise TokenError(
                f"token name {name!r}: 1 to 100 letters, digits or . _ @ : + - (no spaces)"
            )
        record = TokenRecord(name=name, role=str(Role.parse(role)), created=now)
        token = new_token()
        added = self._add(
            keys=[keys.TOKEN_NAMES, keys.TOKENS],
            args=[name, digest(token), record.model_dump_json()],
        )
        if not added:
            raise TokenError(f"a token named {name!r} exists: revoke it first, or pick a name")
        return token

    def records(self) -> list[TokenRecord]:
        records = [TokenRecord.model_validate_json(v) for v in self.r.hvals(keys.TOKENS)]
        return sorted(records, key=lambda t: t.name)

    def revoke(self, name: str) -> bool:
        return bool(self._revoke(keys=[keys.TOKEN_NAMES, keys.TOKENS], args=[name]))
