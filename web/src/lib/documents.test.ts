import { describe, expect, it } from "vitest";
import { linesSummary, outstandingUnits, transferEnd } from "./documents";

describe("a document's row in a list", () => {
  it("names the first parts and counts the rest", () => {
    const lines = ["A", "B", "C", "D", "E"].map((p, i) => ({ part_number: p, quantity: i + 1 }));
    expect(linesSummary(lines.slice(0, 2))).toBe("A ×1, B ×2");
    expect(linesSummary(lines)).toBe("A ×1, B ×2, C ×3 …(+2)");
    expect(linesSummary([])).toBe("");
  });

  it("reads a transfer from the warehouse's side", () => {
    const t = { from_warehouse_id: "WH-SH-001", to_warehouse_id: "WH-SH-002" };
    expect(transferEnd(t, "WH-SH-001")).toEqual({ direction: "out", other: "WH-SH-002" });
    expect(transferEnd(t, "WH-SH-002")).toEqual({ direction: "in", other: "WH-SH-001" });
  });

  it("counts what is still to come, never below nothing", () => {
    expect(outstandingUnits([{ quantity: 5, received: 2 }, { quantity: 3, received: 3 }])).toBe(3);
    expect(outstandingUnits([{ quantity: 1, received: 2 }])).toBe(0);
    expect(outstandingUnits([])).toBe(0);
  });
});
