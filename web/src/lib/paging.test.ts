import { describe, expect, it } from "vitest";
import { apiQuery, pageQuery } from "./paging";

describe("a list's place in the address", () => {
  it("keeps the filters and moves the cursor", () => {
    const now = new URLSearchParams("state=open&cursor=abc");
    expect(pageQuery(now, {}, "def").toString()).toBe("state=open&cursor=def");
  });

  it("starts from the first page when a filter changes", () => {
    const now = new URLSearchParams("state=open&cursor=abc");
    expect(pageQuery(now, { state: "closed" }).toString()).toBe("state=closed");
    expect(pageQuery(now, { state: "" }).toString()).toBe("");
  });

  it("leaves blank parameters out of the API's query", () => {
    expect(apiQuery(new URLSearchParams("a=1&b="), ["a", "b", "cursor"])).toEqual({ a: "1", b: undefined, cursor: undefined });
  });
});
