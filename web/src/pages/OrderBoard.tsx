import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Alert, Button, Segmented, Space, Table, Tag, Typography } from "antd";
import { Link, useSearchParams } from "react-router-dom";
import type { Order } from "../api/client";
import StatusTag, { useStatusLabel } from "../components/StatusTag";
import { useI18n } from "../i18n";
import { BOARD_STATUSES, marksOf } from "../lib/board";
import { boardPageOf, ordersQuery } from "../lib/boardQuery";
import { shanghaiTime } from "../lib/time";
import { shanghaiToday } from "../lib/warranty";

const QUEUE_STATUSES = ["received", "diagnosed", "approved", "waiting_parts", "in_repair", "quality_check"] as const;

/** 工单看板: the orders in the user's scope by status, a page at a time with the API's cursor.
 * The status and the cursor live in the address, so a page can be bookmarked, shared, or
 * opened again from the browser's history. */
export default function OrderBoard({ queue = false }: { queue?: boolean }) {
  const { t } = useI18n();
  const statusLabel = useStatusLabel();
  const [params, setParams] = useSearchParams();
  // A technician's queue: the bench's statuses only, the newly received first.
  const statuses: readonly string[] = queue ? QUEUE_STATUSES : BOARD_STATUSES;
  const { status, cursor } = boardPageOf(params, queue);
  const today = shanghaiToday();

  const orders = useQuery({ ...ordersQuery(status, cursor), placeholderData: keepPreviousData });

  function go(next: { status?: string; cursor?: string }) {
    const query = new URLSearchParams();
    const nextStatus = next.status ?? status;
    if (nextStatus) query.set("status", nextStatus);
    if (next.cursor) query.set("cursor", next.cursor);
    setParams(query);
  }

  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      <Typography.Title level={3}>{t(queue ? "queue.title" : "board.title")}</Typography.Title>
      <Segmented
        aria-label={t("board.status")}
        value={status}
        onChange={(value) => go({ status: String(value), cursor: "" })}
        options={[
          ...(queue ? [] : [{ value: "", label: t("board.allStatuses") }]),
          ...statuses.map((s) => ({ value: s, label: statusLabel(s) })),
        ]}
        style={{ flexWrap: "wrap" }}
      />
      {orders.error && <Alert type="error" title={(orders.error as Error).message} />}
      <Table<Order>
        rowKey="id"
        loading={orders.isFetching}
        dataSource={orders.data?.items ?? []}
        pagination={false}
        locale={{ emptyText: t("board.empty") }}
        columns={[
          {
            title: t("board.number"),
            dataIndex: "number",
            render: (number: string, order) => <Link to={`/orders/${order.id}`}>{number}</Link>,
          },
          { title: t("board.status"), dataIndex: "status", render: (s: string) => <StatusTag status={s} /> },
          {
            title: t("board.marks"),
            key: "marks",
            render: (_, order) =>
              marksOf(order, today).map((mark) =>
                mark.kind === "swapDue" ? (
                  <Tag key="swap" color="red">{t("board.swapDue")}</Tag>
                ) : mark.kind === "swapSoon" ? (
                  <Tag key="swap" color="orange">{t("board.swapSoon", { days: mark.days })}</Tag>
                ) : (
                  <Tag key="late" color="red">{t("board.overdue")}</Tag>
                ),
              ),
          },
          {
            title: t("board.device"),
            key: "device",
            render: (_, order) => `${order.device.brand} ${order.device.model}`,
          },
          { title: t("board.customer"), key: "customer", render: (_, order) => order.customer.name },
          { title: t("board.store"), dataIndex: "store_id" },
          { title: t("board.received"), dataIndex: "received_at", render: (at: string | null) => shanghaiTime(at) },
          { title: t("board.promised"), dataIndex: "promised_date", render: (day: string | null) => day ?? "" },
        ]}
      />
      <Space>
        <Button disabled={!cursor} onClick={() => go({ cursor: "" })}>
          {t("board.first")}
        </Button>
        <Button
          type="primary"
          disabled={!orders.data?.next_cursor}
          onClick={() => go({ cursor: orders.data?.next_cursor ?? "" })}
        >
          {t("board.next")}
        </Button>
      </Space>
    </Space>
  );
}
