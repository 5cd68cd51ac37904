import { describe, expect, it } from "vitest";
import { addMonths, NATIONAL_POLICY, previewWarranty, shanghaiToday } from "./warranty";

describe("the warranty preview", () => {
  it("adds months, keeping to the month's last day", () => {
    expect(addMonths("2026-01-31", 1)).toBe("2026-02-28");
    expect(addMonths("2025-03-15", 12)).toBe("2026-03-15");
  });

  it("follows the national 三包 days", () => {
    const p = NATIONAL_POLICY;
    expect(previewWarranty(null, "2026-06-01", p)).toEqual({ status: "out_of_warranty", reason: "noDate" });
    expect(previewWarranty("2026-06-01", "2026-06-07", p)).toMatchObject({ reason: "return", day: 7 });
    expect(previewWarranty("2026-06-01", "2026-06-08", p)).toMatchObject({ reason: "swap", day: 8 });
    expect(previewWarranty("2026-06-01", "2026-06-16", p)).toMatchObject({ reason: "repair", expiresOn: "2027-06-01" });
    expect(previewWarranty("2025-06-01", "2026-06-01", p)).toEqual({
      status: "out_of_warranty",
      reason: "ended",
      date: "2026-06-01",
    });
  });

  it("takes the day in Shanghai", () => {
    expect(shanghaiToday(new Date("2026-03-01T16:30:00Z"))).toBe("2026-03-02");
  });
});
