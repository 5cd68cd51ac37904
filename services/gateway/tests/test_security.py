from __future__ import annotations

import time

import jwt
import pytest

from servicekit.auth import AuthContext
from servicekit.errors import Unauthenticated
from services.gateway import security
from services.gateway.security import (
    AUDIENCE,
    ISSUER,
    TokenCodec,
    hash_password,
    verify_password,
)

SECRET = "a-secret-long-enough-for-hmac-sha512-which-wants-sixty-four-bytes!"
STORE_CLERK = AuthContext("u-1", "clerk", "SH", "SH-001")


def forged(claims: dict[str, object], secret: str = SECRET, algorithm: str = "HS256") -> str:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": "u-1",
        "role": "hq_admin",
        "iat": now,
        "exp": now + 60,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, secret, algorithm=algorithm)


def test_a_token_carries_the_auth_context() -> None:
    codec = TokenCodec(SECRET, 600)
    issued = codec.issue(STORE_CLERK)
    assert issued.expires_in == 600
    assert codec.verify(issued.access_token) == STORE_CLERK
    hq = AuthContext("u-2", "hq_analyst")
    assert codec.verify(codec.issue(hq).access_token) == hq


@pytest.mark.parametrize(
    "token",
    [
        forged({"aud": "someone-else"}),
        forged({"iss": "someone-else"}),
        forged({"exp": int(time.time()) - 10}),
        forged({}, secret=SECRET[::-1]),
        forged({}, algorithm="HS512"),
        forged({"exp": None}),
        forged({"sub": None}),
        forged({"role": None}),
        forged({"role": "superuser"}),
        jwt.encode({"sub": "u-1", "role": "hq_admin"}, None, algorithm="none"),
        "not.a.token",
    ],
    ids=[
        "aud",
        "iss",
        "expired",
        "secret",
        "alg",
        "no-exp",
        "no-sub",
        "no-role",
        "odd-role",
        "none",
        "junk",
    ],
)
def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(Unauthenticated):
        TokenCodec(SECRET, 600).verify(token)


def test_a_forged_token_of_the_right_shape_passes() -> None:
    # The control for the cases above: only the one changed claim made them fail.
    assert TokenCodec(SECRET, 600).verify(forged({})).role == "hq_admin"


def test_expiry_follows_the_ttl() -> None:
    codec = TokenCodec(SECRET, 60)
    old = codec.issue(STORE_CLERK, now=time.time() - 120)
    with pytest.raises(Unauthenticated):
        codec.verify(old.access_token)


def test_a_verified_token_is_checked_once_until_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [time.time()]
    codec = TokenCodec(SECRET, 60, clock=lambda: now[0])
    token = codec.issue(STORE_CLERK, token_version=3).access_token
    decoded = 0
    decode = jwt.decode

    def counted(*args: object, **kwargs: object) -> object:
        nonlocal decoded
        decoded += 1
        return decode(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counted)
    for _ in range(3):
        assert codec.verify_versioned(token) == (STORE_CLERK, 3)
    assert decoded == 1
    # Kept only while it is valid: at its expiry it is refused without being checked again.
    now[0] += 60
    with pytest.raises(Unauthenticated, match="expired"):
        codec.verify(token)
    assert decoded == 1


def test_kept_tokens_are_bounded_least_recently_used_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(security, "VERIFIED_CACHE_SIZE", 2)
    codec = TokenCodec(SECRET, 600)
    first, second, third = (
        codec.issue(AuthContext(f"u-{n}", "clerk", "SH", "SH-001")).access_token for n in range(3)
    )
    for token in (first, second, first, third):
        codec.verify(token)
    # `second` was the least recently used when `third` came.
    assert list(codec._verified) == [first, third]


def test_a_refused_token_is_not_kept() -> None:
    codec = TokenCodec(SECRET, 600)
    with pytest.raises(Unauthenticated):
        codec.verify(forged({"role": "superuser"}))
    assert not codec._verified


def test_argon2_passwords() -> None:
    hashed = hash_password("demo1234")
    assert hashed.startswith("$argon2id$")
    assert hashed != hash_password("demo1234")  # salted
    assert verify_password(hashed, "demo1234")
    assert not verify_password(hashed, "demo12345")
    assert not verify_password("not a hash", "demo1234")
