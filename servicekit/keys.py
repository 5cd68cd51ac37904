"""Signing keys of the caller tokens, by version, and their rotation.

Each process that signs (the gateway, and each service for its own work) holds one private
key, `<process>.jwk` (a private JWK, RFC 7517/8037: OKP, Ed25519). Every process trusts the
public keys in `jwks.json`, a JWK Set with any number of keys per signer. Each key has a
versioned `kid`, `<process>-<version>` (gateway-2026-12-07-1a2b), which its tokens carry, so a
signer's new key and its old one are both trusted while the tokens of the old one live. Both
files are re-read when they change (Kubernetes swaps a symlink when it updates a mounted
Secret or ConfigMap), so a rotation needs no restart:

    1. `new <process>`: a new key; its public half goes into jwks.json (publish it).
    2. Wait until every process has the new jwks.json (ConfigMap: up to ~2 minutes).
    3. `activate <kid>`: the signer signs with the new key from now on.
    4. After the longest a token lives (LIFETIME_SECONDS + leeway), `retire <old kid>`.

`rotate <process>` runs the four steps on a local folder (`make run`'s keys).

Keys carry `exp` (a NumericDate, an extension RFC 7517 allows): when they should have been
replaced, published as aftersales_signing_key_expiry_timestamp_seconds for alerts.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import logging
import os
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from servicekit.metrics import SIGNING_KEY_EXPIRY

log = logging.getLogger(__name__)
T = TypeVar("T")

JWKS_FILE = "jwks.json"
KEY_SUFFIX = ".jwk"
# How long a new key is meant to serve before it is replaced.
KEY_LIFETIME_DAYS = 90
# How often a process looks whether its key files changed, at most.
RELOAD_INTERVAL_SECONDS = 1.0
# A kid names its signer, then a version: lower-case letters, then `-` and the version.
_KID = re.compile(r"([a-z]+)(?:-[A-Za-z0-9._-]{1,64})?")


class KeyDocumentError(ValueError):
    """A key file that cannot be used, saying which and why."""


@dataclass(frozen=True)
class PublicKey:
    kid: str
    key: Ed25519PublicKey
    expires: float | None = None

    @property
    def process(self) -> str:
        return process_of(self.kid)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key: Ed25519PrivateKey
    expires: float | None = None

    @property
    def process(self) -> str:
        return process_of(self.kid)

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.kid, self.key.public_key(), self.expires)


def process_of(kid: str) -> str:
    """The signer a kid belongs to: `gateway` for gateway-2026-12-07-1a2b."""
    found = _KID.fullmatch(kid)
    if found is None:
        raise KeyDocumentError(f"kid {kid!r} is not <process>-<version>")
    return found.group(1)


def new_kid(process: str, now: float) -> str:
    day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
    return f"{process}-{day}-{secrets.token_hex(2)}"


def generate_signing_key(
    process: str, now: float | None = None, lifetime_days: float = KEY_LIFETIME_DAYS
) -> SigningKey:
    now = time.time() if now is None else now
    return SigningKey(
        new_kid(process, now), Ed25519PrivateKey.generate(), now + lifetime_days * 86_400
    )


# --- JWK documents ----------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(value: object, where: str, field: str) -> bytes:
    if not isinstance(value, str):
        raise KeyDocumentError(f"{where}: `{field}` must be a base64url string")
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise KeyDocumentError(f"{where}: `{field}` is not base64url") from None
    if len(raw) != 32:
        raise KeyDocumentError(f"{where}: `{field}` must hold 32 bytes (Ed25519), not {len(raw)}")
    return raw


def _common(member: object, where: str) -> tuple[str, float | None, dict[str, Any]]:
    """kid and exp of one JWK, after checking it is an Ed25519 key for signatures."""
    if not isinstance(member, dict):
        raise KeyDocumentError(f"{where}: a key must be a JSON object")
    if member.get("kty") != "OKP" or member.get("crv") != "Ed25519":
        raise KeyDocumentError(f"{where}: only `kty` OKP with `crv` Ed25519 is used here")
    if member.get("use", "sig") != "sig" or member.get("alg", "EdDSA") != "EdDSA":
        raise KeyDocumentError(f"{where}: the key must be for `use` sig, `alg` EdDSA")
    kid = member.get("kid")
    if not isinstance(kid, str) or not kid:
        raise KeyDocumentError(f"{where}: `kid` is missing")
    process_of(kid)
    expires = member.get("exp")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int | float)):
        raise KeyDocumentError(f"{where}: `exp` must be a number of seconds (NumericDate)")
    return kid, None if expires is None else float(expires), member


def _public_member(key: PublicKey) -> dict[str, Any]:
    raw = key.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    member: dict[str, Any] = {
        "kty": "OKP",
        "crv": "Ed25519",
        "use": "sig",
        "alg": "EdDSA",
        "kid": key.kid,
        "x": _b64(raw),
    }
    if key.expires is not None:
        member["exp"] = int(key.expires)
    return member


def jwks_text(keys: Iterable[PublicKey]) -> str:
    ordered = sorted(keys, key=lambda key: key.kid)
    return json.dumps({"keys": [_public_member(key) for key in ordered]}, indent=2) + "\n"


def parse_jwks(text: str, source: str = JWKS_FILE) -> dict[str, PublicKey]:
    """The public keys of a JWK Set, by kid; KeyDocumentError naming the key and field that
    is wrong. Private members (`d`) are refused: a JWKS is published."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise KeyDocumentError(f"{source}: not JSON ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeyDocumentError(f"{source}: a JWK Set is an object with a `keys` list")
    found: dict[str, PublicKey] = {}
    for index, member in enumerate(document["keys"]):
        kid, expires, fields = _common(member, f"{source} keys[{index}]")
        where = f"{source} key {kid}"
        if "d" in fields:
            raise KeyDocumentError(f"{where}: holds a private key (`d`); publish public keys only")
        if kid in found:
            raise KeyDocumentError(f"{where}: the kid appears twice")
        raw = _unb64(fields.get("x"), where, "x")
        found[kid] = PublicKey(kid, Ed25519PublicKey.from_public_bytes(raw), expires)
    return found


