import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { App } from "antd";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { setToken } from "../api/token";
import { I18nProvider } from "../i18n";
import TransferDetail from "./TransferDetail";

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

const shipped = {
  id: "TR-1",
  from_warehouse_id: "WH-SH-001",
  to_warehouse_id: "WH-SH-002",
  status: "shipped",
  approved_branches: ["SH"],
  pending_branches: [],
  lines: ["HW-BAT-P60", "HW-SCR-P60"].map((part_number) => ({
    part_number, quantity: 3, unit_cost_fen: 9000, received: 0, short: 0, damaged: 0, serials: [], short_serials: [], damaged_serials: [],
  })),
  requested_by: "u2",
  note: null,
  requested_at: "2026-03-01T02:00:00Z",
  shipped_at: "2026-03-01T03:00:00Z",
  received_at: null,
  cancelled_at: null,
};

function me(role: string, store: string | null) {
  return {
    id: "u1", username: "x", display_name: "X", role, branch_id: "SH", store_id: store,
    org_unit: { id: store ?? "SH", kind: store ? "store" : "branch", name: "n", parent_id: "SH", franchised: false },
  };
}

let who = me("warehouse_keeper", "SH-002");
let posted: { path: string; body: unknown; key: string | null }[];

beforeEach(() => {
  posted = [];
  setToken("t");
  vi.stubGlobal(
    "fetch",
    vi.fn(async (request: Request) => {
      const path = new URL(request.url).pathname;
      if (request.method === "POST") {
        posted.push({ path, body: await request.json().catch(() => null), key: request.headers.get("Idempotency-Key") });
        return json({ ...shipped, status: "received" });
      }
      if (path === "/api/v1/me") return json(who);
      if (path === "/api/v1/warehouses") {
        return json({ items: [{ id: "WH-SH-002", name: "SH-002", kind: "store", branch_id: "SH", store_id: "SH-002" }] });
      }
      if (path === "/api/v1/transfers/TR-1") return json(shipped);
      return json({ title: "Not Found" }, 404);
    }),
  );
});

afterEach(() => {
  vi.unstubAllGlobals();
  setToken(null);
});

function renderTransfer() {
  const queries = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={queries}>
      <I18nProvider initial="zh-CN">
        <MemoryRouter initialEntries={["/transfers/TR-1"]}>
          <App>
            <Routes>
              <Route path="/transfers/:transferId" element={<TransferDetail />} />
            </Routes>
          </App>
        </MemoryRouter>
      </I18nProvider>
    </QueryClientProvider>,
  );
}

describe("a transfer's receipt", () => {
  it("sends only the lines that came short or damaged, each with its part", async () => {
    who = me("warehouse_keeper", "SH-002");
    renderTransfer();
    const short = await screen.findByLabelText("短少 HW-SCR-P60");
    fireEvent.change(short, { target: { value: "1" } });
    fireEvent.click(screen.getByRole("button", { name: /^收\s?货$/ }));
    await waitFor(() => expect(posted).toHaveLength(1));
    expect(posted[0]!.path).toBe("/api/v1/transfers/TR-1/receive");
    expect(posted[0]!.key).toMatch(/^[0-9a-f-]{36}$/);
    expect(posted[0]!.body).toEqual({
      discrepancies: [{ part_number: "HW-SCR-P60", short: 1, damaged: 0, short_serials: [], damaged_serials: [] }],
    });
  });

  it("offers the sender's keeper nothing to do on a shipped transfer", async () => {
    who = me("warehouse_keeper", "SH-001");
    renderTransfer();
    await screen.findByText("调拨单 TR-1");
    expect(screen.queryByRole("button", { name: /^收\s?货$/ })).toBeNull();
  });
});
