"""The REST shapes of HQ's base data (基础数据) and of the org tree and user administration.
Shape only here; orders and the gateway's admin routes judge the content. Money in fen."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from services.gateway.schemas_rules import NOT_BLANK

Description = Annotated[str, StringConstraints(max_length=200)]
Fen = Annotated[int, Field(ge=0, le=100_000_000)]
Days = Annotated[int, Field(ge=0, le=365)]
Months = Annotated[int, Field(ge=0, le=60)]


class NameIn(BaseModel):
    """A manufacturer's or a model's name."""

    name: Annotated[str, StringConstraints(max_length=100, pattern=NOT_BLANK)]


class BrandEntry(NameIn):
    code: str


class ModelEntry(NameIn):
    brand: str
    code: str


class FaultCodeIn(BaseModel):
    """A manufacturer's symptom, fault or cause code (现象/故障/原因代码)."""

    description_zh: Annotated[str, StringConstraints(max_length=200, pattern=NOT_BLANK)]
    description_en: Description = ""
    active: bool = Field(True, description="a retired code may not be named by a new diagnosis")


class FaultCode(FaultCodeIn):
    brand: str
    kind: Literal["symptom", "fault", "cause"]
    code: str


class FaultCodes(BaseModel):
    items: list[FaultCode]
    version: int


class LabourPriceIn(BaseModel):
    """劳务费: what the manufacturer pays for an in-warranty repair of this level."""

    amount_fen: Fen


class LabourPrice(LabourPriceIn):
    brand: str
    repair_level: str


class LabourPrices(BaseModel):
    items: list[LabourPrice]
    version: int


class WarrantyPolicyIn(BaseModel):
    """A manufacturer's 三包 policy; the defaults are the national rules."""

    return_days: int = Field(7, ge=0, le=30, description="包退: return, swap or repair")
    swap_days: int = Field(
        15, ge=0, le=90, description="包换: swap or repair; not shorter than return_days"
    )
    main_unit_months: int = Field(12, ge=1, le=60)
    battery_months: Months = 12
    charger_months: Months = 12
    earphone_months: Months = 3
    repair_hold_days: Days = Field(30, description="the same fault back within it: free")
    parts_wait_days: int = Field(60, ge=1, le=365, description="waiting for parts longer: swap")
    swap_after_repairs: int = Field(2, ge=1, le=10, description="recurring-fault repairs: swap")


class WarrantyPolicy(WarrantyPolicyIn):
    brand: str


class WarrantyPolicies(BaseModel):
    items: list[WarrantyPolicy]
    version: int


class AuthorisationIn(BaseModel):
    authorised: bool


class Authorisation(AuthorisationIn):
    store_id: str
    brand: str
    service_type: str


class Authorisations(BaseModel):
    """The authorised cells of store × manufacturer × service type (厂商授权); any other is not."""

    items: list[Authorisation]
    version: int


class ApprovalThresholdIn(BaseModel):
    amount_fen: Fen


class ApprovalThreshold(ApprovalThresholdIn):
    branch_id: str


class ApprovalThresholds(BaseModel):
    items: list[ApprovalThreshold]
    default_fen: int = Field(description="the threshold of a branch HQ has not set")
    version: int


Role = Literal[
    "hq_admin",
    "hq_analyst",
    "branch_manager",
    "warehouse_keeper",
    "clerk",
    "technician",
    "followup_agent",
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]


class OrgUnitIn(BaseModel):
    """A new branch or store, or a changed name or franchise flag (加盟网点)."""

    kind: Literal["branch", "store"]
    parent_id: Annotated[str, StringConstraints(max_length=32)]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    franchised: bool = False


class OrgUnit(OrgUnitIn):
    id: str


class OrgUnits(BaseModel):
    items: list[OrgUnit]


class UserIn(BaseModel):
    """A user as the admin keeps them. A new user needs a password; an existing one keeps
    theirs unless reset."""

    display_name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    role: Role
    org_unit_id: Annotated[str, StringConstraints(max_length=32)]
    active: bool = True
    password: Password | None = Field(None, description="required for a new user")


class User(BaseModel):
    id: str
    username: str
    display_name: str
    role: str
    org_unit_id: str
    active: bool


class Users(BaseModel):
    items: list[User]


class PasswordIn(BaseModel):
    password: Password


BaseDataChangeKind = Literal[
    "brand",
    "model",
    "fault_code",
    "labour_price",
    "warranty_policy",
    "authorisation",
    "approval_threshold",
]
AdminChangeKind = Literal["org_unit", "user", "password"]


class Change(BaseModel):
    """One audited change (变更记录): who set what, when, to what."""

    seq: int = Field(description="the order changes were made in; newest first")
    at: str = Field(description="UTC, ISO 8601")
    at_local: str = Field(description="the same moment in Asia/Shanghai")
    user_id: str = Field(description="who made it")
    what: str
    key: str = Field(description="the row's natural key")
    value: dict[str, Any] = Field(description="what it was set to")


class BaseDataChange(Change):
    what: BaseDataChangeKind
    version: int = Field(description="of the base data, after this change")


class BaseDataChangePage(BaseModel):
    items: list[BaseDataChange]
    next_cursor: str | None


class AdminChange(Change):
    what: AdminChangeKind
    value: dict[str, Any] = Field(description="what it was set to (never a password)")


class AdminChangePage(BaseModel):
    items: list[AdminChange]
    next_cursor: str | None
