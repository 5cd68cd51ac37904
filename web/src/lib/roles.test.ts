import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { homeFor, menuFor } from "./roles";
import { STEPS, stepsFor } from "./steps";

const clerk = { role: "clerk", branch_id: "SH", store_id: "SH-001" };
const tech = { role: "technician", branch_id: "SH", store_id: "SH-001" };
const keeper = { role: "warehouse_keeper", branch_id: "SH", store_id: "SH-001" };
const analyst = { role: "hq_analyst", branch_id: null, store_id: null };

const manager = { role: "branch_manager", branch_id: "SH", store_id: null };
const admin = { role: "hq_admin", branch_id: null, store_id: null };
const agent = { role: "followup_agent", branch_id: "SH", store_id: null };

describe("menus follow the role", () => {
  it("give each role its own screens and no other", () => {
    expect(menuFor(clerk).map((e) => e.path)).toEqual(["/orders", "/intake"]);
    expect(menuFor(tech).map((e) => e.path)).toEqual(["/queue", "/orders", "/intake"]);
    expect(menuFor(keeper).map((e) => e.path)).toEqual(["/orders", "/stock", "/transfers", "/stocktakes", "/purchasing"]);
    expect(menuFor(analyst).map((e) => e.path)).toEqual(["/dashboard", "/orders"]);
    expect(menuFor(agent).map((e) => e.path)).toEqual(["/complaints"]);
    expect(menuFor(manager).map((e) => e.path)).toEqual([
      "/dashboard", "/orders", "/intake", "/approvals", "/stock", "/transfers", "/stocktakes", "/purchasing", "/complaints",
    ]);
    expect(menuFor(admin).map((e) => e.path)).toContain("/base-data");
    expect(menuFor(manager).map((e) => e.path)).not.toContain("/base-data");
  });

  it("start each role where its work is", () => {
    expect(homeFor(clerk)).toBe("/intake");
    expect(homeFor(tech)).toBe("/queue");
    expect(homeFor(keeper)).toBe("/stock");
    expect(homeFor(manager)).toBe("/approvals");
    expect(homeFor(admin)).toBe("/dashboard");
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

  it("offer the manager's approval only when the quote needs it", () => {
    const quoted = { ...order, status: "awaiting_approval" };
    const needs = { ...quoted, quote: { manager_approval_required: true, manager_approved: false } };
    expect(stepsFor("branch_manager", null, needs).map((s) => s.name)).toEqual(["manager-approval"]);
    expect(stepsFor("branch_manager", null, { ...needs, quote: { manager_approval_required: true, manager_approved: true } })).toEqual([]);
    expect(stepsFor("branch_manager", null, { ...quoted, quote: { manager_approval_required: false, manager_approved: false } })).toEqual([]);
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
