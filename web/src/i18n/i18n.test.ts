import { describe, expect, it } from "vitest";
import en from "./en";
import { asLanguage, format, hasMessage, isLoaded, loadLanguage } from "./index";
import zhCN from "./zh-CN";

describe("translations", () => {
  it("have the same keys in zh-CN and en", () => {
    expect(Object.keys(en).sort()).toEqual(Object.keys(zhCN).sort());
  });

  it("leave no message empty and keep the same placeholders", () => {
    for (const key of Object.keys(zhCN) as (keyof typeof zhCN)[]) {
      expect(zhCN[key].trim(), key).not.toBe("");
      expect(en[key].trim(), key).not.toBe("");
      const names = (text: string) => (text.match(/\{\w+\}/g) ?? []).sort();
      expect(names(en[key]), key).toEqual(names(zhCN[key]));
    }
  });

  it("load English only when asked for", async () => {
    expect(isLoaded("zh-CN")).toBe(true);
    expect(isLoaded("en")).toBe(false);
    await loadLanguage("en");
    expect(isLoaded("en")).toBe(true);
  });

  it("fill placeholders", async () => {
    await loadLanguage("en");
    expect(format("en", "board.swapSoon", { days: 3 })).toBe("Swap in 3 days");
    expect(format("zh-CN", "detail.title", { number: "SH-1" })).toBe("工单 SH-1");
  });

  it("show a status the console does not know yet as itself", () => {
    expect(hasMessage("status.received")).toBe(true);
    expect(hasMessage("status.teleported")).toBe(false);
  });

  it("read a language from a browser's or an order's tag", () => {
    expect(asLanguage("en-US")).toBe("en");
    expect(asLanguage("zh-CN")).toBe("zh-CN");
    expect(asLanguage("fr")).toBeNull();
  });
});
