"""Caller tokens on their own: what the gateway signs a service verifies, once per token; they
expire, name the services they are good for, and a changed byte or a foreign key is refused.
A service's own key vouches only for its own identity, towards the services it calls on."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servicekit import caller_token
from servicekit.auth import (
    PUBLIC_CALLER,
    PUBLIC_ROLE,
    AuthContext,
    caller_or_public,
    current_auth,
    reset_auth,
    service_identity,
    set_auth,
)
from servicekit.caller_token import (
    GATEWAY,
    LEEWAY_SECONDS,
    LIFETIME_SECONDS,
    RENEW_BEFORE_SECONDS,
    CallerTokenSigner,
    CallerTokenVerifier,
    audience_for,
    generate_key_pairs,
    load_signer,
    load_verifier,
)
from servicekit.errors import Forbidden, Unauthenticated
from servicekit.keys import SigningKey, generate_signing_key, signing_key

CLERK = AuthContext("u-clerk", "clerk", "SH", "SH-001")
MANAGER = AuthContext("u-manager", "branch_manager", "ZJ")
START = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    generate_key_pairs(folder, [GATEWAY, "orders", "inventory", "customers", "reporting"])
    return folder


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gateway(keys: Path, clock: Clock) -> CallerTokenSigner:
    return load_signer(keys, GATEWAY, clock)


@pytest.fixture
def verifier(keys: Path, clock: Clock) -> CallerTokenVerifier:
    return load_verifier(keys, clock)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token that took a signature check."""
    checked: list[str] = []
    decode = jwt.decode

    def counting(token: str, *args: object, **kwargs: object) -> object:
        checked.append(token)
        return decode(token, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(caller_token.jwt, "decode", counting)
    return checked


def test_what_the_gateway_signs_a_service_verifies(
    gateway: CallerTokenSigner, verifier: CallerTokenVerifier
) -> None:
    for caller in (CLERK, MANAGER, AuthContext("u-hq", "hq_admin")):
        assert verifier.verify(gateway.token_for(caller, "reporting"), "reporting") == caller


def test_a_token_is_reused_until_a_minute_before_it_expires(
    gateway: CallerTokenSigner, clock: Clock
) -> None:
    first = gateway.token_for(CLERK, "orders")
    clock.now += LIFETIME_SECONDS - RENEW_BEFORE_SECONDS - 1
    assert gateway.token_for(CLERK, "orders") == first
    assert gateway.token_for(MANAGER, "orders") != first, "one per caller"
    assert gateway.token_for(CLERK, "reporting") != first, "one per service"
    clock.now += 2
    renewed = gateway.token_for(CLERK, "orders")
    assert renewed != first
    assert jwt.decode(renewed, options={"verify_signature": False})["exp"] > clock.now + 60


def test_a_verified_token_is_checked_once_until_it_expires(
    gateway: CallerTokenSigner, verifier: CallerTokenVerifier, clock: Clock, decodes: list[str]
) -> None:
    token = gateway.token_for(CLERK, "orders")
    for _ in range(5):
        assert verifier.verify(token, "orders") == CLERK
    assert decodes == [token]
    clock.now += LIFETIME_SECONDS + LEEWAY_SECONDS + 1
    for _ in range(2):  # the second time it is no longer held: checked again, expired again
        with pytest.raises(Unauthenticated, match="expired"):
            verifier.verify(token, "orders")
    assert decodes == [token, token]


def test_an_expired_token_is_refused_by_a_verifier_that_never_saw_it(
    gateway: CallerTokenSigner, keys: Path, clock: Clock
) -> None:
    token = gateway.token_for(CLERK, "orders")
    clock.now += LIFETIME_SECONDS + LEEWAY_SECONDS + 1
    fresh = load_verifier(keys, clock)
    with pytest.raises(Unauthenticated, match="expired"):
        fresh.verify(token, "orders")


def test_the_verified_tokens_held_are_bounded(
    gateway: CallerTokenSigner,
    verifier: CallerTokenVerifier,
    decodes: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(caller_token, "CACHE_SIZE", 2)
    tokens = [gateway.token_for(AuthContext(f"u-{n}", "clerk"), "orders") for n in range(3)]
    for token in tokens:
        verifier.verify(token, "orders")
    verifier.verify(tokens[2], "orders")
    verifier.verify(tokens[0], "orders")  # the oldest went when the third came
    assert decodes == [*tokens, tokens[0]]


def test_a_token_is_good_for_its_service_and_those_it_calls_on_only(
    gateway: CallerTokenSigner, verifier: CallerTokenVerifier
) -> None:
    assert audience_for("orders") == ("orders", "inventory")
    for_orders = gateway.token_for(CLERK, "orders")
    assert verifier.verify(for_orders, "orders") == CLERK
    assert verifier.verify(for_orders, "inventory") == CLERK, "orders passes it on"
    for service in ("customers", "reporting"):
        with pytest.raises(Unauthenticated, match=f"not for {service}"):
            verifier.verify(for_orders, service)
    with pytest.raises(Unauthenticated, match="not for orders"):
        verifier.verify(gateway.token_for(CLERK, "inventory"), "orders")


def with_claims(token: str, **changes: object) -> str:
    """The token with its claims changed and the signature left as it was."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    changed = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{changed}.{signature}"


def test_a_changed_or_foreign_token_is_refused(
    gateway: CallerTokenSigner, verifier: CallerTokenVerifier, keys: Path, clock: Clock
) -> None:
    token = gateway.token_for(CLERK, "orders")
    forged = [
        with_claims(token, role="hq_admin"),
        with_claims(token, store=None, branch=None),
        with_claims(token, aud=["orders", "reporting"]),
        token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
        "not.a.token",
        "",
    ]
    # A key of the same kid as the gateway's, and one of a signer nobody trusts.
    same_kid = SigningKey(signing_key(keys, GATEWAY).value.kid, Ed25519PrivateKey.generate())
    impostor = CallerTokenSigner(GATEWAY, same_kid, clock)
    forged.append(impostor.token_for(AuthContext("u-hq", "hq_admin"), "orders"))
    unknown = CallerTokenSigner("payments", generate_signing_key("payments"), clock)
    forged.append(unknown.token_for(service_identity("payments"), "orders"))
    for bad in forged:
        with pytest.raises(Unauthenticated):
            verifier.verify(bad, "orders")


def test_a_service_key_vouches_for_that_service_towards_those_it_calls_on(
    keys: Path, verifier: CallerTokenVerifier, clock: Clock
) -> None:
    orders = load_signer(keys, "orders", clock)
    itself = service_identity("orders")
    token = orders.token_for(itself, "inventory")
    assert verifier.verify(token, "inventory") == itself
    with pytest.raises(Unauthenticated):
        verifier.verify(orders.token_for(itself, "reporting"), "reporting")
    with pytest.raises(Unauthenticated, match="signs only for itself"):
        orders.token_for(CLERK, "inventory")
    # Even a token orders' key did sign for a user, or for another service, is refused.
    orders_key = signing_key(keys, "orders").value
    for claims in (
        {"sub": "u-hq", "role": "hq_admin"},
        {"sub": "service:reporting", "role": "service"},
    ):
        token = jwt.encode(
            {
                "iss": "service:orders",
                "aud": ["inventory"],
                "iat": int(clock.now),
                "exp": int(clock.now) + 60,
                **claims,
            },
            orders_key.key,
            algorithm="EdDSA",
            headers={"kid": orders_key.kid},
        )
        with pytest.raises(Unauthenticated, match="vouches only for orders"):
            verifier.verify(token, "inventory")


def test_the_gateway_signs_for_users_and_the_public_only(
    gateway: CallerTokenSigner, verifier: CallerTokenVerifier
) -> None:
    with pytest.raises(Unauthenticated, match="signs for users"):
        gateway.token_for(service_identity("orders"), "inventory")
    with pytest.raises(Unauthenticated, match="signs for users"):
        gateway.token_for(AuthContext("public", PUBLIC_ROLE, "SH"), "customers")
    token = gateway.token_for(PUBLIC_CALLER, "customers")
    assert verifier.verify(token, "customers") == PUBLIC_CALLER


def test_the_public_is_refused_by_every_rpc_but_those_that_serve_it() -> None:
    reset = set_auth(PUBLIC_CALLER)
    try:
        assert caller_or_public() == PUBLIC_CALLER
        with pytest.raises(Forbidden):
            current_auth()
    finally:
        reset_auth(reset)
    assert not PUBLIC_CALLER.covers("SH", "SH-001")


def test_missing_keys_stop_the_process_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="INTERNAL_TOKEN_KEYS"):
        load_signer(tmp_path, GATEWAY)
    with pytest.raises(SystemExit, match="INTERNAL_TOKEN_KEYS"):
        load_verifier(tmp_path)
