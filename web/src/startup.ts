/** What the first screen needs, asked for as the console starts rather than after React has
 * rendered its way down to it: /me and, on a board address, the board's chunk and its first page
 * go out together, beside the rendering, instead of one after the other. */
import type { QueryClient } from "@tanstack/react-query";
import { getToken } from "./api/token";
import { boardPageOf, ordersQuery } from "./lib/boardQuery";
import { meQuery } from "./session";

export const loadOrderBoard = () => import("./pages/OrderBoard");

export function prefetchFor(queries: QueryClient, address: { pathname: string; search: string }): void {
  if (getToken() === null) return;
  void queries.prefetchQuery(meQuery);
  const path = address.pathname.replace(/\/+$/, "");
  if (path === "/orders" || path === "/queue") {
    void loadOrderBoard();
    const { status, cursor } = boardPageOf(new URLSearchParams(address.search), path === "/queue");
    void queries.prefetchQuery(ordersQuery(status, cursor));
  }
}
