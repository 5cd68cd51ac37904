import { describe, expect, it } from "vitest";
import { marksOf } from "./board";
import { shanghaiTime } from "./time";

describe("the board's marks", () => {
  const today = "2026-06-10";

  it("mark a swap due, or near", () => {
    expect(marksOf({ status: "waiting_parts", swap_days_left: 0 }, today)).toEqual([{ kind: "swapDue" }]);
    expect(marksOf({ status: "waiting_parts", swap_days_left: -3 }, today)).toEqual([{ kind: "swapDue" }]);
    expect(marksOf({ status: "waiting_parts", swap_days_left: 5 }, today)).toEqual([{ kind: "swapSoon", days: 5 }]);
    expect(marksOf({ status: "waiting_parts", swap_days_left: 30 }, today)).toEqual([]);
  });

  it("mark an open order past its promised date, not a finished one", () => {
    expect(marksOf({ status: "in_repair", promised_date: "2026-06-09" }, today)).toEqual([{ kind: "overdue" }]);
    expect(marksOf({ status: "in_repair", promised_date: "2026-06-10" }, today)).toEqual([]);
    expect(marksOf({ status: "ready_for_pickup", promised_date: "2026-06-01" }, today)).toEqual([]);
  });
});

describe("Shanghai times", () => {
  it("show an instant in Asia/Shanghai", () => {
    expect(shanghaiTime("2026-03-01T16:30:00Z")).toBe("2026-03-02 00:30");
    expect(shanghaiTime(null)).toBe("");
  });
});
