/** The order board's page of orders as a query: the board and the start-up prefetch (main.tsx)
 * ask with the same key, so the page the board needs is already on its way when it mounts. */
import { queryOptions } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";
import type { paths } from "../api/schema";

type StatusFilter = NonNullable<paths["/api/v1/repair-orders"]["get"]["parameters"]["query"]>["status"];

export const BOARD_PAGE_SIZE = 20;
/** A technician's queue starts at the newly received. */
export const QUEUE_FIRST_STATUS = "received";

/** The status and cursor a board address asks for (`/orders?status=…&cursor=…`, `/queue`). */
export function boardPageOf(params: URLSearchParams, queue: boolean): { status: string; cursor: string } {
  return {
    status: params.get("status") ?? (queue ? QUEUE_FIRST_STATUS : ""),
    cursor: params.get("cursor") ?? "",
  };
}

export function ordersQuery(status: string, cursor: string) {
  return queryOptions({
    queryKey: ["orders", status, cursor],
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/repair-orders", {
          params: { query: { limit: BOARD_PAGE_SIZE, status: (status || undefined) as StatusFilter, cursor: cursor || undefined } },
        }),
      ),
  });
}
