import { describe, expect, it } from "vitest";
import { trackingAddress } from "./slip";

describe("the slip's tracking address", () => {
  it("keeps an absolute link and completes a path", () => {
    expect(trackingAddress("https://t.example/track/abc", "http://console")).toBe("https://t.example/track/abc");
    expect(trackingAddress("/track/abc", "http://console:8080/")).toBe("http://console:8080/track/abc");
  });
});