def private_jwk_text(key: SigningKey) -> str:
    member = _public_member(key.public)
    member["d"] = _b64(key.key.private_bytes_raw())
    return json.dumps(member, indent=2) + "\n"


def parse_private_jwk(text: str, source: str) -> SigningKey:
    try:
        member = json.loads(text)
    except json.JSONDecodeError as error:
        raise KeyDocumentError(f"{source}: not JSON ({error})") from None
    kid, expires, fields = _common(member, source)
    private = Ed25519PrivateKey.from_private_bytes(_unb64(fields.get("d"), source, "d"))
    if "x" in fields:
        public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        if _unb64(fields["x"], source, "x") != public:
            raise KeyDocumentError(f"{source}: `x` is not the public half of `d`")
    return SigningKey(kid, private, expires)


# --- files that change under a running process ----------------------------------------------


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace `path` in one step, so that a process re-reading it never sees half a file."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


Stamp = tuple[int, int, int, int]


def _stamp(path: Path) -> Stamp | None:
    try:
        seen = path.stat()  # follows the symlink Kubernetes swaps
    except FileNotFoundError:
        return None
    return seen.st_dev, seen.st_ino, seen.st_mtime_ns, seen.st_size


class WatchedFile(Generic[T]):
    """What a file holds, parsed, read again when it changed (device, inode, mtime or size),
    looked at no more often than every `interval` seconds unless asked to look now. A file
    that changed into something unusable leaves the last good value in place, logged."""

    def __init__(
        self,
        path: Path,
        parse: Callable[[str, str], T],
        interval: float = RELOAD_INTERVAL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        on_change: Callable[[T], None] | None = None,
    ) -> None:
        self.path = path
        self._parse = parse
        self._interval = interval
        self._monotonic = monotonic
        self._on_change = on_change
        self._stamp = _stamp(path)
        if self._stamp is None:
            raise FileNotFoundError(path)
        self.value = parse(path.read_text(), str(path))
        self._looked = monotonic()
        if on_change is not None:
            on_change(self.value)

    def current(self, now: bool = False) -> T:
        moment = self._monotonic()
        if now or moment - self._looked >= self._interval:
            self._looked = moment
            stamp = _stamp(self.path)
            if stamp is not None and stamp != self._stamp:
                self._stamp = stamp
                self._reload()
        return self.value

    def _reload(self) -> None:
        try:
            value = self._parse(self.path.read_text(), str(self.path))
        except (OSError, ValueError) as error:  # KeyDocumentError, or bytes that are no text
            log.error("kept the keys held before: %s", error)
            return
        self.value = value
        log.info("re-read %s", self.path)
        if self._on_change is not None:
            self._on_change(value)


