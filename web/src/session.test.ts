import { describe, expect, it } from "vitest";
import { safeReturnPath } from "./session";

describe("the way back after signing in", () => {
  it("goes only to a path of this console", () => {
    expect(safeReturnPath("/orders/o1?tab=timeline")).toBe("/orders/o1?tab=timeline");
    expect(safeReturnPath("//evil.example/phish")).toBeNull();
    expect(safeReturnPath("/\\evil.example/phish")).toBeNull();
    expect(safeReturnPath("https://evil.example/")).toBeNull();
    expect(safeReturnPath("/login?next=/orders")).toBeNull();
    expect(safeReturnPath(null)).toBeNull();
  });
});
