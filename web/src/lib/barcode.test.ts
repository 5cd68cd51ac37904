import { describe, expect, it } from "vitest";
import { imeiFromBarcode, scannerKind } from "./barcode";

describe("an IMEI read from a barcode", () => {
  it("is the Luhn-valid 15-digit run in what the label carries", () => {
    expect(imeiFromBarcode("490154203237518")).toBe("490154203237518");
    expect(imeiFromBarcode("IMEI1:490154203237518 SN:ABC123")).toBe("490154203237518");
    expect(imeiFromBarcode("４９０１５４２０３２３７５１８")).toBe("490154203237518");
    // An IMEISV (16 digits): its first 15 digits.
    expect(imeiFromBarcode("4901542032375189")).toBe("490154203237518");
  });

  it("is nothing when no run checks out", () => {
    expect(imeiFromBarcode("490154203237519")).toBeNull();
    expect(imeiFromBarcode("SN:ABC123")).toBeNull();
  });

  it("uses the browser's own detector where there is one", () => {
    expect(scannerKind({ BarcodeDetector: class {} })).toBe("native");
    expect(scannerKind({})).toBe("library");
  });
});
