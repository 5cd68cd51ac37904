import { Alert, AutoComplete, Button, Card, Form, Input, InputNumber, Space, Typography } from "antd";
import { useEffect } from "react";
import { useNavigate } from "react-router-dom";
import { api, unwrap } from "../api/client";
import { useAction } from "../components/useAction";
import { useI18n } from "../i18n";
import { ownWarehouses } from "../lib/transfer";
import { useWarehouses } from "../lib/useWarehouses";
import { useMe } from "../session";

interface TransferValues {
  from_warehouse_id: string;
  to_warehouse_id: string;
  lines: { part_number: string; quantity: number }[];
  note?: string;
}

/** A document opened by its number (the API has no list of them yet). */
export function OpenById({ path, label }: { path: string; label: string }) {
  const { t } = useI18n();
  const navigate = useNavigate();
  return (
    <Form layout="inline" name={`open-${path.replace(/\W/g, "")}`} onFinish={(v: { id: string }) => navigate(`${path}/${encodeURIComponent(v.id.trim())}`)}>
      <Form.Item name="id" label={label} rules={[{ required: true, whitespace: true, message: t("common.required") }]}>
        <Input style={{ width: 320 }} />
      </Form.Item>
      <Button htmlType="submit">{t("common.open")}</Button>
    </Form>
  );
}

/** 调拨: request one between warehouses, or open one by its number. */
export default function TransfersPage() {
  const { t } = useI18n();
  const me = useMe();
  const navigate = useNavigate();
  const warehouses = useWarehouses();
  const [form] = Form.useForm<TransferValues>();
  const all = warehouses.data ?? [];
  const own = me.data ? ownWarehouses(me.data, all) : [];
  const request = useAction(
    async (v: TransferValues, key: string) =>
      unwrap(
        await api.POST("/api/v1/transfers", {
          headers: { "Idempotency-Key": key },
          body: {
            from_warehouse_id: v.from_warehouse_id.trim(),
            to_warehouse_id: v.to_warehouse_id.trim(),
            lines: v.lines.map((l) => ({ part_number: l.part_number.trim(), quantity: l.quantity, serials: [] })),
            note: v.note?.trim() || null,
          },
        }),
      ),
    { form, onDone: (transfer) => navigate(`/transfers/${transfer.id}`) },
  );
  const ownFirst = own[0]?.id;
  // The user's own warehouse receives, unless they say otherwise.
  useEffect(() => {
    if (ownFirst && !form.getFieldValue("to_warehouse_id")) form.setFieldsValue({ to_warehouse_id: ownFirst });
  }, [ownFirst, form]);
  // A store keeper sees only their own warehouse; the other end is typed (WH-SH-001).
  const options = all.map((w) => ({ value: w.id, label: `${w.id} ${w.name}` }));
  const warehouseRules = [
    { required: true, whitespace: true, message: t("common.required") },
    { max: 50 },
  ];
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      <Typography.Title level={3}>{t("transfer.title")}</Typography.Title>
      <Card title={t("transfer.open")}>
        <OpenById path="/transfers" label={t("transfer.id")} />
      </Card>
      <Card title={t("transfer.request")}>
        {warehouses.error && <Alert type="error" title={(warehouses.error as Error).message} />}
        <Form form={form} layout="vertical" name="transfer" initialValues={{ lines: [{ quantity: 1 }] }} onFinish={(v) => request.mutate(v)}>
          <Space wrap>
            <Form.Item name="from_warehouse_id" label={t("transfer.from")} rules={warehouseRules}>
              <AutoComplete style={{ minWidth: 260 }} options={options} />
            </Form.Item>
            <Form.Item name="to_warehouse_id" label={t("transfer.to")} rules={warehouseRules}>
              <AutoComplete style={{ minWidth: 260 }} options={options} />
            </Form.Item>
          </Space>
          <Form.List name="lines">
            {(fields, { add, remove }) => (
              <>
                {fields.map((field) => (
                  <Space key={field.key} align="baseline">
                    <Form.Item name={[field.name, "part_number"]} rules={[{ required: true, whitespace: true, message: t("common.required") }, { max: 50 }]}>
                      <Input placeholder={t("field.partId")} aria-label={t("field.partId")} />
                    </Form.Item>
                    <Form.Item name={[field.name, "quantity"]} rules={[{ required: true, message: t("common.required") }]}>
                      <InputNumber min={1} max={10000} aria-label={t("field.quantity")} />
                    </Form.Item>
                    {fields.length > 1 && <Button onClick={() => remove(field.name)}>{t("common.remove")}</Button>}
                  </Space>
                ))}
                <Form.Item>
                  <Button onClick={() => add({ quantity: 1 })}>{t("field.addPart")}</Button>
                </Form.Item>
              </>
            )}
          </Form.List>
          <Form.Item name="note" label={t("field.note")} rules={[{ max: 500 }]}>
            <Input.TextArea rows={2} />
          </Form.Item>
          <Button type="primary" htmlType="submit" loading={request.isPending}>{t("transfer.request")}</Button>
        </Form>
      </Card>
    </Space>
  );
}
