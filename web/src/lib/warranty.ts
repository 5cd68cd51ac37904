/** The intake warranty decision (三包) previewed before saving, as orders decides it
 * (services/orders/domain/warranty.py decide_warranty): from the purchase date, the intake day
 * in Shanghai and the brand's policy. The saved order carries the decision that counts. */

export interface Policy {
  return_days: number;
  swap_days: number;
  main_unit_months: number;
}

export const NATIONAL_POLICY: Policy = { return_days: 7, swap_days: 15, main_unit_months: 12 };

export type WarrantyPreview =
  | { status: "out_of_warranty"; reason: "noDate" }
  | { status: "out_of_warranty"; reason: "ended"; date: string }
  | { status: "in_warranty"; reason: "return" | "swap"; day: number; expiresOn: string }
  | { status: "in_warranty"; reason: "repair"; expiresOn: string };

function parseDay(day: string): Date {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y ?? 0, (m ?? 1) - 1, d ?? 1));
}

function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** The same day `months` later; the month's last day where it has no such day. */
export function addMonths(day: string, months: number): string {
  const start = parseDay(day);
  const index = start.getUTCMonth() + months;
  const year = start.getUTCFullYear() + Math.floor(index / 12);
  const month = ((index % 12) + 12) % 12;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  return isoDay(new Date(Date.UTC(year, month, Math.min(start.getUTCDate(), lastDay))));
}

/** Today in Asia/Shanghai as YYYY-MM-DD. */
export function shanghaiToday(now: Date = new Date()): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai" }).format(now);
}

export function previewWarranty(purchaseDate: string | null, intakeDay: string, policy: Policy): WarrantyPreview {
  if (!purchaseDate) return { status: "out_of_warranty", reason: "noDate" };
  const expiresOn = addMonths(purchaseDate, policy.main_unit_months);
  if (intakeDay >= expiresOn) return { status: "out_of_warranty", reason: "ended", date: expiresOn };
  const day = Math.round((parseDay(intakeDay).getTime() - parseDay(purchaseDate).getTime()) / 86_400_000) + 1;
  if (day <= policy.return_days) return { status: "in_warranty", reason: "return", day, expiresOn };
  if (day <= policy.swap_days) return { status: "in_warranty", reason: "swap", day, expiresOn };
  return { status: "in_warranty", reason: "repair", expiresOn };
}
