/** The inventory documents' lists (调拨, 盘点, 采购单): how one row reads in a warehouse's list. */

export interface MovedLine {
  part_number: string;
  quantity: number;
}

/** "HW-BAT-X ×2, HW-LCD-Y ×1": a document's parts in one cell, the first few only. */
export function linesSummary(lines: readonly MovedLine[], shown = 3): string {
  const head = lines.slice(0, shown).map((l) => `${l.part_number} ×${l.quantity}`);
  return lines.length > shown ? `${head.join(", ")} …(+${lines.length - shown})` : head.join(", ");
}

export interface TransferEnds {
  from_warehouse_id: string;
  to_warehouse_id: string;
}

/** Whether `warehouse` sends ("out") or receives ("in") the transfer, and the other end. */
export function transferEnd(transfer: TransferEnds, warehouse: string): { direction: "out" | "in"; other: string } {
  return transfer.from_warehouse_id === warehouse
    ? { direction: "out", other: transfer.to_warehouse_id }
    : { direction: "in", other: transfer.from_warehouse_id };
}

export interface OrderedLine {
  quantity: number;
  received: number;
}

/** The units of a purchase order still to come. */
export function outstandingUnits(lines: readonly OrderedLine[]): number {
  return lines.reduce((sum, l) => sum + Math.max(0, l.quantity - l.received), 0);
}
