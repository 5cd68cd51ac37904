/** The console's one way to the gateway: typed by the generated schema (schema.d.ts, from the
 * gateway's /openapi.json), with what every call needs added here rather than by each screen:
 * the bearer token, an Idempotency-Key on every write, the order's If-Match on every step, and
 * a 401 leading to the sign-in with the way back. */
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";
import { getToken, setToken } from "./token";

export type Order = components["schemas"]["RepairOrder"];
export type Me = components["schemas"]["Me"];

export interface FieldProblem {
  field: string;
  reason: string;
}

/** An RFC 9457 problem the gateway answered. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly errors: FieldProblem[] = [],
  ) {
    super(detail || title);
  }
}

const STEP_PATH = /^\/api\/v1\/repair-orders\/([^/]+)\/[a-z/-]+$/;
const ORDER_PATH = /^\/api\/v1\/repair-orders\/([^/]+)(\/timeline)?$/;
const TOKEN_PATH = "/api/v1/auth/token";

/** The version (ETag) of each order as last read: a step sends it in If-Match, so a change by
 * someone else in between is refused (412), not overwritten. */
const versions = new Map<string, string>();

export function rememberVersion(orderId: string, version: number): void {
  versions.set(orderId, `"${version}"`);
}

export function knownVersion(orderId: string): string | undefined {
  return versions.get(orderId);
}

export function newIdempotencyKey(): string {
  return crypto.randomUUID();
}

// The start-up prefetch (startup.ts) may meet a 401 before the app has handed in its router:
// the same sign-in page then, by a full load.
let unauthenticated: (returnTo: string) => void = (returnTo) => {
  window.location.replace(`/login?next=${encodeURIComponent(returnTo)}&expired=1`);
};

/** Where a 401 goes (the app hands in its router's navigate). */
export function onUnauthenticated(handler: (returnTo: string) => void): void {
  unauthenticated = handler;
}

export const session: Middleware = {
  onRequest({ request }) {
    const token = getToken();
    if (token && !request.headers.has("Authorization")) request.headers.set("Authorization", `Bearer ${token}`);
    if (request.method !== "GET" && request.method !== "HEAD") {
      if (!request.headers.has("Idempotency-Key")) request.headers.set("Idempotency-Key", newIdempotencyKey());
      const step = new URL(request.url).pathname.match(STEP_PATH);
      const version = step && versions.get(decodeURIComponent(step[1]!));
      if (version && !request.headers.has("If-Match")) request.headers.set("If-Match", version);
    }
    return request;
  },
  onResponse({ request, response }) {
    const path = new URL(request.url).pathname;
    const etag = response.headers.get("ETag");
    const order = path.match(ORDER_PATH) ?? path.match(STEP_PATH);
    if (etag && order && response.ok) versions.set(decodeURIComponent(order[1]!), etag);
    if (response.status === 401 && path !== TOKEN_PATH) {
      setToken(null);
      unauthenticated(window.location.pathname + window.location.search);
    }
    return response;
  },
};

// fetch looked up on each call (not bound once), so a test can stand in for the network.
export const api = createClient<paths>({
  baseUrl: window.location.origin,
  fetch: (request) => globalThis.fetch(request),
});
api.use(session);

/** The data of an answer, or its problem thrown. */
export function unwrap<T>(reply: { data?: T; error?: unknown; response: Response }): T {
  if (reply.response.ok && reply.data !== undefined) return reply.data;
  const problem = (reply.error ?? {}) as Partial<{ title: string; detail: string; errors: FieldProblem[] }>;
  throw new ApiProblem(
    reply.response.status,
    problem.title ?? reply.response.statusText,
    problem.detail ?? "",
    problem.errors ?? [],
  );
}

/** Sign in with the OAuth2 password form; the token is kept (memory and this tab's session). */
export async function signIn(username: string, password: string): Promise<void> {
  const response = await fetch(TOKEN_PATH, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: new URLSearchParams({ username, password }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiProblem(response.status, body.title ?? "", body.detail ?? "", body.errors ?? []);
  setToken(body.access_token as string);
}

export function signOut(): void {
  setToken(null);
  versions.clear();
}
