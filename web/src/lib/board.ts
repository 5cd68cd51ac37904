/** The order board's marks: 三包 swap due or near, and past the promised date. */

/** Statuses after which a promised date no longer matters: the device is done or gone. */
const PROMISE_KEPT = new Set(["ready_for_pickup", "closed", "cancelled", "declined"]);
/** Days before a swap falls due from which the board warns. */
export const SWAP_WARNING_DAYS = 7;

export type Mark = { kind: "swapDue" } | { kind: "swapSoon"; days: number } | { kind: "overdue" };

export interface Markable {
  status: string;
  swap_days_left?: number | null;
  promised_date?: string | null;
}

export function marksOf(order: Markable, today: string): Mark[] {
  const marks: Mark[] = [];
  const left = order.swap_days_left;
  if (left !== null && left !== undefined) {
    if (left <= 0) marks.push({ kind: "swapDue" });
    else if (left <= SWAP_WARNING_DAYS) marks.push({ kind: "swapSoon", days: left });
  }
  if (order.promised_date && order.promised_date < today && !PROMISE_KEPT.has(order.status)) {
    marks.push({ kind: "overdue" });
  }
  return marks;
}

export const BOARD_STATUSES = [
  "received",
  "diagnosed",
  "awaiting_approval",
  "approved",
  "waiting_parts",
  "in_repair",
  "quality_check",
  "ready_for_pickup",
  "sent_out",
  "at_partner",
  "returned_from_partner",
  "at_factory",
  "closed",
  "cancelled",
  "declined",
] as const;
