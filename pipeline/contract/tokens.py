"""Bearer tokens mapped to departments: the collector's (who may emit for which department)
and the worker's context API's (which department reads), in one JSON format.

Pure, but for reading a tokens file: parsing the configuration and checking a request's
Authorization header. Tokens are secrets: no message, repr or log line holds one (an entry
is named by its position in the configuration), and a presented token is compared with
every configured one in constant time, so response times tell nothing about how much of a
guess was right. What a token may do (emit, read) is the setting that holds it: a token of
JOURNEYS_COLLECTOR_TOKENS never reads, one of JOURNEYS_CONTEXT_TOKENS never emits.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

from pipeline.contract.rules import is_slug


class TokenConfigError(ValueError):
    """A tokens setting (or its file) is missing or malformed. The message names the entry
    by position, never the token itself."""


ALL = "*"
# RFC 6750's b64token: what a bearer token may be made of.
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")
MAX_TOKEN = 4096


@dataclass(frozen=True)
class Grant:
    """The departments one token speaks for (emits for, or reads as), or every department."""

    departments: frozenset[str]
    every_department: bool
    index: int  # the token's position in the configuration: a name that is no secret

    def allows(self, department: str) -> bool:
        return self.every_department or department in self.departments

    def describe(self) -> str:
        """The departments, for a reason or a dead-letter header ("*" for all)."""
        return ALL if self.every_department else ",".join(sorted(self.departments))


class Tokens:
    """The configured tokens; `authenticate` turns an Authorization header into a Grant."""

    def __init__(self, grants: dict[str, Grant]) -> None:
        if not grants:
            raise TokenConfigError("no tokens: at least one token is needed")
        # Digests of equal length, so compare_digest's time depends on nothing secret.
        self._digests = [(_digest(token), grant) for token, grant in grants.items()]

    def __len__(self) -> int:
        return len(self._digests)

    def __repr__(self) -> str:
        return f"Tokens({len(self)} tokens)"

    def authenticate(self, authorization: str | None) -> Grant | None:
        """The grant of the bearer token in `authorization`, or None (no token, another
        scheme, an unknown token)."""
        presented = bearer_token(authorization)
        if presented is None:
            return None
        digest = _digest(presented)
        found: Grant | None = None
        for candidate, grant in self._digests:  # every one, even after a match
            if hmac.compare_digest(candidate, digest):
                found = grant
        return found


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN:
        return None
    return token


def parse_tokens(text: str, source: str) -> Tokens:
    """Tokens from their JSON form, `{"TOKEN": ["department", ...], ...}`; `source` names
    where the text came from in errors (a variable or a file)."""
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise TokenConfigError(
            f"{source}: not JSON ({error.__class__.__name__} at position "
            f"{getattr(error, 'pos', '?')}), expected an object such as "
            '{"TOKEN": ["billing"]}'
        ) from None
    if not isinstance(raw, dict):
        raise TokenConfigError(
            f"{source}: got JSON {type(raw).__name__}, expected an object mapping each token "
            'to its departments, such as {"TOKEN": ["billing"]}'
        )
    grants = {}
    for index, (token, departments) in enumerate(raw.items(), start=1):
        where = f"{source}: token {index} of {len(raw)}"
        _check_token(token, where)
        grants[token] = _grant(departments, where, index)
    if not grants:
        raise TokenConfigError(f"{source}: no tokens, expected at least one")
    return Tokens(grants)


def _check_token(token: str, where: str) -> None:
    if not token:
        raise TokenConfigError(f"{where}: empty, expected a token")
    if len(token) > MAX_TOKEN:
        raise TokenConfigError(f"{where}: {len(token)} characters, expected at most {MAX_TOKEN}")
    if not set(token) <= _TOKEN_CHARS:
        raise TokenConfigError(
            f"{where}: holds characters a bearer token cannot carry, expected letters, digits "
            "and -._~+/= only"
        )


def _grant(departments: object, where: str, index: int) -> Grant:
    if not isinstance(departments, list) or not departments:
        raise TokenConfigError(
            f"{where}: got {_shown(departments)}, expected a non-empty list of departments, "
            f'or ["{ALL}"] for all'
        )
    if ALL in departments:
        if departments != [ALL]:
            raise TokenConfigError(f'{where}: "{ALL}" stands alone, expected ["{ALL}"]')
        return Grant(frozenset(), True, index)
    for department in departments:
        if not isinstance(department, str) or not is_slug(department):
            raise TokenConfigError(
                f"{where}: department {_shown(department)} is not a slug, expected a-z first, "
                "then a-z, 0-9 or _ (64 characters at most)"
            )
    return Grant(frozenset(departments), False, index)


def _shown(value: object) -> str:
    return f"{type(value).__name__} {json.dumps(value)[:40]}"


def _digest(token: str) -> bytes:
    # surrogatepass: a header's undecodable bytes arrive as lone surrogates.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
