/** The dashboard's drill-down HQ → branch → store → orders, its place in the address. */

export type Level = "hq" | "branch" | "store";

export interface Place {
  branch_id?: string | null;
  store_id?: string | null;
}

export interface Unit {
  id: string;
  kind: string;
  parent_id: string | null;
}

export function levelOf(place: Place): Level {
  if (place.store_id) return "store";
  if (place.branch_id) return "branch";
  return "hq";
}

/** The units one level below the place: the branches under HQ, a branch's stores. */
export function unitsBelow<U extends Unit>(units: readonly U[], place: Place): U[] {
  const level = levelOf(place);
  if (level === "hq") return units.filter((u) => u.kind === "branch");
  if (level === "branch") return units.filter((u) => u.kind === "store" && u.parent_id === place.branch_id);
  return [];
}

function query(values: Record<string, string | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) if (value) q.set(name, value);
  const text = q.toString();
  return text ? `?${text}` : "";
}

/** Where a unit's row leads: a branch's or a store's own dashboard. */
export function unitHref(unit: Unit, period: { date_from?: string | null; date_to?: string | null }): string {
  const place = unit.kind === "store" ? { branch_id: unit.parent_id, store_id: unit.id } : { branch_id: unit.id };
  return `/dashboard${query({ ...place, ...period })}`;
}

/** Where a figure leads: the orders behind it, at this place and period. */
export function figureHref(figure: string, place: Place, period: { date_from?: string | null; date_to?: string | null }): string {
  return `/dashboard/orders${query({ figure, branch_id: place.branch_id, store_id: place.store_id, ...period })}`;
}

/** The way back up: HQ, then the branch, then the store. */
export function trail(place: Place, period: { date_from?: string | null; date_to?: string | null }): { level: Level; id: string | null; href: string }[] {
  const steps: { level: Level; id: string | null; href: string }[] = [{ level: "hq", id: null, href: `/dashboard${query(period)}` }];
  if (place.branch_id) steps.push({ level: "branch", id: place.branch_id, href: `/dashboard${query({ branch_id: place.branch_id, ...period })}` });
  if (place.store_id) steps.push({ level: "store", id: place.store_id, href: `/dashboard${query({ branch_id: place.branch_id, store_id: place.store_id, ...period })}` });
  return steps;
}

/** The figures whose orders can be listed, with the counts they come from. */
export const DRILL_FIGURES = ["received", "closed", "cancelled", "ready", "repeat_received", "followed_up"] as const;
