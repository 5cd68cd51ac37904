import { keepPreviousData, useQueries, useQuery } from "@tanstack/react-query";
import { Alert, Card, Space, Table, Tag, Typography } from "antd";
import { Link, useSearchParams } from "react-router-dom";
import { api, type Order, unwrap } from "../api/client";
import type { components } from "../api/schema";
import Pager from "../components/Pager";
import { useI18n } from "../i18n";
import { fenToYuan } from "../lib/digits";
import { linesSummary } from "../lib/documents";
import { awaitsManager } from "../lib/steps";
import { shanghaiTime } from "../lib/time";
import { ownWarehouses } from "../lib/transfer";
import { useWarehouses } from "../lib/useWarehouses";
import { useMe } from "../session";
import { useStocktakeColumns } from "./StocktakesPage";

const PAGE_SIZE = 50;
// The queues below show their oldest-waiting page only: a manager decides them down.
const QUEUE_SIZE = 50;

type Transfer = components["schemas"]["Transfer"];
type Stocktake = components["schemas"]["Stocktake"];

/** 调拨审批: transfers still awaiting the branch (HQ, with no branch, sees every requested one). */
function TransferQueue() {
  const { t } = useI18n();
  const me = useMe();
  const branch = me.data?.branch_id ?? null;
  const transfers = useQuery({
    queryKey: ["transfers", "pending", branch, QUEUE_SIZE],
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/transfers", {
          params: { query: branch ? { pending_branch: branch, limit: QUEUE_SIZE } : { status: "requested", limit: QUEUE_SIZE } },
        }),
      ),
    enabled: !!me.data,
  });
  return (
    <Card title={t("approvals.transfers")}>
      {transfers.error && <Alert type="error" title={(transfers.error as Error).message} />}
      <Table<Transfer>
        rowKey="id"
        size="small"
        pagination={false}
        loading={transfers.isFetching}
        locale={{ emptyText: t("approvals.noTransfers") }}
        dataSource={transfers.data?.items ?? []}
        columns={[
          { title: t("transfer.id"), dataIndex: "id", render: (id: string) => <Link to={`/transfers/${encodeURIComponent(id)}`}>{id}</Link> },
          { title: t("transfer.from"), dataIndex: "from_warehouse_id" },
          { title: t("transfer.to"), dataIndex: "to_warehouse_id" },
          { title: t("transfer.parts"), key: "parts", render: (_, x) => linesSummary(x.lines) },
          { title: t("transfer.requestedBy"), dataIndex: "requested_by" },
          { title: t("transfer.requestedAt"), dataIndex: "requested_at", render: (at: string) => shanghaiTime(at) },
        ]}
      />
    </Card>
  );
}

/** 盘点差异审批: the differences counted in the branch's warehouses, waiting for a decision. */
function StocktakeQueue() {
  const { t } = useI18n();
  const me = useMe();
  const warehouses = useWarehouses();
  const columns = useStocktakeColumns();
  const ids = me.data && warehouses.data ? ownWarehouses(me.data, warehouses.data).map((w) => w.id) : [];
  const pending = useQueries({
    queries: ids.map((warehouse) => ({
      queryKey: ["stocktakes", warehouse, "pending_approval", "", QUEUE_SIZE],
      queryFn: async () =>
        unwrap(
          await api.GET("/api/v1/warehouses/{warehouse_id}/stocktakes", {
            params: { path: { warehouse_id: warehouse }, query: { status: "pending_approval", limit: QUEUE_SIZE } },
          }),
        ),
    })),
  });
  const failed = warehouses.error ?? pending.find((q) => q.error)?.error;
  const items = pending.flatMap((q) => q.data?.items ?? []).sort((a, b) => a.counted_at.localeCompare(b.counted_at));
  return (
    <Card title={t("approvals.stocktakes")}>
      {failed && <Alert type="error" title={(failed as Error).message} />}
      <Table<Stocktake>
        rowKey="id"
        size="small"
        pagination={false}
        loading={warehouses.isLoading || pending.some((q) => q.isFetching)}
        locale={{ emptyText: t("approvals.noStocktakes") }}
        dataSource={items}
        columns={columns}
      />
    </Card>
  );
}

/** 待审批: quotes over the branch's threshold (and in-warranty swaps and mainboards) waiting
 * for the manager, the transfers awaiting the branch and the stocktake differences to decide. */
export default function ApprovalsPage() {
  const { t } = useI18n();
  const [params] = useSearchParams();
  const cursor = params.get("cursor") ?? "";
  const orders = useQuery({
    queryKey: ["orders", "awaiting_approval", cursor, PAGE_SIZE],
    queryFn: async () =>
      unwrap(await api.GET("/api/v1/repair-orders", { params: { query: { limit: PAGE_SIZE, status: "awaiting_approval", cursor: cursor || undefined } } })),
    placeholderData: keepPreviousData,
  });
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      <Typography.Title level={3}>{t("approvals.title")}</Typography.Title>
      <Card title={t("approvals.quotes")}>
        {orders.error && <Alert type="error" title={(orders.error as Error).message} />}
        <Table<Order>
          rowKey="id"
          size="small"
          loading={orders.isFetching}
          pagination={false}
          locale={{ emptyText: t("approvals.none") }}
          dataSource={orders.data?.items ?? []}
          columns={[
            { title: t("board.number"), dataIndex: "number", render: (n: string, o) => <Link to={`/orders/${o.id}`}>{n}</Link> },
            { title: t("board.store"), dataIndex: "store_id" },
            { title: t("board.device"), key: "device", render: (_, o) => `${o.device.brand} ${o.device.model}` },
            { title: t("detail.quote"), key: "quote", render: (_, o) => (o.quote ? `¥${fenToYuan(o.quote.total_fen)}` : "") },
            {
              title: t("approvals.state"),
              key: "state",
              render: (_, o) =>
                awaitsManager(o) ? <Tag color="gold">{t("approvals.needsManager")}</Tag> : <Tag>{t("approvals.needsCustomer")}</Tag>,
            },
            { title: t("board.received"), dataIndex: "received_at", render: (at: string | null) => shanghaiTime(at) },
          ]}
        />
        <Pager next={orders.data?.next_cursor} />
      </Card>
      <TransferQueue />
      <StocktakeQueue />
      <Card title={t("approvals.quotas")}>
        <Link to="/stock?tab=quota">{t("approvals.quotasLink")}</Link>
      </Card>
    </Space>
  );
}
