import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { Alert, Button, Card, Form, Input, InputNumber, Select, Space, Switch, Table, Tabs, Tag, Typography } from "antd";
import { useSearchParams } from "react-router-dom";
import { api, unwrap } from "../api/client";
import Pager from "../components/Pager";
import { useAction } from "../components/useAction";
import { useI18n } from "../i18n";
import { fenToYuan, yuanToFen } from "../lib/digits";
import { apiQuery, pageQuery } from "../lib/paging";
import { shanghaiTime } from "../lib/time";
import type { paths } from "../api/schema";

type FaultKind = paths["/api/v1/fault-codes/{brand}/{kind}/{code}"]["put"]["parameters"]["path"]["kind"];
type RepairLevel = paths["/api/v1/labour-prices/{brand}/{repair_level}"]["put"]["parameters"]["path"]["repair_level"];

const KINDS = ["symptom", "fault", "cause"] as const;
const LEVELS = ["L1", "L2", "L3", "L4"] as const;
const SERVICE_TYPES = ["repair", "swap", "accessory", "software"] as const;
const YUAN = /^\d+(\.\d{1,2})?$/;
const CODE = /^[A-Za-z0-9_-]{1,50}$/;

function useBrands() {
  return useQuery({ queryKey: ["brands"], queryFn: async () => unwrap(await api.GET("/api/v1/brands", {})).items, staleTime: 60_000 });
}

function BrandSelect(props: { value?: string; onChange?: (v: string) => void; allowClear?: boolean }) {
  const { t } = useI18n();
  const brands = useBrands();
  return (
    <Select showSearch optionFilterProp="label" style={{ minWidth: 180 }} aria-label={t("intake.brand")} {...props}
      options={(brands.data ?? []).map((b) => ({ value: b.code, label: `${b.code} ${b.name}` }))} />
  );
}

function Brands() {
  const { t } = useI18n();
  const brands = useBrands();
  const [brandForm] = Form.useForm();
  const [modelForm] = Form.useForm();
  const putBrand = useAction(
    async (v: { code: string; name: string }, key: string) =>
      unwrap(await api.PUT("/api/v1/brands/{code}", { params: { path: { code: v.code } }, headers: { "Idempotency-Key": key }, body: { name: v.name.trim() } })),
    { form: brandForm, refresh: [["brands"], ["base-data-changes"]] },
  );
  const putModel = useAction(
    async (v: { brand: string; code: string; name: string }, key: string) =>
      unwrap(await api.PUT("/api/v1/brands/{brand}/models/{code}", { params: { path: { brand: v.brand, code: v.code } }, headers: { "Idempotency-Key": key }, body: { name: v.name.trim() } })),
    { form: modelForm, refresh: [["brands"], ["base-data-changes"]] },
  );
  return (
    <Space orientation="vertical" style={{ width: "100%" }}>
      <Form form={brandForm} layout="inline" name="brand" onFinish={(v) => putBrand.mutate(v)}>
        <Form.Item name="code" label={t("base.code")} rules={[{ required: true, pattern: CODE, message: t("base.codeFormat") }]}><Input /></Form.Item>
        <Form.Item name="name" label={t("base.name")} rules={[{ required: true, whitespace: true, message: t("common.required") }, { max: 100 }]}><Input /></Form.Item>
        <Button type="primary" htmlType="submit" loading={putBrand.isPending}>{t("base.saveBrand")}</Button>
      </Form>
      <Form form={modelForm} layout="inline" name="model" onFinish={(v) => putModel.mutate(v)}>
        <Form.Item name="brand" label={t("intake.brand")} rules={[{ required: true, message: t("common.required") }]}><BrandSelect /></Form.Item>
        <Form.Item name="code" label={t("base.code")} rules={[{ required: true, pattern: CODE, message: t("base.codeFormat") }]}><Input /></Form.Item>
        <Form.Item name="name" label={t("base.name")} rules={[{ required: true, whitespace: true, message: t("common.required") }, { max: 100 }]}><Input /></Form.Item>
        <Button type="primary" htmlType="submit" loading={putModel.isPending}>{t("base.saveModel")}</Button>
      </Form>
      <Table rowKey="code" size="small" pagination={false} loading={brands.isFetching} dataSource={brands.data ?? []}
        columns={[
          { title: t("base.code"), dataIndex: "code" },
          { title: t("base.name"), dataIndex: "name" },
          { title: t("intake.model"), key: "models", render: (_, b) => <Space wrap>{b.models.map((m) => <Tag key={m.code}>{m.name}</Tag>)}</Space> },
        ]} />
    </Space>
  );
}

