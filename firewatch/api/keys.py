"""The Redis keys of the HTTP API (the linkage queue's are in firewatch/linkage/keys.py).

    fw:api:tokens                 hash: sha256 hex of a bearer token -> JSON {role, name, created}
    fw:api:token_names            hash: token name -> sha256 hex (names are unique)
    fw:api:rate:{digest}:{window} counter: requests of one token in one fixed window (expires)

The tokens themselves are never stored: only their sha256.
"""

from __future__ import annotations

PREFIX = "fw:api:"

TOKENS = PREFIX + "tokens"
TOKEN_NAMES = PREFIX + "token_names"


def rate(digest: str, window: int) -> str:
    """The request counter of the token whose sha256 is `digest`, in window number `window`."""
    return f"{PREFIX}rate:{digest}:{window}"
