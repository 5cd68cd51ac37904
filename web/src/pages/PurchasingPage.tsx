import { useQuery } from "@tanstack/react-query";
import { Alert, Button, Card, Form, Input, InputNumber, Space, Table, Typography } from "antd";
import { useState } from "react";
import { api, unwrap } from "../api/client";
import type { components } from "../api/schema";
import { useAction } from "../components/useAction";
import WarehousePicker, { useWarehouseParam } from "../components/WarehousePicker";
import { useI18n } from "../i18n";
import { fenToYuan, yuanToFen } from "../lib/digits";

type PurchaseOrder = components["schemas"]["PurchaseOrder"];

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
    { form, refresh: [["stock"]], onDone: onReceived },
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

/** 采购: what to reorder (from consumption and what is on its way), purchase orders and their receipt. */
export default function PurchasingPage() {
  const { t } = useI18n();
  const warehouse = useWarehouseParam();
  const [form] = Form.useForm();
  const [order, setOrder] = useState<PurchaseOrder | null>(null);
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
    { form, onDone: setOrder },
  );
  const items = suggestions.data ?? [];
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      <Space wrap>
        <Typography.Title level={3} style={{ margin: 0 }}>{t("purchase.title")}</Typography.Title>
        <WarehousePicker />
      </Space>
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
      {order && (
        <Card title={t("purchase.order", { id: order.id })} data-testid="purchase-order">
          <Typography.Paragraph>
            {order.supplier} · {t("purchase.statusLabel")}: {order.status} ·{" "}
            {order.lines.map((l) => `${l.part_number} ${l.received}/${l.quantity} @¥${fenToYuan(l.unit_cost_fen)}`).join("; ")}
          </Typography.Paragraph>
          {order.status === "open" && <Receive order={order} onReceived={setOrder} />}
        </Card>
      )}
    </Space>
  );
}
