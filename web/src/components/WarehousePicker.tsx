import { Select } from "antd";
import { useSearchParams } from "react-router-dom";
import { useI18n } from "../i18n";
import { pageQuery } from "../lib/paging";
import { ownWarehouses } from "../lib/transfer";
import { useWarehouses } from "../lib/useWarehouses";
import { useMe } from "../session";

/** The warehouse a screen is about, kept in the address (`?warehouse=`): the user's own first. */
export function useWarehouseParam(): string {
  const [params] = useSearchParams();
  const me = useMe();
  const warehouses = useWarehouses();
  const chosen = params.get("warehouse");
  if (chosen) return chosen;
  if (!me.data || !warehouses.data) return "";
  return ownWarehouses(me.data, warehouses.data)[0]?.id ?? warehouses.data[0]?.id ?? "";
}

export default function WarehousePicker() {
  const { t } = useI18n();
  const [params, setParams] = useSearchParams();
  const warehouses = useWarehouses();
  const value = useWarehouseParam();
  return (
    <Select
      aria-label={t("stock.warehouse")}
      style={{ minWidth: 260 }}
      value={value || undefined}
      loading={warehouses.isLoading}
      options={(warehouses.data ?? []).map((w) => ({ value: w.id, label: `${w.id} ${w.name}` }))}
      onChange={(warehouse: string) => setParams(pageQuery(params, { warehouse }))}
    />
  );
}
