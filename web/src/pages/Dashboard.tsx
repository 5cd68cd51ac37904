import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Alert, Breadcrumb, Card, Col, Input, Row, Space, Statistic, Table, Typography } from "antd";
import { Link, useSearchParams } from "react-router-dom";
import { api, unwrap } from "../api/client";
import type { components } from "../api/schema";
import Pager from "../components/Pager";
import StatusTag from "../components/StatusTag";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/zh-CN";
import { fenToYuan } from "../lib/digits";
import { DRILL_FIGURES, figureHref, levelOf, trail, unitHref, unitsBelow } from "../lib/drill";
import { apiQuery, pageQuery } from "../lib/paging";
import { shanghaiTime } from "../lib/time";
import { useOrgUnits } from "../lib/useWarehouses";
import type { paths } from "../api/schema";

type Figure = NonNullable<paths["/api/v1/reports/kpis/orders"]["get"]["parameters"]["query"]>["figure"];

type Figures = components["schemas"]["Figures"];

const rate = (value: number | null | undefined) => (value === null || value === undefined ? "—" : `${Math.round(value * 1000) / 10}%`);

const hours = (value: number | null | undefined) => (value === null || value === undefined ? "—" : (Math.round(value * 10) / 10).toFixed(1));

function usePlace() {
  const [params, setParams] = useSearchParams();
  const place = { branch_id: params.get("branch_id"), store_id: params.get("store_id") };
  const period = { date_from: params.get("date_from"), date_to: params.get("date_to") };
  return { params, setParams, place, period };
}

function Trail() {
  const { t } = useI18n();
  const { place, period } = usePlace();
  return (
    <Breadcrumb
      items={trail(place, period).map((step) => ({
        key: step.href,
        title: <Link to={step.href}>{step.id ?? t("dashboard.hq")}</Link>,
      }))}
    />
  );
}

function Period() {
  const { t } = useI18n();
  const { params, setParams, period } = usePlace();
  const set = (name: string, value: string) =>
    /^(\d{4}-\d{2}-\d{2})?$/.test(value) && setParams(pageQuery(params, { [name]: value }));
  return (
    <Space>
      <Input type="date" aria-label={t("dashboard.from")} value={period.date_from ?? ""} onChange={(e) => set("date_from", e.target.value)} />
      <Input type="date" aria-label={t("dashboard.to")} value={period.date_to ?? ""} onChange={(e) => set("date_to", e.target.value)} />
    </Space>
  );
}

/** 经营看板: the unit's figures over the period, the units below it to drill into, and each
 * figure a link to the orders behind it. */
