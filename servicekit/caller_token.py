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

Keys are files in one folder (settings `INTERNAL_TOKEN_KEYS`): `<process>.pub` for every process
that signs, and the process's own `<process>.key`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar, Token
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from servicekit.auth import PUBLIC_CALLER, ROLES, AuthContext, service_identity
from servicekit.errors import Unauthenticated

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
        self, process: str, private_key: Ed25519PrivateKey, clock: Clock = time.time
    ) -> None:
        self.process = process
        self.issuer = issuer_for(process)
        self._key = private_key
        self._clock = clock
        self._signed: dict[tuple[AuthContext, str], tuple[str, float]] = {}

    def token_for(self, caller: AuthContext, service: str) -> str:
        """A token for calling `service` as `caller`: the one made earlier while it has more
        than a minute left, else a new one."""
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
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.process})
        return token, float(expires)


class CallerTokenVerifier:
    """Checks tokens against the signers' public keys: the gateway's key vouches for users, a
    service's key only for that service's own identity, towards the services it calls on."""

    def __init__(self, public_keys: Mapping[str, Ed25519PublicKey], clock: Clock = time.time):
        self._keys = dict(public_keys)
        self._clock = clock
        # token → (caller, expiry, services it is good for)
        self._verified: dict[str, tuple[AuthContext, float, frozenset[str]]] = {}

    def verify(self, token: str, service: str) -> AuthContext:
        """The caller a token vouches for, on a call to `service`; else Unauthenticated."""
        held = self._verified.get(token)
        if held is None:
            held = self._check(token)
            if len(self._verified) >= CACHE_SIZE:
                self._verified.pop(next(iter(self._verified)))
            self._verified[token] = held
        caller, expires, audience = held
        if self._clock() > expires + LEEWAY_SECONDS:
            del self._verified[token]
            raise Unauthenticated("the caller token has expired")
        if service not in audience:
            raise Unauthenticated(f"the caller token is not for {service}")
        return caller

    def _check(self, token: str) -> tuple[AuthContext, float, frozenset[str]]:
        try:
            process = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise Unauthenticated("the caller token is malformed") from None
        if not isinstance(process, str) or process not in self._keys:
            raise Unauthenticated("the caller token names no issuer we know")
        key = self._keys[process]
        try:
            claims = jwt.decode(
                token,
                key,
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
        return caller, float(claims["exp"]), audience


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
    path = keys / f"{process}.key"
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise SystemExit(
            f"no signing key at {path} (INTERNAL_TOKEN_KEYS; `make run` makes them)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit(f"{path} is not an Ed25519 private key")
    return CallerTokenSigner(process, key, clock)


def load_verifier(keys: Path, clock: Clock = time.time) -> CallerTokenVerifier:
    """A verifier trusting every `<process>.pub` in the folder."""
    public_keys: dict[str, Ed25519PublicKey] = {}
    for path in sorted(keys.glob("*.pub")):
        key = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise SystemExit(f"{path} is not an Ed25519 public key")
        public_keys[path.stem] = key
    if GATEWAY not in public_keys:
        raise SystemExit(
            f"no {GATEWAY}.pub in {keys} (INTERNAL_TOKEN_KEYS; `make run` makes the keys)"
        )
    return CallerTokenVerifier(public_keys, clock)


def generate_key_pairs(keys: Path, processes: Iterable[str]) -> None:
    """A new key pair per process: `<process>.key` (readable by its owner only) and
    `<process>.pub`."""
    keys.mkdir(parents=True, exist_ok=True)
    for process in processes:
        private = Ed25519PrivateKey.generate()
        key_path = keys / f"{process}.key"
        key_path.unlink(missing_ok=True)
        descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(
                private.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        (keys / f"{process}.pub").write_bytes(
            private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
