import { keepPreviousData, useQuery, useQueryClient } from "@tanstack/react-query";
import { Alert, Button, Card, Descriptions, Form, Input, InputNumber, Radio, Segmented, Space, Spin, Table, Tag, Timeline, Typography } from "antd";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { api, ApiProblem, unwrap } from "../api/client";
import type { components } from "../api/schema";
import Pager from "../components/Pager";
import { useAction } from "../components/useAction";
import { useI18n } from "../i18n";
import { apiQuery, pageQuery } from "../lib/paging";
import { shanghaiTime } from "../lib/time";
import NotFound from "./NotFound";

type Complaint = components["schemas"]["Complaint"];
type FollowUp = components["schemas"]["FollowUp"];
const PAGE_SIZE = 20;

/** 投诉与回访: complaints and the follow-up calls, each list a page at a time. */
export default function ComplaintsPage() {
  const { t } = useI18n();
  const [params, setParams] = useSearchParams();
  const list = params.get("list") ?? "complaints";
  const query = apiQuery(params, ["state", "cursor"]);
  const complaints = useQuery({
    queryKey: ["complaints", query],
    queryFn: async () => unwrap(await api.GET("/api/v1/complaints", { params: { query: { ...query, limit: PAGE_SIZE } } })),
    placeholderData: keepPreviousData,
    enabled: list === "complaints",
  });
  const followUps = useQuery({
    queryKey: ["follow-ups", query],
    queryFn: async () => unwrap(await api.GET("/api/v1/follow-ups", { params: { query: { ...query, limit: PAGE_SIZE } } })),
    placeholderData: keepPreviousData,
    enabled: list === "follow-ups",
  });
  const current = list === "complaints" ? complaints : followUps;
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      <Typography.Title level={3}>{t("complaints.title")}</Typography.Title>
      <Segmented
        value={list}
        onChange={(value) => setParams(pageQuery(params, { list: String(value), state: "" }))}
        options={[
          { value: "complaints", label: t("complaints.complaints") },
          { value: "follow-ups", label: t("complaints.followUps") },
        ]}
      />
      {current.error && <Alert type="error" title={(current.error as Error).message} />}
      {list === "complaints" ? (
        <Table<Complaint>
          rowKey="id"
          size="small"
          pagination={false}
          loading={complaints.isFetching}
          dataSource={complaints.data?.items ?? []}
          columns={[
            { title: t("complaints.id"), dataIndex: "id", render: (id: string) => <Link to={`/complaints/${id}`}>{id.slice(0, 8)}</Link> },
            { title: t("board.store"), dataIndex: "store_id" },
            { title: t("board.customer"), dataIndex: "customer_name" },
            { title: t("complaints.score"), dataIndex: "score" },
            { title: t("complaints.state"), dataIndex: "state", render: (s: string, c) => <>{s} {c.overdue && <Tag color="red">{t("board.overdue")}</Tag>}</> },
            { title: t("complaints.dueAt"), dataIndex: "due_at", render: (at: string | null) => shanghaiTime(at) },
          ]}
        />
      ) : (
        <Table<FollowUp>
          rowKey="id"
          size="small"
          pagination={false}
          loading={followUps.isFetching}
          dataSource={followUps.data?.items ?? []}
          columns={[
            { title: t("board.number"), dataIndex: "order_number", render: (n: string, f) => <Link to={`/follow-ups/${f.id}`}>{n}</Link> },
            { title: t("board.store"), dataIndex: "store_id" },
            { title: t("board.customer"), dataIndex: "customer_name" },
            { title: t("complaints.state"), dataIndex: "state", render: (s: string, f) => <>{s} {f.overdue && <Tag color="red">{t("board.overdue")}</Tag>}</> },
            { title: t("complaints.attempts"), dataIndex: "attempts" },
            { title: t("complaints.dueAt"), dataIndex: "due_at", render: (at: string | null) => shanghaiTime(at) },
          ]}
        />
      )}
      <Pager next={current.data?.next_cursor} />
    </Space>
  );
}

