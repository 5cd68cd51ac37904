"""Bulletins (内部通知 / 技术公告 / 培训): what HQ or a branch publishes to a part of the chain.

The rules, all pure:
- Kinds: notice (内部通知), technical (技术公告), training (培训).
- A scope is the chain, one branch (with its stores), or chosen stores (of any branches).
- Who publishes: HQ (hq_admin, hq_analyst) to any scope; a branch manager to its own branch or
  stores of it; nobody else (store staff, branch warehouse keepers and follow-up agents read).
- Who sees a bulletin: those it is addressed to (its scope covers their unit: the chain covers
  everyone, a branch its own users and its stores' users, stores their users), and those above
  the scope who oversee it (a branch's users see what went to its stores; HQ sees everything).
- Who is expected to read it (its audience, the receipts' "not read"): the users whose unit
  the scope covers, less the publisher. A branch manager overseeing a stores bulletin may read
  it but is not chased for it.
- Receipts are for the publishing unit (HQ's roles for HQ's bulletins, the branch manager for a
  branch's) and HQ.
- Reading is idempotent: the first read time is kept.
- Attachments are links: a title and an https URL to a host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from servicekit.auth import AuthContext
from servicekit.errors import FieldError, Forbidden, InvalidInput, NotFound

KINDS = ("notice", "technical", "training")
SCOPE_KINDS = ("chain", "branch", "stores")
HQ_PUBLISHERS = ("hq_admin", "hq_analyst")
BRANCH_PUBLISHERS = ("branch_manager",)

MAX_TITLE = 200
MAX_BODY = 20_000
MAX_ATTACHMENTS = 20
MAX_ATTACHMENT_TITLE = 200
MAX_URL = 2_000
MAX_STORES = 500


@dataclass(frozen=True)
class Attachment:
    """A link to the material (manual, slides, video): the files stay where they are kept."""

    title: str
    url: str


@dataclass(frozen=True)
class Scope:
    """Whom a bulletin is for. `stores` are (branch_id, store_id) pairs."""

    kind: str
    branch_id: str | None = None
    stores: tuple[tuple[str, str], ...] = ()

    def addresses(self, branch_id: str | None, store_id: str | None) -> bool:
        """Whether a user of this unit (None, None: HQ) is one the bulletin is for."""
        if self.kind == "chain":
            return True
        if self.kind == "branch":
            return branch_id is not None and branch_id == self.branch_id
        return store_id is not None and (branch_id, store_id) in self.stores

    def lies_within(self, branch_id: str | None, store_id: str | None) -> bool:
        """Whether the whole scope is at or below this unit (HQ oversees every scope)."""
        if branch_id is None:
            return True
        if store_id is not None or self.kind == "chain":
            return False
        if self.kind == "branch":
            return self.branch_id == branch_id
        return all(branch == branch_id for branch, _ in self.stores)

    def touches_branch(self, branch_id: str) -> bool:
        """Whether any part of the scope is in this branch (what a branch's users oversee)."""
        if self.kind == "chain":
            return True
        if self.kind == "branch":
            return self.branch_id == branch_id
        return any(branch == branch_id for branch, _ in self.stores)


@dataclass(frozen=True)
class Bulletin:
    id: str
    kind: str
    title: str
    body: str
    attachments: tuple[Attachment, ...]
    publisher_id: str
    publisher_branch_id: str | None  # None: HQ
    scope: Scope
    published_at: datetime
    expires_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def _check_text(errors: list[FieldError], name: str, value: str, limit: int) -> str:
    text = value.strip()
    if not text:
        errors.append(FieldError(name, "must not be empty"))
    elif len(text) > limit:
        errors.append(FieldError(name, f"must be at most {limit} characters"))
    return text


def check_url(url: str) -> str | None:
    """Why a link is not one we accept, or None: https to a named host, nothing odd in it."""
    if len(url) > MAX_URL:
        return f"must be at most {MAX_URL} characters"
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - a port that is no number raises here
    except ValueError:
        return "is not a URL"
    if parts.scheme.lower() != "https":
        return "must be an https:// link"
    if not host or "." not in host:
        return "must name a host, e.g. https://files.example.com/manual.pdf"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password"
    return None


def _attachments(
    errors: list[FieldError], raw: Sequence[tuple[str, str]]
) -> tuple[Attachment, ...]:
    """The links as kept; every bad one named by its index (attachments[2].url)."""
    if len(raw) > MAX_ATTACHMENTS:
        errors.append(FieldError("attachments", f"at most {MAX_ATTACHMENTS} links"))
        return ()
    kept = []
    for index, (title, url) in enumerate(raw):
        name = f"attachments[{index}]"
        clean_title = _check_text(errors, f"{name}.title", title, MAX_ATTACHMENT_TITLE)
        url = url.strip()
        if (reason := check_url(url)) is not None:
            errors.append(FieldError(f"{name}.url", reason))
        kept.append(Attachment(clean_title, url))
    return tuple(kept)


def scope_from(kind: str, branch_id: str, stores: Sequence[tuple[str, str]]) -> Scope:
    """A well-formed scope: a branch for `branch`, one or more distinct stores for `stores`."""
    if kind not in SCOPE_KINDS:
        raise InvalidInput(
            "invalid scope", [FieldError("scope.kind", f"must be one of {', '.join(SCOPE_KINDS)}")]
        )
    if kind == "chain":
        if branch_id or stores:
            raise InvalidInput(
                "invalid scope",
                [FieldError("scope", "the chain takes no branch or stores")],
            )
        return Scope("chain")
    if kind == "branch":
        if not branch_id:
            raise InvalidInput("invalid scope", [FieldError("scope.branch_id", "name the branch")])
        if stores:
            raise InvalidInput(
                "invalid scope", [FieldError("scope.store_ids", "a branch scope takes no stores")]
            )
        return Scope("branch", branch_id=branch_id)
    if branch_id:
        raise InvalidInput(
            "invalid scope", [FieldError("scope.branch_id", "a stores scope takes no branch")]
        )
    if not stores:
        raise InvalidInput("invalid scope", [FieldError("scope.store_ids", "name the stores")])
    if len(stores) > MAX_STORES:
        raise InvalidInput(
            "invalid scope", [FieldError("scope.store_ids", f"at most {MAX_STORES} stores")]
        )
    if any(not branch or not store for branch, store in stores):
        raise InvalidInput(
            "invalid scope", [FieldError("scope.store_ids", "every store needs its branch")]
        )
    # Named twice is the same store once; the order as given.
    return Scope("stores", stores=tuple(dict.fromkeys(stores)))


def check_may_publish(auth: AuthContext, scope: Scope) -> None:
    """HQ anywhere; a branch manager within its own branch; nobody else."""
    if auth.level == "hq" and auth.role in HQ_PUBLISHERS:
        return
    if auth.level == "branch" and auth.role in BRANCH_PUBLISHERS:
        if not scope.lies_within(auth.branch_id, None):
            # Naming another branch or its stores: as everywhere, outside one's scope is unknown.
            raise NotFound("no such branch or store in your scope")
        return
    raise Forbidden(f"role {auth.role} at {auth.level} level may not publish bulletins")


def new_bulletin(
    *,
    bulletin_id: str,
    auth: AuthContext,
    kind: str,
    title: str,
    body: str,
    attachments: Sequence[tuple[str, str]],
    scope: Scope,
    now: datetime,
    expires_at: datetime | None,
) -> Bulletin:
    """A bulletin as `auth` publishes it now, or all the reasons (by field) it cannot be.
    `attachments` are (title, url) pairs."""
    check_may_publish(auth, scope)
    errors: list[FieldError] = []
    if kind not in KINDS:
        errors.append(FieldError("kind", f"must be one of {', '.join(KINDS)}"))
    clean_title = _check_text(errors, "title", title, MAX_TITLE)
    clean_body = _check_text(errors, "body", body, MAX_BODY)
    links = _attachments(errors, attachments)
    if expires_at is not None and expires_at <= now:
        errors.append(FieldError("expires_at", "must lie in the future"))
    if errors:
        raise InvalidInput("invalid bulletin", errors)
    return Bulletin(
        id=bulletin_id,
        kind=kind,
        title=clean_title,
        body=clean_body,
        attachments=links,
        publisher_id=auth.user_id,
        publisher_branch_id=auth.branch_id,
        scope=scope,
        published_at=now,
        expires_at=expires_at,
    )


def sees(auth: AuthContext, bulletin: Bulletin) -> bool:
    """Addressed to the caller's unit, overseen by it (HQ: all; a branch: any part in it), or
    published by them."""
    if auth.level == "hq" or bulletin.publisher_id == auth.user_id:
        return True
    if auth.level == "branch":
        return bulletin.scope.touches_branch(auth.branch_id or "")
    return bulletin.scope.addresses(auth.branch_id, auth.store_id)


def check_sees(auth: AuthContext, bulletin: Bulletin) -> None:
    if not sees(auth, bulletin):
        raise NotFound(f"no bulletin {bulletin.id} in your scope")


def check_may_see_receipts(auth: AuthContext, bulletin: Bulletin) -> None:
    """HQ, and the publishing branch's manager; others who see it are refused, others not."""
    check_sees(auth, bulletin)
    if auth.level == "hq" and auth.role in HQ_PUBLISHERS:
        return
    if (
        auth.level == "branch"
        and auth.role in BRANCH_PUBLISHERS
        and bulletin.publisher_branch_id == auth.branch_id
    ):
        return
    raise Forbidden(f"role {auth.role} may not see who read this bulletin")


@dataclass(frozen=True)
class Member:
    """A user of the chain, as the gateway knows them: who and where (None: HQ level)."""

    user_id: str
    branch_id: str | None
    store_id: str | None


def audience(bulletin: Bulletin, members: Sequence[Member]) -> list[Member]:
    """The members the bulletin is for (in the order given, each once), the publisher left
    out: those its receipts count."""
    seen: set[str] = set()
    kept = []
    for member in members:
        if member.user_id in seen or member.user_id == bulletin.publisher_id:
            continue
        if bulletin.scope.addresses(member.branch_id, member.store_id):
            seen.add(member.user_id)
            kept.append(member)
    return kept


def first_read(earlier: datetime | None, now: datetime) -> datetime:
    """Marking read again keeps the first time."""
    return earlier if earlier is not None else now