export default function Dashboard() {
  const { t } = useI18n();
  const { place, period } = usePlace();
  const units = useOrgUnits();
  const query = { branch_id: place.branch_id ?? undefined, store_id: place.store_id ?? undefined, date_from: period.date_from ?? undefined, date_to: period.date_to ?? undefined };
  const kpis = useQuery({
    queryKey: ["kpis", query],
    queryFn: async () => unwrap(await api.GET("/api/v1/reports/kpis", { params: { query } })),
    placeholderData: keepPreviousData,
  });
  const k = kpis.data;
  const figures: Figures | undefined = k?.figures;
  const below = unitsBelow(units.data ?? [], place);
  const byUnit = new Map((k?.by_unit ?? []).map((u) => [u.store_id ?? u.branch_id, u.figures]));
  const level = levelOf(place);
  const figureLink = (figure: string, value: number | undefined) =>
    level === "hq" ? value ?? 0 : <Link to={figureHref(figure, place, period)}>{value ?? 0}</Link>;
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      <Space wrap align="center">
        <Typography.Title level={3} style={{ margin: 0 }}>{t("dashboard.title")}</Typography.Title>
        <Period />
      </Space>
      <Trail />
      {kpis.error && <Alert type="error" title={(kpis.error as Error).message} />}
      {k && (
        <Typography.Text type="secondary">
          {k.date_from} — {k.date_to}
        </Typography.Text>
      )}
      <Row gutter={[16, 16]}>
        {DRILL_FIGURES.map((figure) => (
          <Col key={figure} xs={12} md={8} lg={4}>
            <Card size="small">
              <Statistic title={t(`figure.${figure}` as MessageKey)} valueRender={() => figureLink(figure, figures?.[figure as keyof Figures] as number | undefined)} />
            </Card>
          </Col>
        ))}
        <Col xs={12} md={8} lg={4}>
          <Card size="small"><Statistic title={t("figure.on_time_rate")} value={rate(figures?.on_time_rate)} /></Card>
        </Col>
        <Col xs={12} md={8} lg={4}>
          <Card size="small"><Statistic title={t("figure.turnaround")} value={hours(figures?.turnaround_median_hours)} suffix="h" /></Card>
        </Col>
        <Col xs={12} md={8} lg={4}>
          <Card size="small"><Statistic title={t("figure.first_time_fix_rate")} value={rate(figures?.first_time_fix_rate)} /></Card>
        </Col>
        <Col xs={12} md={8} lg={4}>
          <Card size="small"><Statistic title={t("figure.revenue")} value={fenToYuan(figures?.revenue_fen ?? 0)} prefix="¥" /></Card>
        </Col>
      </Row>
      {below.length > 0 && (
        <Card title={t(level === "hq" ? "dashboard.branches" : "dashboard.stores")}>
          <Table
            rowKey="id"
            size="small"
            pagination={false}
            dataSource={below}
            columns={[
              { title: t("dashboard.unit"), key: "unit", render: (_, u) => <Link to={unitHref(u, period)}>{u.id} {u.name}</Link> },
              { title: t("figure.received"), key: "received", render: (_, u) => byUnit.get(u.id)?.received ?? 0 },
              { title: t("figure.closed"), key: "closed", render: (_, u) => byUnit.get(u.id)?.closed ?? 0 },
              { title: t("figure.on_time_rate"), key: "on_time", render: (_, u) => rate(byUnit.get(u.id)?.on_time_rate) },
              { title: t("figure.revenue"), key: "revenue", render: (_, u) => `¥${fenToYuan(byUnit.get(u.id)?.revenue_fen ?? 0)}` },
            ]}
          />
        </Card>
      )}
    </Space>
  );
}

/** The orders behind one figure, a page at a time, each a link to the order. */
export function FigureOrders() {
  const { t } = useI18n();
  const { params } = usePlace();
  const query = apiQuery(params, ["branch_id", "store_id", "date_from", "date_to", "cursor"]);
  const figure = (params.get("figure") ?? "received") as Figure;
  const orders = useQuery({
    queryKey: ["figure-orders", figure, query],
    queryFn: async () => unwrap(await api.GET("/api/v1/reports/kpis/orders", { params: { query: { ...query, figure, limit: 20 } } })),
    placeholderData: keepPreviousData,
  });
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      <Typography.Title level={3}>{t("dashboard.ordersOf", { figure: t(`figure.${figure}` as MessageKey) })}</Typography.Title>
      <Trail />
      {orders.error && <Alert type="error" title={(orders.error as Error).message} />}
      <Table
        rowKey="order_id"
        size="small"
        pagination={false}
        loading={orders.isFetching}
        dataSource={orders.data?.items ?? []}
        columns={[
          { title: t("board.number"), dataIndex: "number", render: (n: string, o) => <Link to={`/orders/${o.order_id}`}>{n}</Link> },
          { title: t("board.status"), dataIndex: "status", render: (s: string) => <StatusTag status={s} /> },
          { title: t("board.store"), dataIndex: "store_id" },
          { title: t("intake.brand"), dataIndex: "brand" },
          { title: t("board.received"), dataIndex: "received_at", render: (at: string | null) => shanghaiTime(at) },
          { title: t("board.promised"), dataIndex: "promised_date" },
        ]}
      />
      <Pager next={orders.data?.next_cursor} />
    </Space>
  );
}
