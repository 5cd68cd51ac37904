/** The signed-in user (GET /api/v1/me): their role and scope decide menus and actions. */
import { useQuery } from "@tanstack/react-query";
import { api, type Me, unwrap } from "./api/client";
import { getToken } from "./api/token";

export function useMe() {
  return useQuery({
    queryKey: ["me"],
    queryFn: async (): Promise<Me> => unwrap(await api.GET("/api/v1/me", {})),
    enabled: getToken() !== null,
    staleTime: 5 * 60_000,
  });
}

/** Where the sign-in sends back to: only a path of this console, never another site. */
export function safeReturnPath(next: string | null): string | null {
  // "//host" and "/\host" are other sites to a browser.
  if (!next || !next.startsWith("/") || /^\/[\/\\]/.test(next) || next.startsWith("/login")) return null;
  return next;
}
