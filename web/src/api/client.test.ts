import { afterEach, describe, expect, it, vi } from "vitest";
import { api, ApiProblem, onUnauthenticated, rememberVersion, unwrap } from "./client";
import { getToken, setToken } from "./token";

function reply(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": status < 400 ? "application/json" : "application/problem+json", ...headers },
  });
}

describe("the client layer", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    setToken(null);
  });

  it("sends the token, an Idempotency-Key and the order's If-Match on a step", async () => {
    const sent: Request[] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn(async (request: Request) => {
        sent.push(request.clone());
        return reply(200, { id: "o1", version: 4 }, { ETag: '"4"' });
      }),
    );
    setToken("t0k3n");
    rememberVersion("o1", 3);
    await api.POST("/api/v1/repair-orders/{order_id}/qc", {
      params: { path: { order_id: "o1" } },
      body: { passed: true },
    });
    await api.POST("/api/v1/repair-orders/{order_id}/qc", {
      params: { path: { order_id: "o1" } },
      body: { passed: true },
    });
    const [first, second] = sent;
    expect(first!.headers.get("Authorization")).toBe("Bearer t0k3n");
    expect(first!.headers.get("If-Match")).toBe('"3"');
    expect(first!.headers.get("Idempotency-Key")).toMatch(/^[0-9a-f-]{36}$/);
    // The answer's ETag is the version the next step sends.
    expect(second!.headers.get("If-Match")).toBe('"4"');
    expect(second!.headers.get("Idempotency-Key")).not.toBe(first!.headers.get("Idempotency-Key"));
  });

  it("keeps a key the screen chose, for a retry of the same submit", async () => {
    const sent: Request[] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn(async (request: Request) => {
        sent.push(request);
        return reply(201, { id: "o2" });
      }),
    );
    await api.POST("/api/v1/repair-orders", {
      body: {} as never,
      params: { header: { "Idempotency-Key": "fixed-key" } },
    });
    expect(sent[0]!.headers.get("Idempotency-Key")).toBe("fixed-key");
  });

  it("sends a GET without an Idempotency-Key", async () => {
    const sent: Request[] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn(async (request: Request) => {
        sent.push(request);
        return reply(200, { items: [], next_cursor: null });
      }),
    );
    await api.GET("/api/v1/repair-orders", {});
    expect(sent[0]!.headers.has("Idempotency-Key")).toBe(false);
  });

  it("leads a 401 to the sign-in with the way back, and forgets the token", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => reply(401, { title: "Unauthorized", detail: "expired" })));
    const went: string[] = [];
    onUnauthenticated((back) => went.push(back));
    window.history.pushState({}, "", "/orders/o9?tab=timeline");
    setToken("old");
    await api.GET("/api/v1/me", {});
    expect(went).toEqual(["/orders/o9?tab=timeline"]);
    expect(getToken()).toBeNull();
    expect(sessionStorage.getItem("console.token")).toBeNull();
  });

  it("keeps the token in the tab's session, never in localStorage", () => {
    setToken("abc");
    expect(sessionStorage.getItem("console.token")).toBe("abc");
    expect(localStorage.length).toBe(0);
  });

  it("throws a problem with its fields", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () =>
        reply(422, { title: "Unprocessable", detail: "bad", errors: [{ field: "device.imei", reason: "Luhn" }] }),
      ),
    );
    const answer = await api.GET("/api/v1/me", {});
    expect(() => unwrap(answer)).toThrow(ApiProblem);
    try {
      unwrap(answer);
    } catch (error) {
      expect((error as ApiProblem).errors).toEqual([{ field: "device.imei", reason: "Luhn" }]);
    }
  });
});
