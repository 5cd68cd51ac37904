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

export function mayTakeIn(scope: Scope): boolean {
  return INTAKE_ROLES.includes(scope.role);
}

export function menuFor(scope: Scope): MenuEntry[] {
  const entries: MenuEntry[] = [{ path: "/orders", label: "menu.orders" }];
  if (mayTakeIn(scope)) entries.push({ path: "/intake", label: "menu.intake" });
  return entries;
}

/** The first screen after sign-in. */
export function homeFor(scope: Scope): string {
  return scope.role === "clerk" ? "/intake" : "/orders";
}
