import { describe, expect, it } from "vitest";
import { discrepancies, ownWarehouses, transferActions } from "./transfer";

const warehouses = [
  { id: "WH-SH", branch_id: "SH", store_id: null },
  { id: "WH-SH-001", branch_id: "SH", store_id: "SH-001" },
  { id: "WH-SH-002", branch_id: "SH", store_id: "SH-002" },
];
const keeper1 = { role: "warehouse_keeper", branch_id: "SH", store_id: "SH-001" };
const keeper2 = { role: "warehouse_keeper", branch_id: "SH", store_id: "SH-002" };
const manager = { role: "branch_manager", branch_id: "SH", store_id: null };
const zjManager = { role: "branch_manager", branch_id: "ZJ", store_id: null };
const transfer = { from_warehouse_id: "WH-SH-001", to_warehouse_id: "WH-SH-002", status: "requested", pending_branches: ["SH"] };

describe("a transfer's steps by role and side", () => {
  it("keep a store keeper to their own warehouse", () => {
    expect(ownWarehouses(keeper1, warehouses).map((w) => w.id)).toEqual(["WH-SH-001"]);
    expect(ownWarehouses(manager, warehouses).map((w) => w.id)).toEqual(["WH-SH", "WH-SH-001", "WH-SH-002"]);
  });

  it("let the branch manager approve, not a keeper or another branch", () => {
    expect(transferActions(transfer, manager, ownWarehouses(manager, warehouses))).toContain("approve");
    expect(transferActions(transfer, keeper1, ownWarehouses(keeper1, warehouses))).toEqual(["cancel"]);
    expect(transferActions(transfer, zjManager, [])).toEqual([]);
  });

  it("let the sender ship and the receiver receive", () => {
    const approved = { ...transfer, status: "approved", pending_branches: [] };
    expect(transferActions(approved, keeper1, ownWarehouses(keeper1, warehouses))).toEqual(["ship", "cancel"]);
    expect(transferActions(approved, keeper2, ownWarehouses(keeper2, warehouses))).toEqual(["cancel"]);
    const shipped = { ...approved, status: "shipped" };
    expect(transferActions(shipped, keeper2, ownWarehouses(keeper2, warehouses))).toEqual(["receive"]);
    expect(transferActions(shipped, keeper1, ownWarehouses(keeper1, warehouses))).toEqual([]);
  });

  it("send only the lines that came short or damaged", () => {
    expect(
      discrepancies([
        { part_number: "A", short: 1, damaged: 0 },
        { part_number: "B" },
        { part_number: "C", short: null, damaged: 2 },
      ]),
    ).toEqual([
      { part_number: "A", short: 1, damaged: 0 },
      { part_number: "C", short: 0, damaged: 2 },
    ]);
  });
});
