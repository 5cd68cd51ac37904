/** The order steps this console offers, with who may take them and from which statuses, as
 * orders' contract declares its guards (the OpenAPI says the same: a test compares). */

export type StepName = "diagnosis" | "quote" | "approval" | "manager-approval" | "parts" | "repair/start" | "repair/finish" | "qc" | "pickup";

/** Where a store user must be: at the store holding the device, or at the intake store. */
export type StepWhere = "holder" | "intake" | "any";

export interface StepRule {
  name: StepName;
  roles: readonly string[];
  from: readonly string[];
  where: StepWhere;
}

export const STEPS: readonly StepRule[] = [
  { name: "diagnosis", roles: ["technician"], from: ["received", "diagnosed", "at_partner"], where: "holder" },
  { name: "quote", roles: ["clerk", "technician"], from: ["diagnosed"], where: "holder" },
  { name: "approval", roles: ["clerk", "technician"], from: ["awaiting_approval"], where: "any" },
  { name: "manager-approval", roles: ["branch_manager"], from: ["awaiting_approval"], where: "any" },
  { name: "parts", roles: ["clerk", "technician", "warehouse_keeper"], from: ["waiting_parts"], where: "holder" },
  { name: "repair/start", roles: ["technician"], from: ["approved"], where: "holder" },
  { name: "repair/finish", roles: ["technician"], from: ["in_repair"], where: "holder" },
  { name: "qc", roles: ["clerk", "technician"], from: ["quality_check"], where: "holder" },
  { name: "pickup", roles: ["clerk"], from: ["ready_for_pickup", "declined"], where: "intake" },
];

export interface OrderPlace {
  status: string;
  store_id: string;
  holder_store_id: string;
  partner?: { store_id: string } | null;
}

function atTheRightStore(rule: StepRule, storeId: string | null, order: OrderPlace): boolean {
  if (storeId === null) return true; // branch and HQ users act anywhere in their scope
  if (rule.where === "holder") return storeId === order.holder_store_id;
  if (rule.where === "intake") return storeId === order.store_id;
  return storeId === order.store_id || storeId === order.partner?.store_id;
}

export interface OrderQuoteState extends OrderPlace {
  quote?: { manager_approval_required: boolean; manager_approved: boolean } | null;
}

/** Over the branch's threshold (or an in-warranty swap or mainboard) and not yet approved. */
export function awaitsManager(order: OrderQuoteState): boolean {
  return order.status === "awaiting_approval" && !!order.quote?.manager_approval_required && !order.quote.manager_approved;
}

/** The steps a user may take on an order now. */
export function stepsFor(role: string, storeId: string | null, order: OrderQuoteState): StepRule[] {
  return STEPS.filter(
    (rule) =>
      rule.roles.includes(role) &&
      rule.from.includes(order.status) &&
      atTheRightStore(rule, storeId, order) &&
      (rule.name !== "manager-approval" || awaitsManager(order)),
  );
}
