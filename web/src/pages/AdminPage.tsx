import { useQuery } from "@tanstack/react-query";
import { Alert, Button, Card, Form, Input, Select, Space, Switch, Table, Tabs, Typography } from "antd";
import { useSearchParams } from "react-router-dom";
import { api, unwrap } from "../api/client";
import { useAction } from "../components/useAction";
import { useI18n } from "../i18n";
import type { Role } from "../lib/roles";
import { useOrgUnits } from "../lib/useWarehouses";
import { Changes } from "./BaseDataPage";

const ROLES: Role[] = ["hq_admin", "hq_analyst", "branch_manager", "warehouse_keeper", "clerk", "technician", "followup_agent"];
const ID = /^[A-Za-z0-9_-]{1,32}$/;

function OrgUnits() {
  const { t } = useI18n();
  const units = useOrgUnits();
  const [form] = Form.useForm();
  const put = useAction(
    async (v: { id: string; kind: "branch" | "store"; parent_id: string; name: string; franchised?: boolean }, key: string) =>
      unwrap(
        await api.PUT("/api/v1/admin/org-units/{unit_id}", {
          params: { path: { unit_id: v.id } }, headers: { "Idempotency-Key": key },
          body: { kind: v.kind, parent_id: v.parent_id, name: v.name.trim(), franchised: v.franchised ?? false },
        }),
      ),
    { form, refresh: [["org-units"], ["admin-changes"]] },
  );
  return (
    <Space orientation="vertical" style={{ width: "100%" }}>
      <Form form={form} layout="inline" name="org-unit" onFinish={(v) => put.mutate(v)} style={{ rowGap: 8 }}>
        <Form.Item name="id" label={t("admin.unitId")} rules={[{ required: true, pattern: ID, message: t("base.codeFormat") }]}><Input style={{ width: 110 }} /></Form.Item>
        <Form.Item name="kind" label={t("base.kind")} rules={[{ required: true, message: t("common.required") }]}>
          <Select style={{ width: 110 }} options={["branch", "store"].map((k) => ({ value: k, label: t(`admin.kind.${k as "branch" | "store"}`) }))} />
        </Form.Item>
        <Form.Item name="parent_id" label={t("admin.parent")} rules={[{ required: true, pattern: ID, message: t("base.codeFormat") }]}><Input style={{ width: 110 }} /></Form.Item>
        <Form.Item name="name" label={t("base.name")} rules={[{ required: true, whitespace: true, message: t("common.required") }, { max: 200 }]}><Input /></Form.Item>
        <Form.Item name="franchised" label={t("admin.franchised")} valuePropName="checked"><Switch /></Form.Item>
        <Button type="primary" htmlType="submit" loading={put.isPending}>{t("common.save")}</Button>
      </Form>
      <Table rowKey="id" size="small" pagination={false} loading={units.isFetching} dataSource={units.data ?? []}
        onRow={(u) => ({ onClick: () => form.setFieldsValue(u) })}
        columns={[
          { title: t("admin.unitId"), dataIndex: "id" },
          { title: t("base.kind"), dataIndex: "kind" },
          { title: t("base.name"), dataIndex: "name" },
          { title: t("admin.parent"), dataIndex: "parent_id" },
          { title: t("admin.franchised"), dataIndex: "franchised", render: (f: boolean) => (f ? t("common.yes") : t("common.no")) },
        ]} />
    </Space>
  );
}

