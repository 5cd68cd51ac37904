"""The caller's context between our processes, signed: a short-lived token (JWT, EdDSA over
Ed25519) that says who the caller is (user, role, branch, store), who vouches for it (the
issuer), until when, and which services may act on it (the audience).

- The gateway signs for its users, and for the public on its routes without login (role
  `public`, which every RPC refuses but those that ask for it): one token per (caller, service
  called), reused until a minute before it expires. A token for a service also names the
  services it calls on for its callers (CALLS_ON), so it can pass the caller's token on.
- A service acting on its own (consumers, relay, demo loading) signs with its own key as
  `service:<name>`, role `service` only, and only for the services it calls on.
- Services hold only public keys. A verified token is kept until it expires, so the hot path
  pays a dictionary look-up, not a signature check, per call.

Keys are files in one folder (settings `INTERNAL_TOKEN_KEYS`): `jwks.json`, the public keys of
every signer, several per signer while one replaces another, and the process's own
`<process>.jwk`; both are re-read when they change (servicekit.keys, which rotates them). A
token names its key (`kid`); with mutual TLS, the certificate of the process that sends it
must be the token's signer's, or a service the token lets pass it on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar, Token
from pathlib import Path
from typing import Any

import jwt

from servicekit.auth import PUBLIC_CALLER, ROLES, AuthContext, service_identity
from servicekit.errors import Unauthenticated
from servicekit.keys import (
    PublicKey,
    SigningKey,
    WatchedFile,
    generate_keys,
    signing_key,
    trusted_keys,
)

GATEWAY = "gateway"
# Which services each service calls on while serving a caller (orders → inventory is coming).
CALLS_ON: dict[str, tuple[str, ...]] = {
    "orders": ("inventory",),
    "inventory": (),
    "customers": (),
    "reporting": (),
}
METADATA_KEY = "x-caller-token"
ALGORITHM = "EdDSA"
LIFETIME_SECONDS = 300
RENEW_BEFORE_SECONDS = 60
# Clocks of different machines disagree a little.
LEEWAY_SECONDS = 30
CACHE_SIZE = 10_000

Clock = Callable[[], float]


def audience_for(service: str) -> tuple[str, ...]:
    """The services a token for `service` names: it, those it calls on, theirs, and so on."""
    names = [service]
    for name in names:  # the list grows while we walk it
        names += [callee for callee in CALLS_ON.get(name, ()) if callee not in names]
    return tuple(names)


def issuer_for(process: str) -> str:
    return GATEWAY if process == GATEWAY else service_identity(process).user_id


class CallerTokenSigner:
    """Signs callers' contexts as `process` (the gateway, or a service for its own work)."""

    def __init__(
        self, process: str, key: SigningKey | WatchedFile[SigningKey], clock: Clock = time.time
    ) -> None:
        self._source = key if isinstance(key, WatchedFile) else None
        self._key = key.value if isinstance(key, WatchedFile) else key
        if self._key.process != process:
            raise ValueError(f"that key is not one of {process}")
        self.process = process
        self.issuer = issuer_for(process)
        self._clock = clock
        self._signed: dict[tuple[AuthContext, str], tuple[str, float]] = {}

    def token_for(self, caller: AuthContext, service: str) -> str:
        """A token for calling `service` as `caller`: the one made earlier while it has more
        than a minute left, else a new one. Once the key is replaced, only new ones."""
        if self._source is not None:
            key = self._source.current()
            if key is not self._key:
                # The old key is retired once its tokens expire; none are signed or sent after.
                self._signed.clear()
                self._key = key
        now = self._clock()
        held = self._signed.pop((caller, service), None)
        if held is None or held[1] - now <= RENEW_BEFORE_SECONDS:
            held = self._sign(caller, service, now)
        if len(self._signed) >= CACHE_SIZE:
            # The least recently used goes: each use moves a token to the end.
            self._signed.pop(next(iter(self._signed)))
        self._signed[(caller, service)] = held
        return held[0]

    def _sign(self, caller: AuthContext, service: str, now: float) -> tuple[str, float]:
        if self.process == GATEWAY:
            if caller.role not in ROLES and caller != PUBLIC_CALLER:
                raise Unauthenticated(f"the gateway signs for users, not for {caller.user_id}")
        elif caller != service_identity(self.process):
            raise Unauthenticated(f"{self.process} signs only for itself, not {caller.user_id}")
        expires = int(now) + LIFETIME_SECONDS
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": caller.user_id,
            "aud": list(audience_for(service)),
            "iat": int(now),
            "exp": expires,
            "role": caller.role,
        }
        if caller.branch_id:
            claims["branch"] = caller.branch_id
        if caller.store_id:
            claims["store"] = caller.store_id
        token = jwt.encode(
            claims, self._key.key, algorithm=ALGORITHM, headers={"kid": self._key.kid}
        )
        return token, float(expires)