def _watch(path: Path, parse: Callable[[str, str], T], hint: str, **options: Any) -> WatchedFile[T]:
    try:
        return WatchedFile(path, parse, **options)
    except FileNotFoundError:
        raise SystemExit(f"no {path} ({hint}; `make run` makes the keys)") from None
    except KeyDocumentError as error:
        raise SystemExit(str(error)) from None
    except ValueError as error:  # bytes that are no text
        raise SystemExit(f"{path}: {error}") from None


def trusted_keys(folder: Path, **options: Any) -> WatchedFile[dict[str, PublicKey]]:
    return _watch(
        folder / JWKS_FILE, parse_jwks, "INTERNAL_TOKEN_KEYS: the signers' public keys", **options
    )


def signing_key(folder: Path, process: str, **options: Any) -> WatchedFile[SigningKey]:
    """The key `process` signs with, `<folder>/<process>.jwk`, re-read when it is replaced;
    its expiry is published as a gauge."""

    def parse(text: str, source: str) -> SigningKey:
        key = parse_private_jwk(text, source)
        if key.process != process:
            raise KeyDocumentError(f"{source}: kid {key.kid} is not a key of {process}")
        return key

    def publish(key: SigningKey) -> None:
        # The key it replaced is no longer this process's to renew.
        for family in SIGNING_KEY_EXPIRY.collect():
            for sample in family.samples:
                if sample.labels["service"] == process:
                    SIGNING_KEY_EXPIRY.remove(process, sample.labels["kid"])
        if key.expires is not None:
            SIGNING_KEY_EXPIRY.labels(process, key.kid).set(key.expires)

    return _watch(
        folder / f"{process}{KEY_SUFFIX}",
        parse,
        "INTERNAL_TOKEN_KEYS: this process's signing key",
        on_change=publish,
        **options,
    )


# --- making and rotating keys -----------------------------------------------------------------


def read_jwks(folder: Path) -> dict[str, PublicKey]:
    path = folder / JWKS_FILE
    return parse_jwks(path.read_text(), str(path)) if path.exists() else {}


def publish_new_key(folder: Path, process: str, now: float | None = None) -> SigningKey:
    """A new key of `process`: its public half added to jwks.json, the private key kept as
    `<kid>.jwk` until it is activated."""
    key = generate_signing_key(process, now)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / f"{key.kid}{KEY_SUFFIX}", private_jwk_text(key), 0o600)
    published = read_jwks(folder)
    published[key.kid] = key.public
    write_atomically(folder / JWKS_FILE, jwks_text(published.values()))
    return key


def activate(folder: Path, kid: str) -> None:
    """The signer of `kid` signs with it from now on: `<kid>.jwk` becomes `<process>.jwk`."""
    if kid not in read_jwks(folder):
        raise SystemExit(f"{kid} is not in {folder / JWKS_FILE}: publish it first")
    pending = folder / f"{kid}{KEY_SUFFIX}"
    key = parse_private_jwk(pending.read_text(), str(pending))
    write_atomically(folder / f"{key.process}{KEY_SUFFIX}", private_jwk_text(key), 0o600)
    pending.unlink()


def active_kids(folder: Path) -> dict[str, str]:
    """The kid each signer with a key in `folder` signs with, by process."""
    kids: dict[str, str] = {}
    for path in folder.glob(f"*{KEY_SUFFIX}"):
        key = parse_private_jwk(path.read_text(), str(path))
        if path.stem == key.process:
            kids[key.process] = key.kid
    return kids


