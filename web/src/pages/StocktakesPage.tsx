import { keepPreviousData, useQuery, useQueryClient } from "@tanstack/react-query";
import { Alert, Button, Card, Descriptions, Form, InputNumber, Select, Space, Spin, Table, Tag, Typography } from "antd";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import { api, ApiProblem, unwrap } from "../api/client";
import type { components, operations } from "../api/schema";
import Pager from "../components/Pager";
import { useAction } from "../components/useAction";
import WarehousePicker, { useWarehouseParam } from "../components/WarehousePicker";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/zh-CN";
import { fenToYuan } from "../lib/digits";
import { pageQuery } from "../lib/paging";
import { mayApprove } from "../lib/roles";
import { shanghaiTime } from "../lib/time";
import { useMe } from "../session";
import NotFound from "./NotFound";

type Stocktake = components["schemas"]["Stocktake"];
type StocktakeStatus = NonNullable<
  NonNullable<operations["list_stocktakes_api_v1_warehouses__warehouse_id__stocktakes_get"]["parameters"]["query"]>["status"]
>;
const STATUSES: readonly StocktakeStatus[] = ["pending_approval", "posted", "rejected"];
const PAGE_SIZE = 20;

/** A warehouse's stocktakes, newest counted first: the columns the keeper's list and the
 * manager's queue share. */
export function useStocktakeColumns() {
  const { t } = useI18n();
  return [
    { title: t("stocktake.id"), dataIndex: "id", render: (id: string) => <Link to={`/stocktakes/${encodeURIComponent(id)}`}>{id}</Link> },
    { title: t("stock.warehouse"), dataIndex: "warehouse_id" },
    { title: t("purchase.statusLabel"), dataIndex: "status", render: (s: string) => <Tag>{t(`stocktake.status.${s}` as MessageKey)}</Tag> },
    { title: t("stocktake.difference"), dataIndex: "difference_value_fen", render: (fen: number) => `¥${fenToYuan(fen)}` },
    { title: t("stocktake.countedBy"), key: "counted", render: (_: unknown, s: Stocktake) => `${s.counted_by} · ${shanghaiTime(s.counted_at)}` },
  ];
}

function StocktakeList({ warehouse }: { warehouse: string }) {
  const { t } = useI18n();
  const [params, setParams] = useSearchParams();
  const status = (params.get("status") ?? "") as StocktakeStatus | "";
  const cursor = params.get("cursor") ?? "";
  const columns = useStocktakeColumns();
  const stocktakes = useQuery({
    queryKey: ["stocktakes", warehouse, status, cursor, PAGE_SIZE],
    queryFn: async () =>
      unwrap(
        await api.GET("/api/v1/warehouses/{warehouse_id}/stocktakes", {
          params: { path: { warehouse_id: warehouse }, query: { status: status || undefined, limit: PAGE_SIZE, cursor: cursor || undefined } },
        }),
      ),
    enabled: !!warehouse,
    placeholderData: keepPreviousData,
  });
  return (
    <Card title={t("stocktake.list")}>
      <Select
        aria-label={t("purchase.statusLabel")}
        style={{ minWidth: 140, marginBottom: 12 }}
        value={status}
        options={[{ value: "", label: t("stocktake.all") }, ...STATUSES.map((s) => ({ value: s, label: t(`stocktake.status.${s}`) }))]}
        onChange={(next: string) => setParams(pageQuery(params, { status: next }))}
      />
      {stocktakes.error && <Alert type="error" title={(stocktakes.error as Error).message} />}
      <Table<Stocktake>
        rowKey="id"
        size="small"
        pagination={false}
        loading={stocktakes.isFetching}
        locale={{ emptyText: t("stocktake.none") }}
        dataSource={stocktakes.data?.items ?? []}
        columns={columns}
      />
      <div style={{ marginTop: 12 }}>
        <Pager next={stocktakes.data?.next_cursor} />
      </div>
    </Card>
  );
}