function FaultCodes() {
  const { t } = useI18n();
  const [params, setParams] = useSearchParams();
  const brand = params.get("brand") ?? "";
  const [form] = Form.useForm();
  const codes = useQuery({
    queryKey: ["fault-codes", brand, "all"],
    queryFn: async () => unwrap(await api.GET("/api/v1/fault-codes", { params: { query: { brand: brand || undefined } } })).items,
  });
  const put = useAction(
    async (v: { brand: string; kind: FaultKind; code: string; description_zh: string; description_en?: string; active: boolean }, key: string) =>
      unwrap(
        await api.PUT("/api/v1/fault-codes/{brand}/{kind}/{code}", {
          params: { path: { brand: v.brand, kind: v.kind, code: v.code } }, headers: { "Idempotency-Key": key },
          body: { description_zh: v.description_zh.trim(), description_en: v.description_en?.trim() ?? "", active: v.active },
        }),
      ),
    { form, refresh: [["fault-codes"], ["base-data-changes"]] },
  );
  return (
    <Space orientation="vertical" style={{ width: "100%" }}>
      <Form form={form} layout="inline" name="fault-code" initialValues={{ active: true, brand: brand || undefined }} onFinish={(v) => put.mutate(v)} style={{ rowGap: 8 }}>
        <Form.Item name="brand" label={t("intake.brand")} rules={[{ required: true, message: t("common.required") }]}><BrandSelect /></Form.Item>
        <Form.Item name="kind" label={t("base.kind")} rules={[{ required: true, message: t("common.required") }]}>
          <Select showSearch style={{ width: 120 }} options={KINDS.map((k) => ({ value: k, label: k }))} />
        </Form.Item>
        <Form.Item name="code" label={t("base.code")} rules={[{ required: true, pattern: CODE, message: t("base.codeFormat") }]}><Input style={{ width: 120 }} /></Form.Item>
        <Form.Item name="description_zh" label={t("base.descriptionZh")} rules={[{ required: true, whitespace: true, message: t("common.required") }, { max: 200 }]}><Input /></Form.Item>
        <Form.Item name="description_en" label={t("base.descriptionEn")} rules={[{ max: 200 }]}><Input /></Form.Item>
        <Form.Item name="active" label={t("base.active")} valuePropName="checked"><Switch /></Form.Item>
        <Button type="primary" htmlType="submit" loading={put.isPending}>{t("common.save")}</Button>
      </Form>
      <Space>
        <Typography.Text>{t("base.filterBrand")}</Typography.Text>
        <BrandSelect allowClear value={brand || undefined} onChange={(b) => setParams(pageQuery(params, { brand: b ?? "" }))} />
      </Space>
      <Table rowKey={(c) => `${c.brand}/${c.kind}/${c.code}`} size="small" loading={codes.isFetching} dataSource={codes.data ?? []}
        pagination={{ pageSize: 50, showSizeChanger: false }}
        onRow={(c) => ({ onClick: () => form.setFieldsValue(c) })}
        columns={[
          { title: t("intake.brand"), dataIndex: "brand" },
          { title: t("base.kind"), dataIndex: "kind" },
          { title: t("base.code"), dataIndex: "code" },
          { title: t("base.descriptionZh"), dataIndex: "description_zh" },
          { title: t("base.descriptionEn"), dataIndex: "description_en" },
          { title: t("base.active"), dataIndex: "active", render: (a: boolean) => (a ? t("common.yes") : t("common.no")) },
        ]} />
    </Space>
  );
}