export function ComplaintDetail() {
  const { complaintId = "" } = useParams();
  const { t } = useI18n();
  const queries = useQueryClient();
  const [noteForm] = Form.useForm();
  const [closeForm] = Form.useForm();
  const complaint = useQuery({
    queryKey: ["complaint", complaintId],
    queryFn: async () => unwrap(await api.GET("/api/v1/complaints/{complaint_id}", { params: { path: { complaint_id: complaintId } } })),
  });
  const done = { refresh: [["complaints"]], onDone: (c: Complaint) => queries.setQueryData(["complaint", complaintId], c) };
  const note = useAction(
    async (v: { note: string }, key: string) =>
      unwrap(await api.POST("/api/v1/complaints/{complaint_id}/notes", { params: { path: { complaint_id: complaintId } }, headers: { "Idempotency-Key": key }, body: { note: v.note.trim(), owner_id: null } })),
    { ...done, form: noteForm },
  );
  const close = useAction(
    async (v: { outcome: string }, key: string) =>
      unwrap(await api.POST("/api/v1/complaints/{complaint_id}/close", { params: { path: { complaint_id: complaintId } }, headers: { "Idempotency-Key": key }, body: { outcome: v.outcome.trim() } })),
    { ...done, form: closeForm },
  );
  if (complaint.error instanceof ApiProblem && complaint.error.status === 404) return <NotFound />;
  if (complaint.error) return <Alert type="error" title={(complaint.error as Error).message} />;
  if (!complaint.data) return <Spin />;
  const c = complaint.data;
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      <Typography.Title level={3}>{t("complaints.heading")}</Typography.Title>
      <Descriptions size="small" column={{ xs: 1, md: 2 }}>
        <Descriptions.Item label={t("board.number")}><Link to={`/orders/${c.order_id}`}>{c.order_id}</Link></Descriptions.Item>
        <Descriptions.Item label={t("board.customer")}>{c.customer_name} {c.customer_phone}</Descriptions.Item>
        <Descriptions.Item label={t("complaints.score")}>{c.score}</Descriptions.Item>
        <Descriptions.Item label={t("complaints.state")}>{c.state}</Descriptions.Item>
        <Descriptions.Item label={t("complaints.dueAt")}>{shanghaiTime(c.due_at)}</Descriptions.Item>
        {c.outcome && <Descriptions.Item label={t("complaints.outcome")}>{c.outcome}</Descriptions.Item>}
      </Descriptions>
      <Timeline items={c.notes.map((n, i) => ({ key: i, content: <>{JSON.stringify(n)}</> }))} />
      {c.state !== "closed" && (
        <Card>
          <Form form={noteForm} name="complaint-note" layout="vertical" onFinish={(v) => note.mutate(v)}>
            <Form.Item name="note" label={t("field.note")} rules={[{ required: true, whitespace: true, message: t("common.required") }, { max: 2000 }]}>
              <Input.TextArea rows={2} />
            </Form.Item>
            <Button htmlType="submit" loading={note.isPending}>{t("complaints.addNote")}</Button>
          </Form>
          <Form form={closeForm} name="complaint-close" layout="vertical" onFinish={(v) => close.mutate(v)} style={{ marginTop: 16 }}>
            <Form.Item name="outcome" label={t("complaints.outcome")} rules={[{ required: true, whitespace: true, message: t("common.required") }, { max: 2000 }]}>
              <Input.TextArea rows={2} />
            </Form.Item>
            <Button type="primary" htmlType="submit" loading={close.isPending}>{t("complaints.close")}</Button>
          </Form>
        </Card>
      )}
    </Space>
  );
}

export function FollowUpDetail() {
  const { followUpId = "" } = useParams();
  const { t } = useI18n();
  const queries = useQueryClient();
  const [form] = Form.useForm();
  const followUp = useQuery({
    queryKey: ["follow-up", followUpId],
    queryFn: async () => unwrap(await api.GET("/api/v1/follow-ups/{follow_up_id}", { params: { path: { follow_up_id: followUpId } } })),
  });
  const done = { refresh: [["follow-ups"]], onDone: (f: FollowUp) => queries.setQueryData(["follow-up", followUpId], f) };
  const take = useAction(
    async (_: null, key: string) =>
      unwrap(await api.POST("/api/v1/follow-ups/{follow_up_id}/take", { params: { path: { follow_up_id: followUpId } }, headers: { "Idempotency-Key": key } })),
    done,
  );
  const attempt = useAction(
    async (v: { reached: boolean; score?: number; comments?: string }, key: string) =>
      unwrap(
        await api.POST("/api/v1/follow-ups/{follow_up_id}/attempts", {
          params: { path: { follow_up_id: followUpId } }, headers: { "Idempotency-Key": key },
          body: { reached: v.reached, score: v.reached ? (v.score ?? null) : null, comments: v.comments?.trim() || null },
        }),
      ),
    { ...done, form },
  );
  const reached = Form.useWatch("reached", form);
  if (followUp.error instanceof ApiProblem && followUp.error.status === 404) return <NotFound />;
  if (followUp.error) return <Alert type="error" title={(followUp.error as Error).message} />;
  if (!followUp.data) return <Spin />;
  const f = followUp.data;
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      <Typography.Title level={3}>{t("complaints.followUpHeading", { number: f.order_number })}</Typography.Title>
      <Descriptions size="small" column={{ xs: 1, md: 2 }}>
        <Descriptions.Item label={t("board.number")}><Link to={`/orders/${f.order_id}`}>{f.order_number}</Link></Descriptions.Item>
        <Descriptions.Item label={t("board.customer")}>{f.customer_name} {f.customer_phone}</Descriptions.Item>
        <Descriptions.Item label={t("complaints.state")}>{f.state}</Descriptions.Item>
        <Descriptions.Item label={t("complaints.assigned")}>{f.assigned_to ?? t("common.none")}</Descriptions.Item>
        <Descriptions.Item label={t("complaints.score")}>{f.score ?? ""}</Descriptions.Item>
        {f.complaint_id && <Descriptions.Item label={t("complaints.complaints")}><Link to={`/complaints/${f.complaint_id}`}>{f.complaint_id}</Link></Descriptions.Item>}
      </Descriptions>
      {!f.assigned_to && <Button onClick={() => take.mutate(null)} loading={take.isPending}>{t("complaints.take")}</Button>}
      <Card title={t("complaints.attempt")}>
        <Form form={form} name="follow-up-attempt" layout="vertical" onFinish={(v) => attempt.mutate(v)}>
          <Form.Item name="reached" label={t("complaints.reached")} rules={[{ required: true, message: t("common.required") }]}>
            <Radio.Group options={[{ value: true, label: t("common.yes") }, { value: false, label: t("common.no") }]} />
          </Form.Item>
          {reached && (
            <Form.Item name="score" label={t("complaints.score")} rules={[{ required: true, message: t("common.required") }]}>
              <InputNumber min={1} max={5} />
            </Form.Item>
          )}
          <Form.Item name="comments" label={t("field.note")} rules={[{ max: 2000 }]}>
            <Input.TextArea rows={2} />
          </Form.Item>
          <Button type="primary" htmlType="submit" loading={attempt.isPending}>{t("common.save")}</Button>
        </Form>
      </Card>
    </Space>
  );
}