function Users() {
  const { t } = useI18n();
  const [params, setParams] = useSearchParams();
  const unit = params.get("unit") ?? "";
  const role = params.get("role") ?? "";
  const [form] = Form.useForm();
  const users = useQuery({
    queryKey: ["users", unit, role],
    queryFn: async () => unwrap(await api.GET("/api/v1/admin/users", { params: { query: { org_unit_id: unit || undefined, role: role || undefined } } })).items,
  });
  const put = useAction(
    async (v: { username: string; display_name: string; role: Role; org_unit_id: string; active: boolean; password?: string }, key: string) =>
      unwrap(
        await api.PUT("/api/v1/admin/users/{username}", {
          params: { path: { username: v.username.trim() } }, headers: { "Idempotency-Key": key },
          body: { display_name: v.display_name.trim(), role: v.role, org_unit_id: v.org_unit_id, active: v.active, password: v.password || null },
        }),
      ),
    { form, refresh: [["users"], ["admin-changes"]] },
  );
  const filter = (name: string, value: string | undefined) => {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setParams(next);
  };
  return (
    <Space orientation="vertical" style={{ width: "100%" }}>
      {users.error && <Alert type="error" title={(users.error as Error).message} />}
      <Form form={form} layout="inline" name="user" initialValues={{ active: true }} onFinish={(v) => put.mutate(v)} style={{ rowGap: 8 }}>
        <Form.Item name="username" label={t("login.username")} rules={[{ required: true, whitespace: true, message: t("common.required") }, { max: 64 }]}><Input /></Form.Item>
        <Form.Item name="display_name" label={t("admin.displayName")} rules={[{ required: true, whitespace: true, message: t("common.required") }, { max: 200 }]}><Input /></Form.Item>
        <Form.Item name="role" label={t("admin.role")} rules={[{ required: true, message: t("common.required") }]}>
          <Select style={{ width: 170 }} options={ROLES.map((r) => ({ value: r, label: r }))} />
        </Form.Item>
        <Form.Item name="org_unit_id" label={t("admin.unitId")} rules={[{ required: true, pattern: ID, message: t("base.codeFormat") }]}><Input style={{ width: 110 }} /></Form.Item>
        <Form.Item name="active" label={t("base.active")} valuePropName="checked"><Switch /></Form.Item>
        <Form.Item name="password" label={t("login.password")} rules={[{ min: 8 }]}><Input.Password autoComplete="new-password" /></Form.Item>
        <Button type="primary" htmlType="submit" loading={put.isPending}>{t("common.save")}</Button>
      </Form>
      <Space>
        <Input placeholder={t("admin.unitId")} aria-label={t("admin.filterUnit")} defaultValue={unit} onBlur={(e) => filter("unit", e.target.value.trim())} style={{ width: 140 }} />
        <Select allowClear placeholder={t("admin.role")} aria-label={t("admin.filterRole")} value={role || undefined} style={{ width: 170 }}
          onChange={(r?: string) => filter("role", r)} options={ROLES.map((r) => ({ value: r, label: r }))} />
      </Space>
      <Table rowKey="username" size="small" loading={users.isFetching} dataSource={users.data ?? []} pagination={{ pageSize: 50, showSizeChanger: false }}
        onRow={(u) => ({ onClick: () => form.setFieldsValue({ ...u, password: "" }) })}
        columns={[
          { title: t("login.username"), dataIndex: "username" },
          { title: t("admin.displayName"), dataIndex: "display_name" },
          { title: t("admin.role"), dataIndex: "role" },
          { title: t("admin.unitId"), dataIndex: "org_unit_id" },
          { title: t("base.active"), dataIndex: "active", render: (a: boolean) => (a ? t("common.yes") : t("common.no")) },
        ]} />
    </Space>
  );
}

/** 组织与用户: the org tree and the users, with who changed them and when. */
export default function AdminPage() {
  const { t } = useI18n();
  const [params, setParams] = useSearchParams();
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      <Typography.Title level={3}>{t("admin.title")}</Typography.Title>
      <Card>
        <Tabs
          activeKey={params.get("tab") ?? "units"}
          onChange={(tab) => setParams(new URLSearchParams({ tab }))}
          items={[
            { key: "units", label: t("admin.units"), children: <OrgUnits /> },
            { key: "users", label: t("admin.users"), children: <Users /> },
            { key: "changes", label: t("audit.title"), children: <Changes source="admin" /> },
          ]}
        />
      </Card>
    </Space>
  );
}
