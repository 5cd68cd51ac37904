/** What a scanned barcode says about an IMEI: a box's label may carry "IMEI1:…", a serial beside
 * it, or full-width digits; the first 15-digit run that passes Luhn is the IMEI. */
import { luhnValid } from "./digits";

export function imeiFromBarcode(text: string): string | null {
  const ascii = text.replace(/[\uFF10-\uFF19]/g, (d) => String.fromCharCode(d.charCodeAt(0) - 0xff10 + 0x30));
  for (const run of ascii.match(/\d{15,}/g) ?? []) {
    // A 16-digit IMEISV or a longer run: the IMEI is its first 15 digits when they check out.
    const candidate = run.slice(0, 15);
    if (luhnValid(candidate)) return candidate;
  }
  return null;
}

/** Which reader the browser offers: its own BarcodeDetector (Chrome on Android, some tablets)
 * or the bundled decoder. */
export function scannerKind(scope: { BarcodeDetector?: unknown }): "native" | "library" {
  return typeof scope.BarcodeDetector === "function" ? "native" : "library";
}
