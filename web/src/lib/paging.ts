/** A list's place in the address: its filters and the API's cursor as query parameters, so a
 * page can be bookmarked, shared and reopened from the history. */

export type Filters = Record<string, string>;

/** The address's query for `filters` at `cursor`; empty values are left out. A change of
 * filter starts again from the first page. */
export function pageQuery(current: URLSearchParams, change: Filters, cursor = ""): URLSearchParams {
  const next = new URLSearchParams();
  for (const [name, value] of current) if (name !== "cursor" && !(name in change) && value) next.set(name, value);
  for (const [name, value] of Object.entries(change)) if (value) next.set(name, value);
  if (cursor) next.set("cursor", cursor);
  return next;
}

/** The query's parameters as the API takes them: blank ones absent. */
export function apiQuery(params: URLSearchParams, names: readonly string[]): Record<string, string | undefined> {
  return Object.fromEntries(names.map((name) => [name, params.get(name) || undefined]));
}
