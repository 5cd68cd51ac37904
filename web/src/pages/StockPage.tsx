import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Alert, Button, Card, Form, Input, InputNumber, Space, Table, Tabs, Tag, Typography } from "antd";
import { useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { api, unwrap } from "../api/client";
import Pager from "../components/Pager";
import { useAction } from "../components/useAction";
import WarehousePicker, { useWarehouseParam } from "../components/WarehousePicker";
import { useI18n } from "../i18n";
import { fenToYuan, yuanToFen } from "../lib/digits";
import { mayApprove } from "../lib/roles";
import { shanghaiTime } from "../lib/time";
import { useMe } from "../session";

const PAGE_SIZE = 20;

/** Serial numbers typed one a line or comma-separated. */
export function serialList(text: string | undefined): string[] {
  return (text ?? "")
    .split(/[\s,，]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

function Serials({ warehouse, part }: { warehouse: string; part: string }) {
  const { t } = useI18n();
  const serials = useQuery({
    queryKey: ["serials", warehouse, part],
    queryFn: async () =>
      unwrap(await api.GET("/api/v1/warehouses/{warehouse_id}/serials", { params: { path: { warehouse_id: warehouse }, query: { part_number: part } } })).items,
  });
  if (serials.data && serials.data.length === 0) return <Typography.Text type="secondary">{t("stock.noSerials")}</Typography.Text>;
  return (
    <Space wrap>
      {(serials.data ?? []).map((s) => (
        <Tag key={s.serial}>{s.serial} · {s.state}</Tag>
      ))}
    </Space>
  );
}

function ReceiptForm({ warehouse }: { warehouse: string }) {
  const { t } = useI18n();
  const [form] = Form.useForm();
  const receipt = useAction(
    async (v: { part_number: string; quantity: number; unit_cost_yuan: string; document_id?: string; serials?: string }, key: string) =>
      unwrap(
        await api.POST("/api/v1/warehouses/{warehouse_id}/receipts", {
          params: { path: { warehouse_id: warehouse } }, headers: { "Idempotency-Key": key },
          body: {
            part_number: v.part_number.trim(),
            quantity: v.quantity,
            unit_cost_fen: yuanToFen(v.unit_cost_yuan) ?? 0,
            document_id: v.document_id?.trim() || null,
            serials: serialList(v.serials),
          },
        }),
      ),
    { form, refresh: [["stock"], ["movements"]], onDone: () => form.resetFields() },
  );
  return (
    <Form form={form} layout="inline" name="receipt" onFinish={(v) => receipt.mutate(v)} style={{ rowGap: 8 }}>
      <Form.Item name="part_number" label={t("field.partId")} rules={[{ required: true, whitespace: true, message: t("common.required") }, { max: 50 }]}>
        <Input />
      </Form.Item>
      <Form.Item name="quantity" label={t("field.quantity")} rules={[{ required: true, message: t("common.required") }]}>
        <InputNumber min={1} max={100000} />
      </Form.Item>
      <Form.Item name="unit_cost_yuan" label={t("stock.unitCostYuan")} rules={[{ required: true, message: t("common.required") }, { pattern: /^\d+(\.\d{1,2})?$/, message: t("stock.yuanFormat") }]}>
        <Input inputMode="decimal" style={{ width: 110 }} />
      </Form.Item>
      <Form.Item name="document_id" label={t("stock.document")} rules={[{ max: 50 }]}>
        <Input />
      </Form.Item>
      <Form.Item name="serials" label={t("stock.serials")}>
        <Input.TextArea rows={1} />
      </Form.Item>
      <Button type="primary" htmlType="submit" loading={receipt.isPending}>{t("stock.receive")}</Button>
    </Form>
  );
}

function documentLink(type: string, id: string) {
  if (type === "transfer") return <Link to={`/transfers/${encodeURIComponent(id)}`}>{id}</Link>;
  if (type === "stocktake") return <Link to={`/stocktakes/${encodeURIComponent(id)}`}>{id}</Link>;
  if (type === "repair_order") return <Link to={`/orders/${encodeURIComponent(id)}`}>{id}</Link>;
  return id;
}

function Movements({ warehouse }: { warehouse: string }) {
  const { t } = useI18n();
  const [params] = useSearchParams();
  const cursor = params.get("cursor") ?? "";
  const part = params.get("part") ?? "";
  const movements = useQuery({
    queryKey: ["movements", warehouse, part, cursor],
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/warehouses/{warehouse_id}/movements", {
          params: { path: { warehouse_id: warehouse }, query: { limit: PAGE_SIZE, cursor: cursor || undefined, part_number: part || undefined } },
        }),
      ),
    placeholderData: keepPreviousData,
    enabled: !!warehouse,
  });
  return (
    <>
      <Table
        rowKey="id"
        size="small"
        loading={movements.isFetching}
        dataSource={movements.data?.items ?? []}
        pagination={false}
        columns={[
          { title: t("stock.at"), dataIndex: "occurred_at", render: (at: string) => shanghaiTime(at) },
          { title: t("field.partId"), dataIndex: "part_number" },
          { title: t("stock.kind"), dataIndex: "kind" },
          { title: t("field.quantity"), dataIndex: "quantity" },
          { title: t("stock.unitCostYuan"), dataIndex: "unit_cost_fen", render: (fen: number) => fenToYuan(fen) },
          { title: t("stock.document"), key: "doc", render: (_, m) => documentLink(m.document_type, m.document_id) },
          { title: t("stock.user"), dataIndex: "user_id" },
        ]}
      />
      <Pager next={movements.data?.next_cursor} />
    </>
  );
}

