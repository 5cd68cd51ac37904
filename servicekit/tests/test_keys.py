"""Versioned signing keys: a JWKS with several keys per signer, re-read when it changes, a bad
document refused with the reason, an unknown kid refused, a signer that picks up its new key,
and the rotation commands in the order the runbook gives."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jwt
import pytest
from prometheus_client import REGISTRY

from servicekit.auth import AuthContext, service_identity
from servicekit.caller_token import (
    GATEWAY,
    CallerTokenSigner,
    CallerTokenVerifier,
    generate_key_pairs,
    load_signer,
    load_verifier,
)
from servicekit.errors import Unauthenticated
from servicekit.keys import (
    JWKS_FILE,
    KeyDocumentError,
    PublicKey,
    WatchedFile,
    activate,
    active_kids,
    generate_signing_key,
    jwks_text,
    main,
    parse_jwks,
    parse_private_jwk,
    private_jwk_text,
    process_of,
    publish_new_key,
    read_jwks,
    retire,
    trusted_keys,
)

CLERK = AuthContext("u-clerk", "clerk", "SH", "SH-001")
START = 1_800_000_000.0


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def good_member() -> dict[str, object]:
    return json.loads(jwks_text([generate_signing_key(GATEWAY, START).public]))["keys"][0]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("{", "not JSON"),
        ("[]", "an object with a `keys` list"),
        ('{"keys": {}}', "an object with a `keys` list"),
        ('{"keys": [1]}', r"keys\[0\]: a key must be a JSON object"),
        ({"kty": "RSA"}, "only `kty` OKP with `crv` Ed25519"),
        ({"crv": "X25519"}, "only `kty` OKP with `crv` Ed25519"),
        ({"use": "enc"}, "for `use` sig"),
        ({"alg": "RS256"}, "`alg` EdDSA"),
        ({"kid": None}, "`kid` is missing"),
        ({"kid": "Gateway 1"}, "is not <process>-<version>"),
        ({"x": "AAAA"}, "`x` must hold 32 bytes"),
        ({"x": 7}, "`x` must be a base64url string"),
        ({"x": "!!!!"}, "`x` is not base64url"),
        ({"exp": "soon"}, "`exp` must be a number"),
        ({"d": "A" * 43}, "holds a private key"),
    ],
)
def test_a_bad_jwks_is_refused_naming_the_key_and_the_reason(
    document: str | dict[str, object], reason: str
) -> None:
    text = (
        document
        if isinstance(document, str)
        else json.dumps({"keys": [{**good_member(), **document}]})
    )
    with pytest.raises(KeyDocumentError, match=reason):
        parse_jwks(text, "jwks.json")


def test_the_same_kid_twice_is_refused() -> None:
    member = good_member()
    with pytest.raises(KeyDocumentError, match=f"key {member['kid']}: the kid appears twice"):
        parse_jwks(json.dumps({"keys": [member, member]}))


def test_a_jwks_round_trips_with_several_keys_per_signer() -> None:
    keys = [generate_signing_key(process, START) for process in (GATEWAY, GATEWAY, "orders")]
    parsed = parse_jwks(jwks_text(key.public for key in keys))
    assert sorted(parsed) == sorted(key.kid for key in keys)
    assert [parsed[key.kid].process for key in keys] == [GATEWAY, GATEWAY, "orders"]
    assert {parsed[key.kid].expires for key in keys} == {START + 90 * 86_400}
    assert process_of("gateway-2026-12-a") == GATEWAY


def test_a_private_jwk_must_hold_the_public_half_of_its_key() -> None:
    key = generate_signing_key("orders", START)
    assert parse_private_jwk(private_jwk_text(key), "orders.jwk").kid == key.kid
    other = generate_signing_key("orders", START)
    mixed = {**json.loads(private_jwk_text(key)), "x": json.loads(private_jwk_text(other))["x"]}
    with pytest.raises(KeyDocumentError, match="`x` is not the public half of `d`"):
        parse_private_jwk(json.dumps(mixed), "orders.jwk")


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    generate_key_pairs(tmp_path, [GATEWAY, "orders", "inventory"])
    return tmp_path


def test_each_signer_gets_its_own_key_file_and_every_public_key_is_published(keys: Path) -> None:
    assert sorted(path.name for path in keys.iterdir()) == [
        "gateway.jwk",
        "inventory.jwk",
        "jwks.json",
        "orders.jwk",
    ]
    assert all(os.stat(path).st_mode & 0o077 == 0 for path in keys.glob("*.jwk"))
    assert sorted(key.process for key in read_jwks(keys).values()) == [
        GATEWAY,
        "inventory",
        "orders",
    ]


def test_tokens_of_every_published_key_of_a_signer_are_accepted(keys: Path) -> None:
    verifier_keys = dict(read_jwks(keys))
    old = load_signer(keys, GATEWAY)
    new = generate_signing_key(GATEWAY)
    verifier_keys[new.kid] = new.public
    verifier = CallerTokenVerifier(verifier_keys)
    assert verifier.verify(old.token_for(CLERK, "orders"), "orders") == CLERK
    fresh = CallerTokenSigner(GATEWAY, new)
    assert verifier.verify(fresh.token_for(CLERK, "orders"), "orders") == CLERK


def test_a_key_of_another_signer_cannot_sign_as_this_one(keys: Path) -> None:
    with pytest.raises(ValueError, match="not one of gateway"):
        CallerTokenSigner(GATEWAY, generate_signing_key("orders"))


def test_an_unknown_kid_is_refused(keys: Path) -> None:
    verifier = load_verifier(keys)
    stranger = CallerTokenSigner(GATEWAY, generate_signing_key(GATEWAY))
    with pytest.raises(Unauthenticated, match="a key we do not trust: gateway-"):
        verifier.verify(stranger.token_for(CLERK, "orders"), "orders")


def test_the_verifier_reads_a_changed_jwks_without_a_restart(keys: Path) -> None:
    ticks = Ticks()
    verifier = CallerTokenVerifier(trusted_keys(keys, monotonic=ticks))
    key = publish_new_key(keys, GATEWAY)
    # A kid it has not seen makes it look at the file at once.
    token = CallerTokenSigner(GATEWAY, key).token_for(CLERK, "orders")
    assert verifier.verify(token, "orders") == CLERK

    old_gateway = load_signer(keys, GATEWAY)
    old_token = old_gateway.token_for(CLERK, "reporting")
    assert verifier.verify(old_token, "reporting") == CLERK
    activate(keys, key.kid)
    retire(keys, old_gateway._key.kid)
    # The retired key's tokens are refused once the file is looked at again.
    ticks.now += 1
    other = load_signer(keys, "orders").token_for(service_identity("orders"), "inventory")
    verifier.verify(other, "inventory")
    with pytest.raises(Unauthenticated, match="a key we do not trust"):
        verifier.verify(old_token, "reporting")


def test_a_jwks_swapped_by_symlink_is_read_again(tmp_path: Path) -> None:
    """As Kubernetes updates a mounted ConfigMap: a new folder, then `..data` points at it."""
    first, second = tmp_path / "v1", tmp_path / "v2"
    generate_key_pairs(first, [GATEWAY])
    generate_key_pairs(second, [GATEWAY])
    (tmp_path / "..data").symlink_to("v1")
    (tmp_path / JWKS_FILE).symlink_to(f"..data/{JWKS_FILE}")
    ticks = Ticks()
    watched = trusted_keys(tmp_path, monotonic=ticks)
    assert watched.current() == read_jwks(first)
    (tmp_path / "..data.new").symlink_to("v2")
    os.replace(tmp_path / "..data.new", tmp_path / "..data")
    assert watched.current() == read_jwks(first), "not looked at within the interval"
    ticks.now += 1
    assert watched.current() == read_jwks(second)


def test_a_broken_jwks_leaves_the_keys_held_before(
    keys: Path, caplog: pytest.LogCaptureFixture
) -> None:
    watched = trusted_keys(keys)
    held = watched.value
    (keys / JWKS_FILE).write_text('{"keys": [{"kty": "OKP"}]}')
    assert watched.current(now=True) is held
    assert "kept the keys held before" in caplog.text
    with pytest.raises(SystemExit, match="crv"):
        load_verifier(keys)


def test_the_signer_picks_up_its_new_key_and_publishes_its_expiry(keys: Path) -> None:
    signer = load_signer(keys, GATEWAY)
    first = signer.token_for(CLERK, "orders")
    key = publish_new_key(keys, GATEWAY, START)
    activate(keys, key.kid)
    verifier = load_verifier(keys)
    assert signer.token_for(CLERK, "orders") == first, "looked at within the interval"
    assert isinstance(signer._source, WatchedFile)
    signer._source._looked -= 1  # as if a second went by
    # Every token is signed anew with the new key, the ones held before too.
    second = signer.token_for(CLERK, "orders")
    assert second != first
    assert jwt.get_unverified_header(second)["kid"] == key.kid
    assert verifier.verify(first, "orders") == CLERK
    assert verifier.verify(second, "orders") == CLERK
    expiry = "aftersales_signing_key_expiry_timestamp_seconds"
    labels = {"service": GATEWAY, "kid": key.kid}
    assert REGISTRY.get_sample_value(expiry, labels) == START + 90 * 86_400


def test_the_rotation_commands_refuse_steps_out_of_order(keys: Path) -> None:
    active = active_kids(keys)[GATEWAY]
    with pytest.raises(SystemExit, match="still the key its signer signs with"):
        retire(keys, active)
    with pytest.raises(SystemExit, match="publish it first"):
        activate(keys, "gateway-never-published")
    main(["--keys", str(keys), "new", GATEWAY])
    pending = next(kid for kid in read_jwks(keys) if (keys / f"{kid}.jwk").exists())
    main(["--keys", str(keys), "activate", pending])
    assert active_kids(keys)[GATEWAY] == pending
    main(["--keys", str(keys), "retire", active])
    assert active not in read_jwks(keys)
    assert all(isinstance(key, PublicKey) for key in read_jwks(keys).values())


def test_rotate_runs_every_step_on_a_local_folder(keys: Path) -> None:
    before = active_kids(keys)[GATEWAY]
    main(["--keys", str(keys), "rotate", GATEWAY, "--reload-wait", "0", "--lifetime-wait", "0"])
    after = active_kids(keys)[GATEWAY]
    assert after != before
    assert sorted(kid for kid in read_jwks(keys) if kid.startswith(GATEWAY)) == [after]


def test_init_makes_the_first_keys_once(tmp_path: Path) -> None:
    main(["--keys", str(tmp_path), "init", GATEWAY, "orders"])
    assert sorted(active_kids(tmp_path)) == [GATEWAY, "orders"]
    assert sorted(active_kids(tmp_path).values()) == sorted(read_jwks(tmp_path))
    with pytest.raises(SystemExit, match="rotate its keys instead"):
        main(["--keys", str(tmp_path), "init", GATEWAY])
