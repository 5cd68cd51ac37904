/** Digits as people type them: full-width (全角) digits from a Chinese IME become ASCII, spaces
 * and dashes go; the same normalisation as the API's (servicekit/identifiers.py). */
export function normaliseDigits(text: string): string {
  return text
    .replace(/[\uFF10-\uFF19]/g, (d) => String.fromCharCode(d.charCodeAt(0) - 0xff10 + 0x30))
    .replace(/[\s\u3000\-\uFF0D]/g, "");
}

/** The Luhn check an IMEI's 15th digit carries. */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

export type ImeiCheck = "empty" | "typing" | "length" | "luhn" | "ok";

/** Where an IMEI being typed stands: still short, wrong, or good. */
export function checkImei(typed: string): ImeiCheck {
  const digits = normaliseDigits(typed);
  if (digits === "") return "empty";
  if (!/^\d+$/.test(digits) || digits.length > 15) return "length";
  if (digits.length < 15) return "typing";
  return luhnValid(digits) ? "ok" : "luhn";
}

/** A mainland mobile number: 11 digits starting with 1. */
export function phoneValid(typed: string): boolean {
  return /^1\d{10}$/.test(normaliseDigits(typed));
}

/** Yuan as typed (up to two decimals) to integer fen; null when not an amount. */
export function yuanToFen(text: string | number | null | undefined): number | null {
  if (text === null || text === undefined || text === "") return null;
  const value = String(text).trim();
  if (!/^\d+(\.\d{1,2})?$/.test(value)) return null;
  const [whole, part = ""] = value.split(".");
  return Number(whole) * 100 + Number(part.padEnd(2, "0"));
}

export function fenToYuan(fen: number): string {
  return (fen / 100).toFixed(2);
}