function OldParts({ warehouse }: { warehouse: string }) {
  const { t } = useI18n();
  const [chosen, setChosen] = useState<React.Key[]>([]);
  const owed = useQuery({
    queryKey: ["old-parts", warehouse],
    queryFn: async () =>
      unwrap(await api.GET("/api/v1/warehouses/{warehouse_id}/old-parts", { params: { path: { warehouse_id: warehouse } } })).items,
    enabled: !!warehouse,
  });
  const rows = (owed.data ?? []).map((x) => ({ ...x, key: `${x.order_id}/${x.line_id}` }));
  const send = useAction(
    async (_: null, key: string) =>
      unwrap(
        await api.POST("/api/v1/warehouses/{warehouse_id}/old-part-returns", {
          params: { path: { warehouse_id: warehouse } }, headers: { "Idempotency-Key": key },
          body: {
            lines: rows.filter((r) => chosen.includes(r.key)).map((r) => ({ order_id: r.order_id, line_id: r.line_id, quantity: r.owed })),
          },
        }),
      ),
    { refresh: [["old-parts"]], onDone: () => setChosen([]) },
  );
  return (
    <Space orientation="vertical" style={{ width: "100%" }}>
      <Table
        size="small"
        rowSelection={{ selectedRowKeys: chosen, onChange: setChosen }}
        dataSource={rows}
        pagination={false}
        loading={owed.isFetching}
        columns={[
          { title: t("board.number"), dataIndex: "order_id", render: (id: string) => <Link to={`/orders/${id}`}>{id}</Link> },
          { title: t("field.partId"), dataIndex: "part_number" },
          { title: t("field.quantity"), dataIndex: "owed" },
          { title: t("stock.dueAt"), dataIndex: "due_at", render: (at: string, r) => <>{shanghaiTime(at)} {r.overdue && <Tag color="red">{t("board.overdue")}</Tag>}</> },
        ]}
      />
      <Button disabled={chosen.length === 0} loading={send.isPending} onClick={() => send.mutate(null)}>
        {t("stock.returnOldParts")}
      </Button>
    </Space>
  );
}