function LabourPrices() {
  const { t } = useI18n();
  const [form] = Form.useForm();
  const prices = useQuery({ queryKey: ["labour-prices"], queryFn: async () => unwrap(await api.GET("/api/v1/labour-prices", {})).items });
  const put = useAction(
    async (v: { brand: string; repair_level: RepairLevel; amount_yuan: string }, key: string) =>
      unwrap(
        await api.PUT("/api/v1/labour-prices/{brand}/{repair_level}", {
          params: { path: { brand: v.brand, repair_level: v.repair_level } }, headers: { "Idempotency-Key": key },
          body: { amount_fen: yuanToFen(v.amount_yuan) ?? 0 },
        }),
      ),
    { form, refresh: [["labour-prices"], ["base-data-changes"]] },
  );
  return (
    <Space orientation="vertical" style={{ width: "100%" }}>
      <Form form={form} layout="inline" name="labour-price" onFinish={(v) => put.mutate(v)}>
        <Form.Item name="brand" label={t("intake.brand")} rules={[{ required: true, message: t("common.required") }]}><BrandSelect /></Form.Item>
        <Form.Item name="repair_level" label={t("field.repairLevel")} rules={[{ required: true, message: t("common.required") }]}>
          <Select showSearch style={{ width: 90 }} options={LEVELS.map((l) => ({ value: l, label: l }))} />
        </Form.Item>
        <Form.Item name="amount_yuan" label={t("field.labourYuan")} rules={[{ required: true, pattern: YUAN, message: t("stock.yuanFormat") }]}><Input inputMode="decimal" /></Form.Item>
        <Button type="primary" htmlType="submit" loading={put.isPending}>{t("common.save")}</Button>
      </Form>
      <Table rowKey={(p) => `${p.brand}/${p.repair_level}`} size="small" loading={prices.isFetching} dataSource={prices.data ?? []} pagination={false}
        onRow={(p) => ({ onClick: () => form.setFieldsValue({ ...p, amount_yuan: fenToYuan(p.amount_fen) }) })}
        columns={[
          { title: t("intake.brand"), dataIndex: "brand" },
          { title: t("field.repairLevel"), dataIndex: "repair_level" },
          { title: t("field.labourYuan"), dataIndex: "amount_fen", render: (fen: number) => fenToYuan(fen) },
        ]} />
    </Space>
  );
}

const POLICY_FIELDS = ["return_days", "swap_days", "main_unit_months", "battery_months", "charger_months", "earphone_months", "repair_hold_days", "parts_wait_days", "swap_after_repairs"] as const;

function WarrantyPolicies() {
  const { t } = useI18n();
  const [form] = Form.useForm();
  const policies = useQuery({ queryKey: ["warranty-policies"], queryFn: async () => unwrap(await api.GET("/api/v1/warranty-policies", {})).items });
  const put = useAction(
    async (v: { brand: string } & Record<(typeof POLICY_FIELDS)[number], number>, key: string) => {
      const { brand, ...terms } = v;
      return unwrap(await api.PUT("/api/v1/warranty-policies/{brand}", { params: { path: { brand } }, headers: { "Idempotency-Key": key }, body: terms }));
    },
    { form, refresh: [["warranty-policies"], ["base-data-changes"]] },
  );
  return (
    <Space orientation="vertical" style={{ width: "100%" }}>
      <Form form={form} layout="inline" name="warranty-policy" onFinish={(v) => put.mutate(v)} style={{ rowGap: 8 }}>
        <Form.Item name="brand" label={t("intake.brand")} rules={[{ required: true, message: t("common.required") }]}><BrandSelect /></Form.Item>
        {POLICY_FIELDS.map((name) => (
          <Form.Item key={name} name={name} label={name}>
            <InputNumber min={name === "swap_after_repairs" ? 1 : 0} max={name.endsWith("months") ? 60 : name === "swap_after_repairs" ? 10 : 365} />
          </Form.Item>
        ))}
        <Button type="primary" htmlType="submit" loading={put.isPending}>{t("common.save")}</Button>
      </Form>
      <Table rowKey="brand" size="small" loading={policies.isFetching} dataSource={policies.data ?? []} pagination={false}
        onRow={(p) => ({ onClick: () => form.setFieldsValue(p) })}
        columns={[{ title: t("intake.brand"), dataIndex: "brand" }, ...POLICY_FIELDS.map((name) => ({ title: name, dataIndex: name }))]} />
    </Space>
  );
}

