import { keepPreviousData, useQuery, useQueryClient } from "@tanstack/react-query";
import { Alert, Button, Card, Form, Input, InputNumber, Select, Space, Table, Tag, Typography } from "antd";
import { Link, useSearchParams } from "react-router-dom";
import { api, unwrap } from "../api/client";
import type { components, operations } from "../api/schema";
import Pager from "../components/Pager";
import { useAction } from "../components/useAction";
import WarehousePicker, { useWarehouseParam } from "../components/WarehousePicker";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/zh-CN";
import { fenToYuan, yuanToFen } from "../lib/digits";
import { linesSummary, outstandingUnits } from "../lib/documents";
import { pageQuery } from "../lib/paging";
import { shanghaiTime } from "../lib/time";

type PurchaseOrder = components["schemas"]["PurchaseOrder"];
type PurchaseOrderStatus = NonNullable<
  NonNullable<operations["list_purchase_orders_api_v1_warehouses__warehouse_id__purchase_orders_get"]["parameters"]["query"]>["status"]
>;
const STATUSES: readonly PurchaseOrderStatus[] = ["open", "received", "cancelled"];
const PAGE_SIZE = 20;

function Receive({ order, onReceived }: { order: PurchaseOrder; onReceived: (o: PurchaseOrder) => void }) {
  const { t } = useI18n();
  const [form] = Form.useForm();
  const receive = useAction(
    async (v: { lines: { quantity: number | null }[] }, key: string) =>
      unwrap(
        await api.POST("/api/v1/purchase-orders/{purchase_order_id}/receive", {
          params: { path: { purchase_order_id: order.id } }, headers: { "Idempotency-Key": key },
          // The form holds the quantities only: the parts are the order's lines, in order.
          body: {
            lines: order.lines
              .map((line, i) => ({ part_number: line.part_number, quantity: v.lines[i]?.quantity ?? 0 }))
              .filter((line) => line.quantity > 0),
          },
        }),
      ),
    { form, refresh: [["stock"], ["purchase-orders"], ["reorder"]], onDone: onReceived },
  );
  return (
    <Form form={form} name="purchase-receive" layout="inline"
      initialValues={{ lines: order.lines.map((l) => ({ quantity: l.quantity - l.received })) }}
      onFinish={(v) => receive.mutate(v)}>
      <Form.List name="lines">
        {(fields) =>
          fields.map((field, i) => (
            <Form.Item key={field.key} name={[field.name, "quantity"]} label={order.lines[i]?.part_number}>
              <InputNumber min={0} max={order.lines[i]?.quantity} />
            </Form.Item>
          ))
        }
      </Form.List>
      <Button type="primary" htmlType="submit" loading={receive.isPending}>{t("purchase.receive")}</Button>
    </Form>
  );
}

/** The warehouse's purchase orders, newest first; a row opens its order (`?order=`) below. */
function PurchaseOrderList({ warehouse }: { warehouse: string }) {
  const { t } = useI18n();
  const [params, setParams] = useSearchParams();
  const status = (params.get("status") ?? "") as PurchaseOrderStatus | "";
  const cursor = params.get("cursor") ?? "";
  const orders = useQuery({
    queryKey: ["purchase-orders", warehouse, status, cursor, PAGE_SIZE],
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/warehouses/{warehouse_id}/purchase-orders", {
          params: { path: { warehouse_id: warehouse }, query: { status: status || undefined, limit: PAGE_SIZE, cursor: cursor || undefined } },
        }),
      ),
    enabled: !!warehouse,
    placeholderData: keepPreviousData,
  });
  return (
    <Card title={t("purchase.list")}>
      <Select
        aria-label={t("purchase.statusLabel")}
        style={{ minWidth: 140, marginBottom: 12 }}
        value={status}
        options={[{ value: "", label: t("purchase.all") }, ...STATUSES.map((s) => ({ value: s, label: t(`purchase.status.${s}`) }))]}
        onChange={(next: string) => setParams(pageQuery(params, { status: next }))}
      />
      {orders.error && <Alert type="error" title={(orders.error as Error).message} />}
      <Table<PurchaseOrder>
        rowKey="id"
        size="small"
        pagination={false}
        loading={orders.isFetching}
        locale={{ emptyText: t("purchase.none") }}
        dataSource={orders.data?.items ?? []}
        columns={[
          {
            title: t("purchase.id"),
            dataIndex: "id",
            render: (id: string) => <Link to={`?${new URLSearchParams({ ...Object.fromEntries(params), order: id })}`}>{id}</Link>,
          },
          { title: t("purchase.supplier"), dataIndex: "supplier" },
          { title: t("transfer.parts"), key: "parts", render: (_, o) => linesSummary(o.lines) },
          { title: t("purchase.outstanding"), key: "outstanding", render: (_, o) => outstandingUnits(o.lines) },
          { title: t("purchase.statusLabel"), dataIndex: "status", render: (s: string) => <Tag>{t(`purchase.status.${s}` as MessageKey)}</Tag> },
          { title: t("purchase.createdAt"), dataIndex: "created_at", render: (at: string) => shanghaiTime(at) },
        ]}
      />
      <div style={{ marginTop: 12 }}>
        <Pager next={orders.data?.next_cursor} />
      </div>
    </Card>
  );
}