/** 盘点: count a warehouse's stock against the book; the differences wait for the branch. */
export default function StocktakesPage() {
  const { t } = useI18n();
  const navigate = useNavigate();
  const warehouse = useWarehouseParam();
  const [form] = Form.useForm();
  const stock = useQuery({
    queryKey: ["stock", warehouse],
    queryFn: async () => unwrap(await api.GET("/api/v1/warehouses/{warehouse_id}/stock", { params: { path: { warehouse_id: warehouse } } })),
    enabled: !!warehouse,
  });
  const levels = stock.data?.levels ?? [];
  const record = useAction(
    async (v: { counted: Record<string, number | null> }, key: string) =>
      unwrap(
        await api.POST("/api/v1/warehouses/{warehouse_id}/stocktakes", {
          params: { path: { warehouse_id: warehouse } }, headers: { "Idempotency-Key": key },
          body: {
            lines: levels
              .filter((l) => v.counted[l.part_number] !== undefined && v.counted[l.part_number] !== null)
              .map((l) => ({ part_number: l.part_number, counted: v.counted[l.part_number]!, serials: [] })),
          },
        }),
      ),
    { form, onDone: (taken) => navigate(`/stocktakes/${taken.id}`), refresh: [["stocktakes"]] },
  );
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      <Space wrap>
        <Typography.Title level={3} style={{ margin: 0 }}>{t("stocktake.title")}</Typography.Title>
        <WarehousePicker />
      </Space>
      <StocktakeList warehouse={warehouse} />
      <Card title={t("stocktake.count")}>
        {stock.error && <Alert type="error" title={(stock.error as Error).message} />}
        <Form form={form} name="stocktake" key={warehouse + levels.length}
          initialValues={{ counted: Object.fromEntries(levels.map((l) => [l.part_number, l.on_hand])) }}
          onFinish={(v) => record.mutate(v)}>
          <Table
            rowKey="part_number"
            size="small"
            pagination={false}
            loading={stock.isFetching}
            dataSource={levels}
            columns={[
              { title: t("field.partId"), dataIndex: "part_number" },
              { title: t("stock.description"), dataIndex: "description" },
              { title: t("stocktake.book"), dataIndex: "on_hand" },
              {
                title: t("stocktake.counted"),
                key: "counted",
                render: (_, l) => (
                  <Form.Item name={["counted", l.part_number]} noStyle>
                    <InputNumber min={0} max={1000000} aria-label={`${t("stocktake.counted")} ${l.part_number}`} />
                  </Form.Item>
                ),
              },
            ]}
          />
          <Button type="primary" htmlType="submit" loading={record.isPending} style={{ marginTop: 12 }} disabled={levels.length === 0}>
            {t("stocktake.record")}
          </Button>
        </Form>
      </Card>
    </Space>
  );
}

export function StocktakeDetail() {
  const { stocktakeId = "" } = useParams();
  const { t } = useI18n();
  const me = useMe();
  const queries = useQueryClient();
  const taken = useQuery({
    queryKey: ["stocktake", stocktakeId],
    queryFn: async () => unwrap(await api.GET("/api/v1/stocktakes/{stocktake_id}", { params: { path: { stocktake_id: stocktakeId } } })),
  });
  const decide = useAction(
    async (approve: boolean, key: string) =>
      unwrap(
        await api.POST(approve ? "/api/v1/stocktakes/{stocktake_id}/approve" : "/api/v1/stocktakes/{stocktake_id}/reject", {
          params: { path: { stocktake_id: stocktakeId } }, headers: { "Idempotency-Key": key },
        }),
      ),
    { onDone: (updated) => queries.setQueryData(["stocktake", stocktakeId], updated), refresh: [["stock"], ["stocktakes"]] },
  );
  if (taken.error instanceof ApiProblem && taken.error.status === 404) return <NotFound />;
  if (taken.error) return <Alert type="error" title={(taken.error as Error).message} />;
  if (!taken.data || !me.data) return <Spin />;
  const s = taken.data;
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      <Space align="center">
        <Typography.Title level={3} style={{ margin: 0 }}>{t("stocktake.heading", { id: s.id })}</Typography.Title>
        <Tag color="blue">{t(`stocktake.status.${s.status}` as MessageKey)}</Tag>
      </Space>
      <Descriptions size="small">
        <Descriptions.Item label={t("stock.warehouse")}>{s.warehouse_id}</Descriptions.Item>
        <Descriptions.Item label={t("stocktake.countedBy")}>{s.counted_by} · {shanghaiTime(s.counted_at)}</Descriptions.Item>
        <Descriptions.Item label={t("stocktake.difference")}>¥{fenToYuan(s.difference_value_fen)}</Descriptions.Item>
      </Descriptions>
      <Table
        rowKey="part_number"
        size="small"
        pagination={false}
        dataSource={s.lines}
        columns={[
          { title: t("field.partId"), dataIndex: "part_number" },
          { title: t("stocktake.book"), dataIndex: "book" },
          { title: t("stocktake.counted"), dataIndex: "counted" },
          { title: t("stocktake.differenceQty"), dataIndex: "difference" },
        ]}
      />
      {s.status === "pending_approval" && mayApprove(me.data) && (
        <Space>
          <Button type="primary" loading={decide.isPending && decide.variables} onClick={() => decide.mutate(true)}>{t("stocktake.approve")}</Button>
          <Button danger loading={decide.isPending && !decide.variables} onClick={() => decide.mutate(false)}>{t("stocktake.reject")}</Button>
        </Space>
      )}
    </Space>
  );
}
