import { useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";

/** The warehouses in the user's scope (they change rarely). */
export function useWarehouses() {
  return useQuery({
    queryKey: ["warehouses"],
    queryFn: async () => unwrap(await api.GET("/api/v1/warehouses", {})).items,
    staleTime: 10 * 60_000,
  });
}

/** The org units in the user's scope. */
export function useOrgUnits() {
  return useQuery({
    queryKey: ["org-units"],
    queryFn: async () => unwrap(await api.GET("/api/v1/org-units", {})).items,
    staleTime: 10 * 60_000,
  });
}
