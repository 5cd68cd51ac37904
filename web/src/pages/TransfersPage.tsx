import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Alert, AutoComplete, Button, Card, Form, Input, InputNumber, Select, Space, Table, Tag, Typography } from "antd";
import { useEffect } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { api, unwrap } from "../api/client";
import type { components, operations } from "../api/schema";
import Pager from "../components/Pager";
import { useAction } from "../components/useAction";
import WarehousePicker, { useWarehouseParam } from "../components/WarehousePicker";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/zh-CN";
import { linesSummary, transferEnd } from "../lib/documents";
import { pageQuery } from "../lib/paging";
import { shanghaiTime } from "../lib/time";
import { ownWarehouses } from "../lib/transfer";
import { useWarehouses } from "../lib/useWarehouses";
import { useMe } from "../session";

type Transfer = components["schemas"]["Transfer"];
type TransferStatus = NonNullable<NonNullable<operations["list_transfers_api_v1_transfers_get"]["parameters"]["query"]>["status"]>;

interface TransferValues {
  from_warehouse_id: string;
  to_warehouse_id: string;
  lines: { part_number: string; quantity: number }[];
  note?: string;
}

const PAGE_SIZE = 20;
const STATUSES = ["requested", "approved", "shipped", "received", "cancelled"] as const;

/** The warehouse's transfers, sent or received, newest first; the page is in the address. */
function TransferList() {
  const { t } = useI18n();
  const [params, setParams] = useSearchParams();
  const warehouse = useWarehouseParam();
  const status = params.get("status") ?? "";
  const cursor = params.get("cursor") ?? "";
  const transfers = useQuery({
    queryKey: ["transfers", warehouse, status, cursor, PAGE_SIZE],
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/transfers", {
          params: { query: { warehouse_id: warehouse, status: (status || undefined) as TransferStatus | undefined, limit: PAGE_SIZE, cursor: cursor || undefined } },
        }),
      ),
    enabled: !!warehouse,
    placeholderData: keepPreviousData,
  });
  return (
    <Card title={t("transfer.list")}>
      <Space wrap style={{ marginBottom: 12 }}>
        <WarehousePicker />
        <Select
          aria-label={t("purchase.statusLabel")}
          style={{ minWidth: 140 }}
          value={status}
          options={[{ value: "", label: t("transfer.all") }, ...STATUSES.map((s) => ({ value: s, label: t(`transfer.status.${s}`) }))]}
          onChange={(next: string) => setParams(pageQuery(params, { status: next }))}
        />
      </Space>
      {transfers.error && <Alert type="error" title={(transfers.error as Error).message} />}
      <Table<Transfer>
        rowKey="id"
        size="small"
        pagination={false}
        loading={transfers.isFetching}
        locale={{ emptyText: t("transfer.none") }}
        dataSource={transfers.data?.items ?? []}
        columns={[
          { title: t("transfer.id"), dataIndex: "id", render: (id: string) => <Link to={`/transfers/${encodeURIComponent(id)}`}>{id}</Link> },
          {
            title: t("transfer.direction"),
            key: "direction",
            render: (_, x) => t(`transfer.direction.${transferEnd(x, warehouse).direction}`),
          },
          { title: t("transfer.other"), key: "other", render: (_, x) => transferEnd(x, warehouse).other },
          { title: t("transfer.parts"), key: "parts", render: (_, x) => linesSummary(x.lines) },
          { title: t("purchase.statusLabel"), dataIndex: "status", render: (s: string) => <Tag>{t(`transfer.status.${s}` as MessageKey)}</Tag> },
          { title: t("transfer.requestedAt"), dataIndex: "requested_at", render: (at: string) => shanghaiTime(at) },
        ]}
      />
      <div style={{ marginTop: 12 }}>
        <Pager next={transfers.data?.next_cursor} />
      </div>
    </Card>
  );
}

/** 调拨: the warehouse's transfers, and a request for one between warehouses. */
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
    { form, onDone: (transfer) => navigate(`/transfers/${transfer.id}`), refresh: [["transfers"]] },
  );
  const ownFirst = own[0]?.id;
  // The user's own warehouse receives, unless they say otherwise.
  useEffect(() => {
    if (ownFirst && !form.getFieldValue("to_warehouse_id")) form.setFieldsValue({ to_warehouse_id: ownFirst });
  }, [ownFirst, form]);
  // The warehouses in the user's scope, less the other end; a store keeper sees only their
  // own, so another store's is typed (WH-SH-001).
  const from = Form.useWatch("from_warehouse_id", form);
  const to = Form.useWatch("to_warehouse_id", form);
  const options = (other: string | undefined) =>
    all.filter((w) => w.id !== other?.trim()).map((w) => ({ value: w.id, label: `${w.id} ${w.name}` }));
  const matches = (typed: string, option?: { label: string }) => !!option?.label.toUpperCase().includes(typed.trim().toUpperCase());
  const warehouseRules = [
    { required: true, whitespace: true, message: t("common.required") },
    { max: 50 },
  ];
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      <Typography.Title level={3}>{t("transfer.title")}</Typography.Title>
      <TransferList />
      <Card title={t("transfer.request")}>
        {warehouses.error && <Alert type="error" title={(warehouses.error as Error).message} />}
        <Form form={form} layout="vertical" name="transfer" initialValues={{ lines: [{ quantity: 1 }] }} onFinish={(v) => request.mutate(v)}>
          <Space wrap>
            <Form.Item name="from_warehouse_id" label={t("transfer.from")} rules={warehouseRules}>
              <AutoComplete style={{ minWidth: 260 }} options={options(to)} filterOption={matches} />
            </Form.Item>
            <Form.Item name="to_warehouse_id" label={t("transfer.to")} rules={warehouseRules}>
              <AutoComplete style={{ minWidth: 260 }} options={options(from)} filterOption={matches} />
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