/** One purchase order, read by its id (`?order=`), received here while open. */
function PurchaseOrderCard({ id }: { id: string }) {
  const { t } = useI18n();
  const queries = useQueryClient();
  const order = useQuery({
    queryKey: ["purchase-order", id],
    queryFn: async () => unwrap(await api.GET("/api/v1/purchase-orders/{purchase_order_id}", { params: { path: { purchase_order_id: id } } })),
  });
  if (order.error) return <Alert type="error" title={(order.error as Error).message} />;
  if (!order.data) return null;
  const o = order.data;
  return (
    <Card title={t("purchase.order", { id: o.id })} data-testid="purchase-order">
      <Typography.Paragraph>
        {o.supplier} · {t("purchase.statusLabel")}: {t(`purchase.status.${o.status}` as MessageKey)} ·{" "}
        {o.lines.map((l) => `${l.part_number} ${l.received}/${l.quantity} @¥${fenToYuan(l.unit_cost_fen)}`).join("; ")}
      </Typography.Paragraph>
      {o.status === "open" && <Receive key={o.id} order={o} onReceived={(updated) => queries.setQueryData(["purchase-order", id], updated)} />}
    </Card>
  );
}

/** 采购: what to reorder (from consumption and what is on its way), purchase orders and their receipt. */
export default function PurchasingPage() {
  const { t } = useI18n();
  const warehouse = useWarehouseParam();
  const [form] = Form.useForm();
  const [params, setParams] = useSearchParams();
  const orderId = params.get("order") ?? "";
  const suggestions = useQuery({
    queryKey: ["reorder", warehouse],
    queryFn: async () =>
      unwrap(await api.GET("/api/v1/warehouses/{warehouse_id}/reorder-suggestions", { params: { path: { warehouse_id: warehouse } } })).items,
    enabled: !!warehouse,
  });
  const create = useAction(
    async (v: { supplier: string; lines: { part_number: string; quantity: number; unit_cost_yuan: string }[] }, key: string) =>
      unwrap(
        await api.POST("/api/v1/warehouses/{warehouse_id}/purchase-orders", {
          params: { path: { warehouse_id: warehouse } }, headers: { "Idempotency-Key": key },
          body: {
            supplier: v.supplier.trim(),
            lines: v.lines.map((l) => ({ part_number: l.part_number.trim(), quantity: l.quantity, unit_cost_fen: yuanToFen(l.unit_cost_yuan) ?? 0 })),
          },
        }),
      ),
    {
      form,
      refresh: [["purchase-orders"]],
      onDone: (created) => setParams(new URLSearchParams({ ...Object.fromEntries(params), order: created.id })),
    },
  );
  const items = suggestions.data ?? [];
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      <Space wrap>
        <Typography.Title level={3} style={{ margin: 0 }}>{t("purchase.title")}</Typography.Title>
        <WarehousePicker />
      </Space>
      <PurchaseOrderList warehouse={warehouse} />
      {orderId && <PurchaseOrderCard key={orderId} id={orderId} />}
      <Card title={t("purchase.suggestions")}>
        {suggestions.error && <Alert type="error" title={(suggestions.error as Error).message} />}
        <Table
          rowKey="part_number"
          size="small"
          pagination={false}
          loading={suggestions.isFetching}
          dataSource={items}
          columns={[
            { title: t("field.partId"), dataIndex: "part_number" },
            { title: t("stock.available"), dataIndex: "available" },
            { title: t("purchase.inTransit"), dataIndex: "in_transit" },
            { title: t("purchase.onOrder"), dataIndex: "on_order" },
            { title: t("purchase.reorderPoint"), dataIndex: "reorder_point" },
            { title: t("purchase.suggested"), dataIndex: "quantity" },
          ]}
        />
      </Card>
      <Card title={t("purchase.create")}>
        <Form form={form} name="purchase" layout="vertical" key={items.length}
          initialValues={{ lines: items.length ? items.map((s) => ({ part_number: s.part_number, quantity: s.quantity })) : [{ quantity: 1 }] }}
          onFinish={(v) => create.mutate(v)}>
          <Form.Item name="supplier" label={t("purchase.supplier")} rules={[{ required: true, whitespace: true, message: t("common.required") }, { max: 100 }]}>
            <Input style={{ maxWidth: 320 }} />
          </Form.Item>
          <Form.List name="lines">
            {(fields, { add, remove }) => (
              <>
                {fields.map((field) => (
                  <Space key={field.key} align="baseline">
                    <Form.Item name={[field.name, "part_number"]} rules={[{ required: true, whitespace: true, message: t("common.required") }]}>
                      <Input placeholder={t("field.partId")} aria-label={t("field.partId")} />
                    </Form.Item>
                    <Form.Item name={[field.name, "quantity"]} rules={[{ required: true, message: t("common.required") }]}>
                      <InputNumber min={1} max={100000} aria-label={t("field.quantity")} />
                    </Form.Item>
                    <Form.Item name={[field.name, "unit_cost_yuan"]} rules={[{ required: true, message: t("common.required") }, { pattern: /^\d+(\.\d{1,2})?$/, message: t("stock.yuanFormat") }]}>
                      <Input placeholder={t("stock.unitCostYuan")} aria-label={t("stock.unitCostYuan")} inputMode="decimal" />
                    </Form.Item>
                    <Button onClick={() => remove(field.name)}>{t("common.remove")}</Button>
                  </Space>
                ))}
                <Form.Item>
                  <Button onClick={() => add({ quantity: 1 })}>{t("field.addPart")}</Button>
                </Form.Item>
              </>
            )}
          </Form.List>
          <Button type="primary" htmlType="submit" loading={create.isPending}>{t("purchase.create")}</Button>
        </Form>
      </Card>
    </Space>
  );
}
