import { describe, expect, it } from "vitest";
import { figureHref, levelOf, trail, unitHref, unitsBelow } from "./drill";

const units = [
  { id: "HQ", kind: "hq", parent_id: null },
  { id: "SH", kind: "branch", parent_id: "HQ" },
  { id: "ZJ", kind: "branch", parent_id: "HQ" },
  { id: "SH-001", kind: "store", parent_id: "SH" },
  { id: "ZJ-001", kind: "store", parent_id: "ZJ" },
];

describe("the dashboard's drill-down", () => {
  it("goes HQ → branch → store", () => {
    expect(levelOf({})).toBe("hq");
    expect(unitsBelow(units, {}).map((u) => u.id)).toEqual(["SH", "ZJ"]);
    expect(levelOf({ branch_id: "SH" })).toBe("branch");
    expect(unitsBelow(units, { branch_id: "SH" }).map((u) => u.id)).toEqual(["SH-001"]);
    expect(unitsBelow(units, { branch_id: "SH", store_id: "SH-001" })).toEqual([]);
  });

  it("keeps the period on the way down and back", () => {
    const period = { date_from: "2026-01-01", date_to: "2026-01-31" };
    expect(unitHref(units[3]!, period)).toBe("/dashboard?branch_id=SH&store_id=SH-001&date_from=2026-01-01&date_to=2026-01-31");
    expect(figureHref("closed", { branch_id: "SH", store_id: "SH-001" }, {})).toBe(
      "/dashboard/orders?figure=closed&branch_id=SH&store_id=SH-001",
    );
    expect(trail({ branch_id: "SH", store_id: "SH-001" }, {}).map((s) => s.href)).toEqual([
      "/dashboard",
      "/dashboard?branch_id=SH",
      "/dashboard?branch_id=SH&store_id=SH-001",
    ]);
  });
});