class CallerTokenVerifier:
    """Checks tokens against the signers' public keys: the gateway's keys vouch for users, a
    service's keys only for that service's own identity, towards the services it calls on."""

    def __init__(
        self,
        public_keys: Mapping[str, PublicKey] | WatchedFile[dict[str, PublicKey]],
        clock: Clock = time.time,
    ):
        self._source = public_keys if isinstance(public_keys, WatchedFile) else None
        self._keys: Mapping[str, PublicKey] = (
            public_keys.value if isinstance(public_keys, WatchedFile) else dict(public_keys)
        )
        self._clock = clock
        # token → (caller, expiry, services it is good for, its signer)
        self._verified: dict[str, tuple[AuthContext, float, frozenset[str], str]] = {}

    def verify(self, token: str, service: str, peer: str | None = None) -> AuthContext:
        """The caller a token vouches for, on a call to `service` from the process `peer`
        (named by its certificate; None without TLS); else Unauthenticated."""
        held = self._verified.get(token)
        if held is None:
            held = self._check(token)
            if len(self._verified) >= CACHE_SIZE:
                self._verified.pop(next(iter(self._verified)))
            self._verified[token] = held
        caller, expires, audience, signer = held
        if self._clock() > expires + LEEWAY_SECONDS:
            del self._verified[token]
            raise Unauthenticated("the caller token has expired")
        if service not in audience:
            raise Unauthenticated(f"the caller token is not for {service}")
        if peer is not None and peer != signer and not passes_on(peer, audience, service):
            raise Unauthenticated(f"a token {signer} signed may not come from {peer or 'nobody'}")
        return caller

    def _current_keys(self, kid: str) -> Mapping[str, PublicKey]:
        if self._source is None:
            return self._keys
        # A kid not seen yet may have been published a moment ago: look at the file now.
        keys = self._source.current(now=kid not in self._keys)
        if keys is not self._keys:
            if self._keys.keys() - keys.keys():
                # Tokens of a retired key go from the cache with it.
                self._verified.clear()
            self._keys = keys
        return keys

    def _check(self, token: str) -> tuple[AuthContext, float, frozenset[str], str]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise Unauthenticated("the caller token is malformed") from None
        if not isinstance(kid, str):
            raise Unauthenticated("the caller token names no key")
        known = self._current_keys(kid).get(kid)
        if known is None:
            raise Unauthenticated(f"the caller token names a key we do not trust: {kid}")
        process = known.process
        try:
            claims = jwt.decode(
                token,
                known.key,
                algorithms=[ALGORITHM],
                issuer=issuer_for(process),
                # Expiry and audience are checked on every use, in verify().
                options={
                    "require": ["iss", "sub", "aud", "exp", "role"],
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"the caller token is refused: {error}") from None
        caller = AuthContext(
            user_id=str(claims["sub"]),
            role=str(claims["role"]),
            branch_id=claims.get("branch") or None,
            store_id=claims.get("store") or None,
        )
        named = claims["aud"]
        audience = frozenset([named] if isinstance(named, str) else named)
        if process == GATEWAY:
            if caller.role not in ROLES and caller != PUBLIC_CALLER:
                raise Unauthenticated("the gateway vouches for users and the public only")
        elif caller == service_identity(process):
            audience &= frozenset(audience_for(process)[1:])
        else:
            raise Unauthenticated(f"the key of {process} vouches only for {process} itself")
        return caller, float(claims["exp"]), audience, process


def passes_on(peer: str, audience: frozenset[str], service: str) -> bool:
    """Whether `peer` may pass on a token good for `audience` to `service`: a service the token
    was for, calling on `service` for its caller (orders → inventory)."""
    return peer in audience and service in CALLS_ON.get(peer, ())


# The token a service received with the call it is serving, to pass on with the calls it makes
# for that caller.
_received: ContextVar[tuple[AuthContext, str] | None] = ContextVar("caller_token", default=None)


def hold_received(caller: AuthContext | None, token: str | None) -> Token[Any]:
    return _received.set((caller, token) if caller is not None and token is not None else None)


def release_received(held: Token[Any]) -> None:
    _received.reset(held)


def received_for(caller: AuthContext) -> str | None:
    """The token this caller's call arrived with, if `caller` is the one it vouched for."""
    received = _received.get()
    return received[1] if received is not None and received[0] is caller else None


# --- key files --------------------------------------------------------------------------------


def load_signer(keys: Path, process: str, clock: Clock = time.time) -> CallerTokenSigner:
    """A signer with `<keys>/<process>.jwk`, which it re-reads when the file is replaced."""
    return CallerTokenSigner(process, signing_key(keys, process), clock)


def load_verifier(keys: Path, clock: Clock = time.time) -> CallerTokenVerifier:
    """A verifier trusting every key in `<keys>/jwks.json`, re-read when the file changes."""
    source = trusted_keys(keys)
    if not any(key.process == GATEWAY for key in source.value.values()):
        raise SystemExit(f"no key of the {GATEWAY} in {source.path} (INTERNAL_TOKEN_KEYS)")
    return CallerTokenVerifier(source, clock)


def generate_key_pairs(keys: Path, processes: Iterable[str]) -> None:
    """A new key per process, `<process>.jwk` (readable by its owner only), and `jwks.json`
    with their public halves."""
    generate_keys(keys, processes)