function Authorisations() {
  const { t } = useI18n();
  const [form] = Form.useForm();
  const list = useQuery({ queryKey: ["authorisations"], queryFn: async () => unwrap(await api.GET("/api/v1/authorisations", {})).items });
  const put = useAction(
    async (v: { store_id: string; brand: string; service_type: string; authorised: boolean }, key: string) =>
      unwrap(
        await api.PUT("/api/v1/authorisations/{store_id}/{brand}/{service_type}", {
          params: { path: { store_id: v.store_id, brand: v.brand, service_type: v.service_type } }, headers: { "Idempotency-Key": key },
          body: { authorised: v.authorised },
        }),
      ),
    { form, refresh: [["authorisations"], ["base-data-changes"]] },
  );
  return (
    <Space orientation="vertical" style={{ width: "100%" }}>
      <Form form={form} layout="inline" name="authorisation" initialValues={{ authorised: true }} onFinish={(v) => put.mutate(v)}>
        <Form.Item name="store_id" label={t("board.store")} rules={[{ required: true, whitespace: true, message: t("common.required") }]}><Input style={{ width: 110 }} /></Form.Item>
        <Form.Item name="brand" label={t("intake.brand")} rules={[{ required: true, message: t("common.required") }]}><BrandSelect /></Form.Item>
        <Form.Item name="service_type" label={t("intake.serviceType")} rules={[{ required: true, message: t("common.required") }]}>
          <Select style={{ width: 120 }} options={SERVICE_TYPES.map((s) => ({ value: s, label: t(`service.${s}`) }))} />
        </Form.Item>
        <Form.Item name="authorised" label={t("base.authorised")} valuePropName="checked"><Switch /></Form.Item>
        <Button type="primary" htmlType="submit" loading={put.isPending}>{t("common.save")}</Button>
      </Form>
      <Table rowKey={(a) => `${a.store_id}/${a.brand}/${a.service_type}`} size="small" loading={list.isFetching} dataSource={list.data ?? []}
        pagination={{ pageSize: 50, showSizeChanger: false }}
        onRow={(a) => ({ onClick: () => form.setFieldsValue(a) })}
        columns={[
          { title: t("board.store"), dataIndex: "store_id" },
          { title: t("intake.brand"), dataIndex: "brand" },
          { title: t("intake.serviceType"), dataIndex: "service_type" },
          { title: t("base.authorised"), dataIndex: "authorised", render: (a: boolean) => (a ? t("common.yes") : t("common.no")) },
        ]} />
    </Space>
  );
}

