import { useQuery } from "@tanstack/react-query";
import { Alert, Card, Col, Descriptions, Empty, Row, Space, Spin, Tabs, Tag, Timeline, Typography } from "antd";
import { Link, useParams } from "react-router-dom";
import { api, ApiProblem, type Order, unwrap } from "../api/client";
import StatusTag, { useStatusLabel } from "../components/StatusTag";
import { STEP_FORMS, STEP_LABELS } from "../components/StepForms";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/zh-CN";
import { fenToYuan } from "../lib/digits";
import { stepsFor } from "../lib/steps";
import { shanghaiTime } from "../lib/time";
import NotFound from "./NotFound";
import { useMe } from "../session";

/** One order: what it is, its timeline, and the steps the user's role may take on it now. */
export default function OrderDetail() {
  const { orderId = "" } = useParams();
  const { t } = useI18n();
  const statusLabel = useStatusLabel();
  const me = useMe();
  const order = useQuery({
    queryKey: ["order", orderId],
    queryFn: async (): Promise<Order> =>
      unwrap(await api.GET("/api/v1/repair-orders/{order_id}", { params: { path: { order_id: orderId } } })),
  });
  if (order.error instanceof ApiProblem && order.error.status === 404) return <NotFound />;
  if (order.error) return <Alert type="error" title={(order.error as Error).message} />;
  if (!order.data || !me.data) return <Spin />;
  const o = order.data;
  const steps = stepsFor(me.data.role, me.data.store_id, o);
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      <Space align="center" wrap>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t("detail.title", { number: o.number })}
        </Typography.Title>
        <StatusTag status={o.status} />
        <Tag>{t(`service.${o.service_type}` as MessageKey)}</Tag>
        <Link to={`/orders/${o.id}/slip`}>{t("slip.print")}</Link>
      </Space>
      <Row gutter={[16, 16]}>
        <Col xs={24} lg={14}>
          <Card>
            <Descriptions column={{ xs: 1, md: 2 }} size="small">
              <Descriptions.Item label={t("board.customer")}>{o.customer.name} {o.customer.phone}</Descriptions.Item>
              <Descriptions.Item label={t("board.store")}>{o.store_id}</Descriptions.Item>
              <Descriptions.Item label={t("detail.device")}>
                {o.device.brand} {o.device.model} · {o.current_imei}
              </Descriptions.Item>
              <Descriptions.Item label={t("board.received")}>{shanghaiTime(o.received_at)}</Descriptions.Item>
              <Descriptions.Item label={t("detail.fault")} span={2}>{o.fault.description}</Descriptions.Item>
              <Descriptions.Item label={t("detail.warranty")} span={2}>
                {t(`warranty.${o.warranty.status}` as MessageKey)}
                {o.warranty.reason ? ` — ${o.warranty.reason}` : ""}
              </Descriptions.Item>
              <Descriptions.Item label={t("board.promised")}>{o.promised_date ?? t("common.none")}</Descriptions.Item>
              {o.quote && (
                <Descriptions.Item label={t("detail.quote")}>¥{fenToYuan(o.quote.total_fen)}</Descriptions.Item>
              )}
              {o.lines.length > 0 && (
                <Descriptions.Item label={t("detail.lines")} span={2}>
                  {o.lines.map((line) => (
                    <Tag key={line.line_id} color={line.short ? "orange" : undefined}>
                      {line.part_id} ×{line.quantity}
                    </Tag>
                  ))}
                </Descriptions.Item>
              )}
            </Descriptions>
          </Card>
        </Col>
        <Col xs={24} lg={10}>
          <Card title={t("detail.timeline")}>
            <Timeline
              items={o.timeline.map((entry, i) => ({
                key: i,
                content: (
                  <>
                    <strong>{statusLabel(entry.status)}</strong> · {shanghaiTime(entry.at)}
                    {entry.store_id ? ` · ${entry.store_id}` : ""}
                    {entry.note ? <div>{entry.note}</div> : null}
                  </>
                ),
              }))}
            />
          </Card>
        </Col>
      </Row>
      <Card title={t("detail.steps")}>
        {steps.length === 0 ? (
          <Empty description={t("detail.noSteps")} />
        ) : (
          <Tabs
            // A new version is a new set of forms: nothing typed for the old state lingers.
            key={o.version}
            items={steps.map((rule) => {
              const StepForm = STEP_FORMS[rule.name];
              return { key: rule.name, label: t(STEP_LABELS[rule.name]), children: <StepForm order={o} /> };
            })}
          />
        )}
      </Card>
    </Space>
  );
}
