"""Request and response bodies of bulletins (内部通知 / 技术公告 / 培训) (the OpenAPI docs)."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.gateway.schemas_rules import HTTPS_LINK, NOT_BLANK


class AttachmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200, pattern=NOT_BLANK, examples=["培训课件"])
    url: str = Field(
        min_length=1,
        max_length=2000,
        pattern=HTTPS_LINK,
        description="an https:// link to where the file is kept",
        examples=["https://files.example.com/training/p60-screen.pdf"],
    )


class ScopeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["chain", "branch", "stores"] = Field(
        description="chain: everyone; branch: the branch and its stores; stores: those stores"
    )
    branch_id: str | None = Field(default=None, max_length=32, examples=["SH"])
    store_ids: list[str] | None = Field(
        default=None, max_length=500, examples=[["SH-001", "SH-002"]]
    )


class BulletinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["notice", "technical", "training"] = Field(
        description="notice 内部通知, technical 技术公告, training 培训"
    )
    title: str = Field(
        min_length=1, max_length=200, pattern=NOT_BLANK, examples=["华为 P60 屏幕排线更换要点"]
    )
    body: str = Field(min_length=1, max_length=20_000, pattern=NOT_BLANK)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=20)
    scope: ScopeIn
    expires_at: AwareDatetime | None = Field(
        default=None, description="after it, the bulletin leaves the lists (ISO 8601 with zone)"
    )


class Attachment(BaseModel):
    title: str
    url: str


class Scope(BaseModel):
    kind: str
    branch_id: str | None
    store_ids: list[str]


class Bulletin(BaseModel):
    id: str
    kind: str
    title: str
    body: str
    attachments: list[Attachment]
    publisher_id: str
    publisher_unit: str = Field(description="the publishing unit: HQ or a branch's code")
    scope: Scope
    published_at: str | None
    expires_at: str | None
    read: bool = Field(description="whether you have read it")
    read_at: str | None = Field(description="when you first read it")


class BulletinPage(BaseModel):
    items: list[Bulletin] = Field(description="unread first, then newest first")
    next_cursor: str | None
    unread_count: int = Field(description="your unread, unexpired bulletins in all")


class Reader(BaseModel):
    user_id: str
    username: str
    display_name: str
    role: str
    unit_id: str
    read_at: str | None


class Receipts(BaseModel):
    bulletin_id: str
    audience: int = Field(description="the users of the scope, the publisher left out")
    read_count: int
    not_read_count: int
    read: list[Reader] = Field(description="first reader first")
    not_read: list[Reader] = Field(description="by unit, then user name")
