import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { App } from "antd";
import { MemoryRouter } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Me } from "../api/client";
import { I18nProvider } from "../i18n";
import IntakePage from "./IntakePage";

const clerk: Me = {
  id: "u1",
  username: "sh001.clerk",
  display_name: "SH-001 受理员",
  role: "clerk",
  branch_id: "SH",
  store_id: "SH-001",
  org_unit: { id: "SH-001", kind: "store", name: "上海徐汇服务厅", parent_id: "SH", franchised: false },
};

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

let posted: Request[];

beforeEach(() => {
  posted = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (request: Request) => {
      const path = new URL(request.url).pathname;
      if (request.method === "POST") posted.push(request);
      if (path === "/api/v1/brands") return json({ items: [{ code: "huawei", name: "Huawei 华为", models: [] }] });
      if (path === "/api/v1/warranty-policies") return json({ items: [], version: 1 });
      return json({ title: "Not Found", detail: "no such customer" }, 404);
    }),
  );
});

afterEach(() => vi.unstubAllGlobals());

function renderIntake() {
  const queries = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={queries}>
      <I18nProvider initial="zh-CN">
        <MemoryRouter>
          <App>
            <IntakePage me={clerk} />
          </App>
        </MemoryRouter>
      </I18nProvider>
    </QueryClientProvider>,
  );
}

describe("the intake form", () => {
  it("checks the IMEI by Luhn as it is typed, turning full-width digits into ASCII", async () => {
    renderIntake();
    const imei = screen.getByLabelText("IMEI") as HTMLInputElement;
    fireEvent.change(imei, { target: { value: "490154203237519" } });
    await screen.findByText("IMEI 校验位不正确，请核对");
    // The same input throughout: the field keeps its element (and the clerk's focus) as its
    // check changes.
    expect(screen.getByLabelText("IMEI")).toBe(imei);
    fireEvent.change(imei, { target: { value: "４９０１５４２０３２３７５１８" } });
    await screen.findByText("IMEI 校验通过");
    expect(imei.value).toBe("490154203237518");
  });

  it("shows the warranty decision before saving", async () => {
    renderIntake();
    const preview = await screen.findByTestId("warranty-preview");
    expect(preview.textContent).toContain("保外");
    expect(preview.textContent).toContain("无购买日期或凭证");
  });

  it("sends nothing while required fields are missing", async () => {
    renderIntake();
    fireEvent.click(screen.getByRole("button", { name: "保存受理单" }));
    await waitFor(() => expect(screen.getAllByText("必填").length).toBeGreaterThan(0));
    expect(screen.getByText("请输入 11 位手机号")).toBeTruthy();
    expect(posted).toEqual([]);
  });

  it("says a phone not on record is a new customer", async () => {
    renderIntake();
    fireEvent.change(screen.getByLabelText("手机号"), { target: { value: "１３９００００１１１１" } });
    fireEvent.click(screen.getByRole("button", { name: "查找客户" }));
    await screen.findByText("新客户");
    const lookup = (fetch as unknown as { mock: { calls: [Request][] } }).mock.calls
      .map(([request]) => new URL(request.url))
      .find((url) => url.pathname === "/api/v1/customers/lookup");
    expect(lookup?.searchParams.get("phone")).toBe("13900001111");
  });
});
