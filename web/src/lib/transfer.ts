/** 调拨: which steps of a transfer a user may take now, and the receipt's discrepancies. The
 * inventory service decides; this keeps the buttons to the ones it would accept. */
import { APPROVER_ROLES, STOCK_ROLES, type Scope } from "./roles";

export type TransferAction = "approve" | "ship" | "receive" | "cancel";

export interface TransferState {
  from_warehouse_id: string;
  to_warehouse_id: string;
  status: string;
  pending_branches: readonly string[];
}

export interface WarehousePlace {
  id: string;
  branch_id: string;
  store_id: string | null;
}

/** The warehouses a user keeps: their store's, their branch's, or every one for HQ. */
export function ownWarehouses<W extends WarehousePlace>(scope: Scope, warehouses: readonly W[]): W[] {
  return warehouses.filter((w) =>
    scope.store_id ? w.store_id === scope.store_id : scope.branch_id ? w.branch_id === scope.branch_id : true,
  );
}

export function transferActions(transfer: TransferState, scope: Scope, own: readonly WarehousePlace[]): TransferAction[] {
  const mine = new Set(own.map((w) => w.id));
  const keeps = STOCK_ROLES.includes(scope.role);
  const sender = keeps && mine.has(transfer.from_warehouse_id);
  const receiver = keeps && mine.has(transfer.to_warehouse_id);
  const actions: TransferAction[] = [];
  if (transfer.status === "requested" && APPROVER_ROLES.includes(scope.role)) {
    if (scope.branch_id === null || transfer.pending_branches.includes(scope.branch_id)) actions.push("approve");
  }
  if (transfer.status === "approved" && sender) actions.push("ship");
  if (transfer.status === "shipped" && receiver) actions.push("receive");
  if ((transfer.status === "requested" || transfer.status === "approved") && (sender || receiver)) actions.push("cancel");
  return actions;
}

export interface LineCount {
  part_number: string;
  short?: number | null;
  damaged?: number | null;
}

/** The receipt's body: only the lines that came short or damaged. */
export function discrepancies(lines: readonly LineCount[]): { part_number: string; short: number; damaged: number }[] {
  return lines
    .map((line) => ({ part_number: line.part_number, short: line.short ?? 0, damaged: line.damaged ?? 0 }))
    .filter((line) => line.short > 0 || line.damaged > 0);
}
