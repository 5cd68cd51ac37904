import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Alert, Button, Card, Descriptions, Form, InputNumber, Space, Spin, Table, Tag, Typography } from "antd";
import { useParams } from "react-router-dom";
import { api, ApiProblem, unwrap } from "../api/client";
import { useAction } from "../components/useAction";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/zh-CN";
import { shanghaiTime } from "../lib/time";
import { discrepancies, ownWarehouses, type TransferAction, transferActions } from "../lib/transfer";
import { useWarehouses } from "../lib/useWarehouses";
import { useMe } from "../session";
import NotFound from "./NotFound";

const STEP_PATHS = {
  approve: "/api/v1/transfers/{transfer_id}/approve",
  ship: "/api/v1/transfers/{transfer_id}/ship",
  cancel: "/api/v1/transfers/{transfer_id}/cancel",
} as const;

/** One transfer: its lines as shipped and received, and the steps the user may take now. */
export default function TransferDetail() {
  const { transferId = "" } = useParams();
  const { t } = useI18n();
  const me = useMe();
  const warehouses = useWarehouses();
  const queries = useQueryClient();
  const [form] = Form.useForm();
  const transfer = useQuery({
    queryKey: ["transfer", transferId],
    queryFn: async () => unwrap(await api.GET("/api/v1/transfers/{transfer_id}", { params: { path: { transfer_id: transferId } } })),
  });
  const done = { onDone: (updated: NonNullable<typeof transfer.data>) => queries.setQueryData(["transfer", transferId], updated), refresh: [["stock"], ["movements"], ["transfers"]] };
  const step = useAction(
    async (action: keyof typeof STEP_PATHS, key: string) =>
      unwrap(await api.POST(STEP_PATHS[action], { params: { path: { transfer_id: transferId } }, headers: { "Idempotency-Key": key } })),
    done,
  );
  const receive = useAction(
    async (v: { lines: { short?: number; damaged?: number }[] }, key: string) => {
      // The form holds the counts only (a value without a field is not submitted): the
      // parts are the transfer's lines, in order.
      const counted = (transfer.data?.lines ?? []).map((line, i) => ({ part_number: line.part_number, ...v.lines[i] }));
      return unwrap(
        await api.POST("/api/v1/transfers/{transfer_id}/receive", {
          params: { path: { transfer_id: transferId } }, headers: { "Idempotency-Key": key },
          body: { discrepancies: discrepancies(counted).map((d) => ({ ...d, short_serials: [], damaged_serials: [] })) },
        }),
      );
    },
    { ...done, form },
  );
  if (transfer.error instanceof ApiProblem && transfer.error.status === 404) return <NotFound />;
  if (transfer.error) return <Alert type="error" title={(transfer.error as Error).message} />;
  if (!transfer.data || !me.data || !warehouses.data) return <Spin />;
  const x = transfer.data;
  const actions = transferActions(x, me.data, ownWarehouses(me.data, warehouses.data));
  const button = (action: Exclude<TransferAction, "receive">) => (
    <Button key={action} type={action === "cancel" ? "default" : "primary"} danger={action === "cancel"}
      loading={step.isPending && step.variables === action} onClick={() => step.mutate(action)}>
      {t(`transfer.${action}` as MessageKey)}
    </Button>
  );
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      <Space align="center">
        <Typography.Title level={3} style={{ margin: 0 }}>{t("transfer.heading", { id: x.id })}</Typography.Title>
        <Tag color="blue" data-testid="transfer-status">{t(`transfer.status.${x.status}` as MessageKey)}</Tag>
      </Space>
      <Card>
        <Descriptions size="small" column={{ xs: 1, md: 2 }}>
          <Descriptions.Item label={t("transfer.from")}>{x.from_warehouse_id}</Descriptions.Item>
          <Descriptions.Item label={t("transfer.to")}>{x.to_warehouse_id}</Descriptions.Item>
          <Descriptions.Item label={t("transfer.requestedBy")}>{x.requested_by} · {shanghaiTime(x.requested_at)}</Descriptions.Item>
          <Descriptions.Item label={t("transfer.pending")}>{x.pending_branches.join(", ") || t("common.none")}</Descriptions.Item>
          <Descriptions.Item label={t("transfer.shippedAt")}>{shanghaiTime(x.shipped_at)}</Descriptions.Item>
          <Descriptions.Item label={t("transfer.receivedAt")}>{shanghaiTime(x.received_at)}</Descriptions.Item>
          {x.note && <Descriptions.Item label={t("field.note")}>{x.note}</Descriptions.Item>}
        </Descriptions>
      </Card>
      <Table
        rowKey="part_number"
        size="small"
        pagination={false}
        dataSource={x.lines}
        columns={[
          { title: t("field.partId"), dataIndex: "part_number" },
          { title: t("field.quantity"), dataIndex: "quantity" },
          { title: t("transfer.received"), dataIndex: "received" },
          { title: t("transfer.short"), dataIndex: "short" },
          { title: t("transfer.damaged"), dataIndex: "damaged" },
          { title: t("stock.serials"), dataIndex: "serials", render: (s: string[]) => s.join(", ") },
        ]}
      />
      {actions.length > 0 && (
        <Card title={t("detail.steps")}>
          <Space orientation="vertical" style={{ width: "100%" }}>
            <Space>{actions.filter((a): a is Exclude<TransferAction, "receive"> => a !== "receive").map(button)}</Space>
            {actions.includes("receive") && (
              <Form form={form} name="transfer-receive" initialValues={{ lines: x.lines.map(() => ({ short: 0, damaged: 0 })) }}
                onFinish={(v) => receive.mutate(v)}>
                <Form.List name="lines">
                  {(fields) =>
                    fields.map((field, i) => (
                      <Space key={field.key} align="baseline">
                        <Typography.Text strong>{x.lines[i]?.part_number} ×{x.lines[i]?.quantity}</Typography.Text>
                        <Form.Item name={[field.name, "short"]} label={t("transfer.short")}>
                          <InputNumber min={0} max={x.lines[i]?.quantity} aria-label={`${t("transfer.short")} ${x.lines[i]?.part_number}`} />
                        </Form.Item>
                        <Form.Item name={[field.name, "damaged"]} label={t("transfer.damaged")}>
                          <InputNumber min={0} max={x.lines[i]?.quantity} aria-label={`${t("transfer.damaged")} ${x.lines[i]?.part_number}`} />
                        </Form.Item>
                      </Space>
                    ))
                  }
                </Form.List>
                <Button type="primary" htmlType="submit" loading={receive.isPending}>{t("transfer.receive")}</Button>
              </Form>
            )}
          </Space>
        </Card>
      )}
    </Space>
  );
}
