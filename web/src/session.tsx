/** The signed-in user (GET /api/v1/me): their role and scope decide menus and actions. */
import { queryOptions, useQuery } from "@tanstack/react-query";
import { api, type Me, unwrap } from "./api/client";
import { getToken } from "./api/token";

/** /me as a query, shared by the screens and the start-up prefetch (main.tsx). */
export const meQuery = queryOptions({
  queryKey: ["me"],
  queryFn: async (): Promise<Me> => unwrap(await api.GET("/api/v1/me", {})),
  staleTime: 5 * 60_000,
});

export function useMe() {
  return useQuery({ ...meQuery, enabled: getToken() !== null });
}

/** Where the sign-in sends back to: only a path of this console, never another site. */
export function safeReturnPath(next: string | null): string | null {
  // "//host" and "/\host" are other sites to a browser.
  if (!next || !next.startsWith("/") || /^\/[\/\\]/.test(next) || next.startsWith("/login")) return null;
  return next;
}