function Thresholds() {
  const { t } = useI18n();
  const [form] = Form.useForm();
  const list = useQuery({ queryKey: ["approval-thresholds"], queryFn: async () => unwrap(await api.GET("/api/v1/approval-thresholds", {})) });
  const put = useAction(
    async (v: { branch_id: string; amount_yuan: string }, key: string) =>
      unwrap(
        await api.PUT("/api/v1/approval-thresholds/{branch_id}", {
          params: { path: { branch_id: v.branch_id } }, headers: { "Idempotency-Key": key },
          body: { amount_fen: yuanToFen(v.amount_yuan) ?? 0 },
        }),
      ),
    { form, refresh: [["approval-thresholds"], ["base-data-changes"]] },
  );
  return (
    <Space orientation="vertical" style={{ width: "100%" }}>
      <Form form={form} layout="inline" name="threshold" onFinish={(v) => put.mutate(v)}>
        <Form.Item name="branch_id" label={t("base.branch")} rules={[{ required: true, whitespace: true, message: t("common.required") }]}><Input style={{ width: 110 }} /></Form.Item>
        <Form.Item name="amount_yuan" label={t("base.thresholdYuan")} rules={[{ required: true, pattern: YUAN, message: t("stock.yuanFormat") }]}><Input inputMode="decimal" /></Form.Item>
        <Button type="primary" htmlType="submit" loading={put.isPending}>{t("common.save")}</Button>
      </Form>
      {list.data && <Typography.Text>{t("base.defaultThreshold")}: ¥{fenToYuan(list.data.default_fen)}</Typography.Text>}
      <Table rowKey="branch_id" size="small" dataSource={list.data?.items ?? []} pagination={false}
        onRow={(x) => ({ onClick: () => form.setFieldsValue({ branch_id: x.branch_id, amount_yuan: fenToYuan(x.amount_fen) }) })}
        columns={[
          { title: t("base.branch"), dataIndex: "branch_id" },
          { title: t("base.thresholdYuan"), dataIndex: "amount_fen", render: (fen: number) => fenToYuan(fen) },
        ]} />
    </Space>
  );
}

interface Change {
  seq: number;
  at: string;
  user_id: string;
  what: string;
  key: string;
  value: unknown;
}

/** An audit trail (who changed what, when), a page at a time. */
export function Changes({ source }: { source: "base-data" | "admin" }) {
  const { t } = useI18n();
  const [params] = useSearchParams();
  const query = apiQuery(params, ["cursor"]);
  const changes = useQuery({
    queryKey: [`${source}-changes`, query],
    queryFn: async (): Promise<{ items: Change[]; next_cursor: string | null }> =>
      source === "base-data"
        ? unwrap(await api.GET("/api/v1/base-data/changes", { params: { query: { ...query, limit: 20 } } }))
        : unwrap(await api.GET("/api/v1/admin/changes", { params: { query: { ...query, limit: 20 } } })),
    placeholderData: keepPreviousData,
  });
  return (
    <>
      {changes.error && <Alert type="error" title={(changes.error as Error).message} />}
      <Table rowKey="seq" size="small" pagination={false} loading={changes.isFetching} dataSource={changes.data?.items ?? []}
        columns={[
          { title: t("audit.at"), dataIndex: "at", render: (at: string) => shanghaiTime(at) },
          { title: t("audit.user"), dataIndex: "user_id" },
          { title: t("audit.what"), dataIndex: "what" },
          { title: t("audit.key"), dataIndex: "key" },
          { title: t("audit.value"), dataIndex: "value", render: (v: unknown) => <code>{JSON.stringify(v)}</code> },
        ]} />
      <Pager next={changes.data?.next_cursor} />
    </>
  );
}

/** 基础数据: brands and models, fault codes, labour prices, warranty policies, authorisations
 * and approval thresholds, with their audit trail. */
export default function BaseDataPage() {
  const { t } = useI18n();
  const [params, setParams] = useSearchParams();
  return (
    <Space orientation="vertical" size="middle" style={{ width: "100%" }}>
      <Typography.Title level={3}>{t("base.title")}</Typography.Title>
      <Card>
        <Tabs
          activeKey={params.get("tab") ?? "brands"}
          onChange={(tab) => setParams(new URLSearchParams({ tab }))}
          items={[
            { key: "brands", label: t("base.brands"), children: <Brands /> },
            { key: "fault-codes", label: t("base.faultCodes"), children: <FaultCodes /> },
            { key: "labour", label: t("base.labour"), children: <LabourPrices /> },
            { key: "warranty", label: t("base.warranty"), children: <WarrantyPolicies /> },
            { key: "authorisations", label: t("base.authorisations"), children: <Authorisations /> },
            { key: "thresholds", label: t("base.thresholds"), children: <Thresholds /> },
            { key: "changes", label: t("audit.title"), children: <Changes source="base-data" /> },
          ]}
        />
      </Card>
    </Space>
  );
}
