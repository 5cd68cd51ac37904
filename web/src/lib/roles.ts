/** What a signed-in user sees, from their role and scope (GET /api/v1/me). The API refuses
 * anything else anyway; this keeps out of sight what they may not do. */
import type { MessageKey } from "../i18n/zh-CN";

export type Role =
  | "hq_admin"
  | "hq_analyst"
  | "branch_manager"
  | "warehouse_keeper"
  | "clerk"
  | "technician"
  | "followup_agent";

export interface Scope {
  role: string;
  branch_id: string | null;
  store_id: string | null;
}

export interface MenuEntry {
  path: string;
  label: MessageKey;
}

/** 受理: who may take an order in (orders' INTAKE_ROLES); HQ and branch users name the store. */
export const INTAKE_ROLES: readonly string[] = ["clerk", "technician", "branch_manager", "hq_admin"];
/** Who books stock documents (inventory's STOCK_DOCUMENT_ROLES). */
export const STOCK_ROLES: readonly string[] = ["warehouse_keeper", "branch_manager", "hq_admin"];
/** Who approves: quotes over the threshold, transfers, stocktake differences, quotas. */
export const APPROVER_ROLES: readonly string[] = ["branch_manager", "hq_admin"];
/** Who reads the figures. */
export const REPORT_ROLES: readonly string[] = ["branch_manager", "hq_admin", "hq_analyst"];
/** Who calls customers back and handles complaints (customers' FOLLOW_UP_ROLES). */
export const FOLLOW_UP_ROLES: readonly string[] = ["followup_agent", "branch_manager", "hq_admin"];

export function mayTakeIn(scope: Scope): boolean {
  return INTAKE_ROLES.includes(scope.role);
}

export function mayKeepStock(scope: Scope): boolean {
  return STOCK_ROLES.includes(scope.role);
}

export function mayApprove(scope: Scope): boolean {
  return APPROVER_ROLES.includes(scope.role);
}

export function mayReport(scope: Scope): boolean {
  return REPORT_ROLES.includes(scope.role);
}

export function mayFollowUp(scope: Scope): boolean {
  return FOLLOW_UP_ROLES.includes(scope.role);
}

/** Base data, org units and users are kept centrally. */
export function mayAdminister(scope: Scope): boolean {
  return scope.role === "hq_admin";
}

export function menuFor(scope: Scope): MenuEntry[] {
  const entries: MenuEntry[] = [];
  if (mayReport(scope)) entries.push({ path: "/dashboard", label: "menu.dashboard" });
  if (scope.role === "technician") entries.push({ path: "/queue", label: "menu.queue" });
  if (scope.role !== "followup_agent") entries.push({ path: "/orders", label: "menu.orders" });
  if (mayTakeIn(scope)) entries.push({ path: "/intake", label: "menu.intake" });
  if (mayApprove(scope)) entries.push({ path: "/approvals", label: "menu.approvals" });
  if (mayKeepStock(scope)) {
    entries.push({ path: "/stock", label: "menu.stock" });
    entries.push({ path: "/transfers", label: "menu.transfers" });
    entries.push({ path: "/stocktakes", label: "menu.stocktakes" });
    entries.push({ path: "/purchasing", label: "menu.purchasing" });
  }
  if (mayFollowUp(scope)) entries.push({ path: "/complaints", label: "menu.complaints" });
  if (mayAdminister(scope)) {
    entries.push({ path: "/base-data", label: "menu.baseData" });
    entries.push({ path: "/admin", label: "menu.admin" });
  }
  return entries;
}

/** The first screen after sign-in. */
export function homeFor(scope: Scope): string {
  switch (scope.role) {
    case "clerk":
      return "/intake";
    case "technician":
      return "/queue";
    case "warehouse_keeper":
      return "/stock";
    case "followup_agent":
      return "/complaints";
    case "hq_admin":
    case "hq_analyst":
      return "/dashboard";
    case "branch_manager":
      return "/approvals";
    default:
      return "/orders";
  }
}
