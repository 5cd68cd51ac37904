import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { homeFor, menuFor } from "./roles";
import { STEPS, stepsFor } from "./steps";

const clerk = { role: "clerk", branch_id: "SH", store_id: "SH-001" };
const tech = { role: "technician", branch_id: "SH", store_id: "SH-001" };
const keeper = { role: "warehouse_keeper", branch_id: "SH", store_id: "SH-001" };
const analyst = { role: "hq_analyst", branch_id: null, store_id: null };

describe("menus follow the role", () => {
  it("give the intake to those who take orders in", () => {
    expect(menuFor(clerk).map((e) => e.path)).toEqual(["/orders", "/intake"]);
    expect(menuFor(tech).map((e) => e.path)).toEqual(["/orders", "/intake"]);
    expect(menuFor(keeper).map((e) => e.path)).toEqual(["/orders"]);
    expect(menuFor(analyst).map((e) => e.path)).toEqual(["/orders"]);
  });

  it("start a clerk at the intake", () => {
    expect(homeFor(clerk)).toBe("/intake");
    expect(homeFor(tech)).toBe("/orders");
  });
});

describe("steps follow role, status and store", () => {
  const order = { status: "received", store_id: "SH-001", holder_store_id: "SH-001", partner: null };

  it("offer diagnosis to the technician holding the device, not to the clerk", () => {
    expect(stepsFor("technician", "SH-001", order).map((s) => s.name)).toEqual(["diagnosis"]);
    expect(stepsFor("clerk", "SH-001", order)).toEqual([]);
    expect(stepsFor("technician", "SH-002", order)).toEqual([]);
  });

  it("offer pickup only at the intake store", () => {
    const ready = { ...order, status: "ready_for_pickup" };
    expect(stepsFor("clerk", "SH-001", ready).map((s) => s.name)).toEqual(["pickup"]);
    expect(stepsFor("clerk", "SH-002", ready)).toEqual([]);
  });

  it("match the guards the API documents for every step", () => {
    const schema = readFileSync(resolve(process.cwd(), "src/api/schema.d.ts"), "utf8");
    for (const step of STEPS) {
      const at = schema.indexOf(`"/api/v1/repair-orders/{order_id}/${step.name}": {`);
      expect(at, step.name).toBeGreaterThan(0);
      const description = schema.slice(at).match(/\*\*Who\*\*: (.*?); .*?\*\*From\*\*: (.*?)\. Requires/);
      expect(description, step.name).not.toBeNull();
      const quoted = (text: string) => [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
      expect(quoted(description![1]!), step.name).toEqual([...step.roles]);
      expect(quoted(description![2]!), step.name).toEqual([...step.from]);
    }
  });
});
