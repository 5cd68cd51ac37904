import { describe, expect, it } from "vitest";
import { checkImei, fenToYuan, luhnValid, normaliseDigits, phoneValid, yuanToFen } from "./digits";

describe("digits as typed", () => {
  it("turn full-width digits into ASCII and drop spaces and dashes", () => {
    expect(normaliseDigits("４９０１ ５４２０-３２３７５１８")).toBe("490154203237518");
    expect(normaliseDigits("138　1234 5678")).toBe("13812345678");
  });

  it("check an IMEI by Luhn", () => {
    expect(luhnValid("490154203237518")).toBe(true);
    expect(luhnValid("490154203237519")).toBe(false);
    expect(luhnValid("49015420323751x")).toBe(false);
  });

  it("say where an IMEI being typed stands", () => {
    expect(checkImei("")).toBe("empty");
    expect(checkImei("4901542")).toBe("typing");
    expect(checkImei("490154203237518")).toBe("ok");
    expect(checkImei("４９０１５４２０３２３７５１８")).toBe("ok");
    expect(checkImei("490154203237519")).toBe("luhn");
    expect(checkImei("4901542032375180")).toBe("length");
    expect(checkImei("49015420323751a")).toBe("length");
  });

  it("check a mobile number", () => {
    expect(phoneValid("13812345678")).toBe(true);
    expect(phoneValid("１３８１２３４５６７８")).toBe(true);
    expect(phoneValid("2381234567")).toBe(false);
  });

  it("convert yuan to fen exactly", () => {
    expect(yuanToFen("12.5")).toBe(1250);
    expect(yuanToFen("0.07")).toBe(7);
    expect(yuanToFen("199")).toBe(19900);
    expect(yuanToFen("1.234")).toBeNull();
    expect(yuanToFen("-1")).toBeNull();
    expect(fenToYuan(1250)).toBe("12.50");
  });
});