def retire(folder: Path, kid: str) -> None:
    """Take `kid` out of jwks.json: tokens it signed are refused from then on."""
    if kid in active_kids(folder).values():
        raise SystemExit(f"{kid} is still the key its signer signs with: activate another first")
    published = read_jwks(folder)
    if published.pop(kid, None) is None:
        raise SystemExit(f"{kid} is not in {folder / JWKS_FILE}")
    write_atomically(folder / JWKS_FILE, jwks_text(published.values()))
    (folder / f"{kid}{KEY_SUFFIX}").unlink(missing_ok=True)


def generate_keys(folder: Path, processes: Iterable[str]) -> None:
    """A new active key for each of `processes`, and a jwks.json trusting only those."""
    folder.mkdir(parents=True, exist_ok=True)
    published: list[PublicKey] = []
    for process in processes:
        key = generate_signing_key(process)
        write_atomically(folder / f"{process}{KEY_SUFFIX}", private_jwk_text(key), 0o600)
        published.append(key.public)
    write_atomically(folder / JWKS_FILE, jwks_text(published))


def rotate(folder: Path, process: str, reload_wait: float, lifetime_wait: float) -> str:
    """The whole rotation of one signer's key on a local folder; the new kid."""
    old = active_kids(folder).get(process)
    key = publish_new_key(folder, process)
    print(f"published {key.kid}; waiting {reload_wait:g} s for every process to read it")
    time.sleep(reload_wait)
    activate(folder, key.kid)
    print(f"{process} signs with {key.kid}")
    if old is not None:
        print(f"waiting {lifetime_wait:g} s for the tokens of {old} to expire")
        time.sleep(lifetime_wait)
        retire(folder, old)
        print(f"retired {old}")
    return key.kid


def main(argv: list[str] | None = None) -> None:
    from servicekit.caller_token import LEEWAY_SECONDS, LIFETIME_SECONDS

    parser = argparse.ArgumentParser(prog="python -m servicekit.keys", description=__doc__)
    parser.add_argument(
        "--keys",
        type=Path,
        required=True,
        help="the keys folder (`make run`'s: .data/keys; a cluster's: a folder of your own)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, what in (
        ("new", "a new key of PROCESS, published in jwks.json, kept as <kid>.jwk"),
        ("rotate", "new, wait, activate, wait, retire the old key (a local folder)"),
    ):
        command = commands.add_parser(name, help=what)
        command.add_argument("process")
    starting = commands.add_parser("init", help="a first key of each PROCESS, and jwks.json")
    starting.add_argument("processes", nargs="+", metavar="process")
    commands.add_parser("activate", help="the signer signs with KID").add_argument("kid")
    commands.add_parser("retire", help="take KID out of jwks.json").add_argument("kid")
    commands.add_parser("show", help="the published kids and the active ones")
    rotating = commands.choices["rotate"]
    rotating.add_argument("--reload-wait", type=float, default=3 * RELOAD_INTERVAL_SECONDS)
    rotating.add_argument(
        "--lifetime-wait", type=float, default=float(LIFETIME_SECONDS + LEEWAY_SECONDS)
    )
    arguments = parser.parse_args(argv)
    folder: Path = arguments.keys
    try:
        if arguments.command == "init":
            if (folder / JWKS_FILE).exists():
                raise SystemExit(f"{folder / JWKS_FILE} exists: rotate its keys instead")
            generate_keys(folder, arguments.processes)
        elif arguments.command == "new":
            print(publish_new_key(folder, arguments.process).kid)
        elif arguments.command == "activate":
            activate(folder, arguments.kid)
        elif arguments.command == "retire":
            retire(folder, arguments.kid)
        elif arguments.command == "rotate":
            rotate(folder, arguments.process, arguments.reload_wait, arguments.lifetime_wait)
        else:
            active = set(active_kids(folder).values())
            for kid, key in sorted(read_jwks(folder).items()):
                until = "" if key.expires is None else datetime.fromtimestamp(key.expires, UTC)
                print(f"{kid}\t{'active' if kid in active else 'published'}\t{until}")
    except (KeyDocumentError, FileNotFoundError) as error:
        raise SystemExit(str(error)) from None


if __name__ == "__main__":
    main(sys.argv[1:])
