"""Passwords (argon2) and access tokens (JWT, HS256 pinned).

A token's claims, once verified, are kept until it expires (bounded, least recently used first
out): a client sends the same token with every request, and checking its signature and claims
again each time is most of what authenticating costs. Whether the token still speaks for its
user is not kept here: that is the identity check (services/gateway/identities), made on every
request."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from servicekit.auth import ROLES, AuthContext
from servicekit.errors import Unauthenticated

ISSUER = "aftersales-gateway"
AUDIENCE = "aftersales-api"
ALGORITHM = "HS256"

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Checked when the user does not exist, so that a wrong username costs as long as a wrong
# password and the answer time does not tell which usernames exist.
_DUMMY_HASH = hash_password("no such user")


def verify_unknown_user(password: str) -> bool:
    verify_password(_DUMMY_HASH, password)
    return False


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


# Verified tokens kept: one or a few per signed-in user of a replica.
VERIFIED_CACHE_SIZE = 10_000


class TokenCodec:
    def __init__(
        self, secret: str, ttl_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.secret = secret
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        # token → (caller, token version, expiry)
        self._verified: dict[str, tuple[AuthContext, int, float]] = {}

    def issue(
        self, auth: AuthContext, token_version: int = 0, now: float | None = None
    ) -> IssuedToken:
        """A token for the user as they are at `token_version` (services/gateway/identities)."""
        issued_at = int(time.time() if now is None else now)
        claims = {
            "sub": auth.user_id,
            "ver": token_version,
            "role": auth.role,
            "branch": auth.branch_id,
            "store": auth.store_id,
            "iat": issued_at,
            "exp": issued_at + self.ttl_seconds,
            "iss": ISSUER,
            "aud": AUDIENCE,
        }
        token = jwt.encode(claims, self.secret, algorithm=ALGORITHM)
        return IssuedToken(token, self.ttl_seconds)

    def verify(self, token: str) -> AuthContext:
        return self.verify_versioned(token)[0]

    def verify_versioned(self, token: str) -> tuple[AuthContext, int]:
        """The caller and the user's token version the token was issued for."""
        held = self._verified.pop(token, None)
        if held is None:
            held = self._check(token)
        elif self._clock() >= held[2]:
            # As PyJWT would: expired at `exp` exactly.
            raise Unauthenticated("invalid token: Signature has expired")
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))
        # Put back last: the least recently used is first out.
        self._verified[token] = held
        return held[0], held[1]

    def _check(self, token: str) -> tuple[AuthContext, int, float]:
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                audience=AUDIENCE,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"invalid token: {error}") from None
        role = claims.get("role")
        if role not in ROLES:
            raise Unauthenticated("invalid token: no known role")
        version = claims.get("ver", 0)
        if not isinstance(version, int):
            raise Unauthenticated("invalid token: no version")
        auth = AuthContext(
            user_id=str(claims["sub"]),
            role=role,
            branch_id=claims.get("branch") or None,
            store_id=claims.get("store") or None,
        )
        return auth, version, float(claims["exp"])