function Quota({ warehouse }: { warehouse: string }) {
  const { t } = useI18n();
  const me = useMe();
  const [form] = Form.useForm();
  const quota = useQuery({
    queryKey: ["quota", warehouse],
    queryFn: async () => unwrap(await api.GET("/api/v1/warehouses/{warehouse_id}/quota", { params: { path: { warehouse_id: warehouse } } })),
    enabled: !!warehouse,
    retry: false,
  });
  const set = useAction(
    async (v: { quota_yuan: string }, key: string) =>
      unwrap(
        await api.PUT("/api/v1/warehouses/{warehouse_id}/quota", {
          params: { path: { warehouse_id: warehouse } }, headers: { "Idempotency-Key": key },
          body: { quota_fen: yuanToFen(v.quota_yuan) ?? 0 },
        }),
      ),
    { form, refresh: [["quota"]] },
  );
  if (quota.error) return <Alert type="info" title={(quota.error as Error).message} />;
  const q = quota.data;
  return (
    <Space orientation="vertical">
      {q && (
        <Typography.Text>
          {t("stock.quota")}: ¥{fenToYuan(q.quota_fen)} · {t("stock.used")}: ¥{fenToYuan(q.used_fen)} · {t("stock.headroom")}: ¥{fenToYuan(q.headroom_fen)}
        </Typography.Text>
      )}
      {me.data && mayApprove(me.data) && (
        <Form form={form} layout="inline" name="quota" onFinish={(v) => set.mutate(v)}>
          <Form.Item name="quota_yuan" label={t("stock.quota")} rules={[{ required: true, message: t("common.required") }, { pattern: /^\d+(\.\d{1,2})?$/, message: t("stock.yuanFormat") }]}>
            <Input inputMode="decimal" />
          </Form.Item>
          <Button htmlType="submit" loading={set.isPending}>{t("common.save")}</Button>
        </Form>
      )}
    </Space>
  );
}

/** 库存: a warehouse's stock with serials, receipts, its ledger, old parts owed, its quota. */
export default function StockPage() {
  const { t } = useI18n();
  const warehouse = useWarehouseParam();
  const stock = useQuery({
    queryKey: ["stock", warehouse],
    queryFn: async () => unwrap(await api.GET("/api/v1/warehouses/{warehouse_id}/stock", { params: { path: { warehouse_id: warehouse } } })),
    enabled: !!warehouse,
  });
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      <Space wrap>
        <Typography.Title level={3} style={{ margin: 0 }}>{t("stock.title")}</Typography.Title>
        <WarehousePicker />
      </Space>
      {stock.error && <Alert type="error" title={(stock.error as Error).message} />}
      <Tabs
        items={[
          {
            key: "levels",
            label: t("stock.levels"),
            children: (
              <Table
                rowKey="part_number"
                size="small"
                loading={stock.isFetching}
                dataSource={stock.data?.levels ?? []}
                pagination={false}
                expandable={{ expandedRowRender: (level) => <Serials warehouse={warehouse} part={level.part_number} /> }}
                columns={[
                  { title: t("field.partId"), dataIndex: "part_number" },
                  { title: t("stock.description"), dataIndex: "description" },
                  { title: t("stock.onHand"), dataIndex: "on_hand" },
                  { title: t("stock.reserved"), dataIndex: "reserved" },
                  { title: t("stock.available"), dataIndex: "available" },
                  { title: t("stock.valueYuan"), dataIndex: "value_fen", render: (fen: number) => fenToYuan(fen) },
                ]}
              />
            ),
          },
          { key: "receipt", label: t("stock.receipt"), children: <Card><ReceiptForm warehouse={warehouse} /></Card> },
          { key: "movements", label: t("stock.movements"), children: <Movements warehouse={warehouse} /> },
          { key: "old-parts", label: t("stock.oldParts"), children: <OldParts warehouse={warehouse} /> },
          { key: "quota", label: t("stock.quota"), children: <Quota warehouse={warehouse} /> },
        ]}
      />
    </Space>
  );
}
