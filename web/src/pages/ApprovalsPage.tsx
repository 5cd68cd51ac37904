import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Alert, Card, Space, Table, Tag, Typography } from "antd";
import { Link, useSearchParams } from "react-router-dom";
import { api, type Order, unwrap } from "../api/client";
import Pager from "../components/Pager";
import { useI18n } from "../i18n";
import { fenToYuan } from "../lib/digits";
import { awaitsManager } from "../lib/steps";
import { shanghaiTime } from "../lib/time";
import { OpenById } from "./TransfersPage";

const PAGE_SIZE = 50;

/** 待审批: quotes over the branch's threshold (and in-warranty swaps and mainboards) waiting
 * for the manager; transfers and stocktakes opened by their number. */
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
      <Card title={t("approvals.transfers")}>
        <OpenById path="/transfers" label={t("transfer.id")} />
      </Card>
      <Card title={t("approvals.stocktakes")}>
        <OpenById path="/stocktakes" label={t("stocktake.id")} />
      </Card>
      <Card title={t("approvals.quotas")}>
        <Link to="/stock?tab=quota">{t("approvals.quotasLink")}</Link>
      </Card>
    </Space>
  );
}
