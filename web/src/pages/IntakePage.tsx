import { useMutation, useQuery } from "@tanstack/react-query";
import {
  Alert,
  App,
  Badge,
  Button,
  Card,
  Checkbox,
  Col,
  DatePicker,
  Form,
  Input,
  Radio,
  Row,
  Select,
  Space,
  Typography,
} from "antd";
import type { Dayjs } from "dayjs";
import { useCallback, useState } from "react";
import { useNavigate } from "react-router-dom";
import { api, ApiProblem, type Me, newIdempotencyKey, unwrap } from "../api/client";
import type { components, paths } from "../api/schema";
import ImeiScanner from "../components/ImeiScanner";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/zh-CN";
import { checkImei, normaliseDigits, phoneValid } from "../lib/digits";
import { NATIONAL_POLICY, type Policy, previewWarranty, shanghaiToday } from "../lib/warranty";

type Customer = paths["/api/v1/customers/lookup"]["get"]["responses"][200]["content"]["application/json"];
type OrderIn = components["schemas"]["RepairOrderIn"];

interface IntakeValues {
  phone: string;
  name: string;
  message_consent: boolean;
  language: "zh-CN" | "en";
  imei: string;
  brand: string;
  model: string;
  colour?: string;
  purchase_date?: Dayjs | null;
  description: string;
  service_type: string;
  accessories?: string;
  appearance?: string;
  promised_date?: Dayjs | null;
  store_id?: string;
}

const SHORT = 50;
const NAME = 100;
const TEXT = 2000;
const NOTE = 500;

const IMEI_HELP: Record<string, MessageKey | null> = {
  empty: null,
  typing: "intake.imeiLength",
  length: "intake.imeiLength",
  luhn: "intake.imeiLuhn",
  ok: "intake.imeiOk",
};

/** 受理: the customer found by phone, the device by its IMEI (checked by Luhn as typed,
 * full-width digits turned ASCII), the warranty decision previewed before saving. */
export default function IntakePage({ me }: { me: Me }) {
  const { t } = useI18n();
  const { message } = App.useApp();
  const navigate = useNavigate();
  const [form] = Form.useForm<IntakeValues>();
  // One key for this intake until the gateway answers: a retry after a lost answer replays it.
  const [key, setKey] = useState(newIdempotencyKey);
  const [returning, setReturning] = useState<Customer | null | undefined>(undefined);

  const brands = useQuery({
    queryKey: ["brands"],
    queryFn: async () => unwrap(await api.GET("/api/v1/brands", {})).items,
    staleTime: 10 * 60_000,
  });
  const policies = useQuery({
    queryKey: ["warranty-policies"],
    queryFn: async () => unwrap(await api.GET("/api/v1/warranty-policies", {})).items,
    staleTime: 10 * 60_000,
  });
  const stores = useQuery({
    queryKey: ["org-units"],
    queryFn: async () => unwrap(await api.GET("/api/v1/org-units", {})).items.filter((u) => u.kind === "store"),
    enabled: me.store_id === null,
  });

  const imei = Form.useWatch("imei", form) ?? "";
  const brand = Form.useWatch("brand", form);
  const purchase = Form.useWatch("purchase_date", form);
  const imeiCheck = checkImei(imei);
  const onScanned = useCallback(
    (read: string) => {
      form.setFieldsValue({ imei: read });
      void form.validateFields(["imei"]);
      message.success(t("intake.scanned"));
    },
    [form, message, t],
  );
  const models = brands.data?.find((b) => b.code === brand)?.models ?? [];
  const policy: Policy = policies.data?.find((p) => p.brand === brand) ?? NATIONAL_POLICY;
  const preview = previewWarranty(purchase ? purchase.format("YYYY-MM-DD") : null, shanghaiToday(), policy);

  async function findCustomer() {
    const phone = normaliseDigits(form.getFieldValue("phone") ?? "");
    if (!phoneValid(phone)) {
      form.setFields([{ name: "phone", errors: [t("intake.phoneInvalid")] }]);
      return;
    }
    try {
      const found = unwrap(await api.GET("/api/v1/customers/lookup", { params: { query: { phone } } }));
      setReturning(found);
      form.setFieldsValue({
        name: found.name,
        message_consent: found.message_consent,
        language: found.language === "en" ? "en" : "zh-CN",
      });
    } catch (error) {
      if (error instanceof ApiProblem && error.status === 404) setReturning(null);
      else message.error((error as Error).message);
    }
  }

  const save = useMutation({
    mutationFn: async (v: IntakeValues) => {
      const body: OrderIn = {
        customer: {
          name: v.name.trim(),
          phone: normaliseDigits(v.phone),
          message_consent: v.message_consent ?? false,
          language: v.language ?? "zh-CN",
        },
        device: {
          imei: normaliseDigits(v.imei),
          brand: v.brand,
          model: v.model,
          colour: v.colour?.trim() || null,
          purchase_date: v.purchase_date ? v.purchase_date.format("YYYY-MM-DD") : null,
        },
        fault: { description: v.description.trim(), symptom_code: null },
        service_type: v.service_type,
        accessories: v.accessories?.trim() || null,
        appearance: v.appearance?.trim() || null,
        promised_date: v.promised_date ? v.promised_date.format("YYYY-MM-DD") : null,
        store_id: v.store_id ?? null,
      };
      const reply = await api.POST("/api/v1/repair-orders", {
        body,
        headers: { "Idempotency-Key": key },
      });
      setKey(newIdempotencyKey());
      return unwrap(reply);
    },
    onSuccess: (order) => {
      message.success(t("intake.saved", { number: order.number }));
      navigate(`/orders/${order.id}`);
    },
    onError: (error) => {
      if (error instanceof ApiProblem && error.errors.length) {
        form.setFields(
          error.errors.map((e) => ({
            name: e.field.split(".").pop() === "description" ? "description" : (e.field.split(".").pop() as keyof IntakeValues),
            errors: [e.reason],
          })),
        );
      }
      message.error(error.message);
    },
  });

  return (
    <Form<IntakeValues>
      form={form}
      layout="vertical"
      name="intake"
      initialValues={{ language: "zh-CN", message_consent: true, service_type: "repair" }}
      onFinish={(values) => save.mutate(values)}
      scrollToFirstError
    >
      <Typography.Title level={3}>{t("intake.title")}</Typography.Title>
      <Row gutter={[16, 16]}>
        <Col xs={24} lg={12}>
          <Card title={t("intake.customer")}>
            <Form.Item label={t("intake.phone")} required>
              <Space.Compact style={{ width: "100%" }}>
                <Form.Item
                  name="phone"
                  noStyle
                  normalize={(value: string) => normaliseDigits(value ?? "")}
                  rules={[{ validator: (_, v: string) => (phoneValid(v ?? "") ? Promise.resolve() : Promise.reject(new Error(t("intake.phoneInvalid")))) }]}
                >
                  <Input inputMode="tel" aria-label={t("intake.phone")} onChange={() => setReturning(undefined)} />
                </Form.Item>
                <Button onClick={findCustomer}>{t("intake.find")}</Button>
              </Space.Compact>
            </Form.Item>
            {returning && (
              <Alert
                type="success"
                data-testid="returning"
                title={<Badge status="success" text={t("intake.returning", { name: returning.name, count: returning.devices.length })} />}
                style={{ marginBottom: 16 }}
              />
            )}
            {returning === null && <Alert type="info" title={t("intake.newCustomer")} style={{ marginBottom: 16 }} />}
            <Form.Item name="name" label={t("intake.name")} rules={[{ required: true, whitespace: true, message: t("common.required") }, { max: NAME }]}>
              <Input />
            </Form.Item>
            <Form.Item name="message_consent" valuePropName="checked">
              <Checkbox>{t("intake.consent")}</Checkbox>
            </Form.Item>
            <Form.Item name="language" label={t("intake.language")}>
              <Radio.Group options={[{ value: "zh-CN", label: "中文" }, { value: "en", label: "English" }]} />
            </Form.Item>
            {me.store_id === null && (
              <Form.Item name="store_id" label={t("board.store")} rules={[{ required: true, message: t("common.required") }]}>
                <Select showSearch options={(stores.data ?? []).map((s) => ({ value: s.id, label: `${s.id} ${s.name}` }))} />
              </Form.Item>
            )}
          </Card>
        </Col>
        <Col xs={24} lg={12}>
          <Card title={t("intake.device")}>
            <Form.Item
              name="imei"
              label={t("intake.imei")}
              normalize={(value: string) => normaliseDigits(value ?? "")}
              validateStatus={imeiCheck === "ok" ? "success" : imeiCheck === "luhn" || imeiCheck === "length" ? "error" : undefined}
              // Always on, so the input keeps its element (and focus) as the check changes.
              hasFeedback
              help={IMEI_HELP[imeiCheck] && imeiCheck !== "typing" ? t(IMEI_HELP[imeiCheck]!) : undefined}
              rules={[{
                validator: (_, v: string) => {
                  const check = checkImei(v ?? "");
                  if (check === "ok") return Promise.resolve();
                  return Promise.reject(new Error(t(check === "luhn" ? "intake.imeiLuhn" : "intake.imeiLength")));
                },
              }]}
            >
              <Input inputMode="numeric" autoComplete="off" maxLength={30} />
            </Form.Item>
            <Form.Item>
              <ImeiScanner onRead={onScanned} />
            </Form.Item>
            <Row gutter={8}>
              <Col span={12}>
                <Form.Item name="brand" label={t("intake.brand")} rules={[{ required: true, message: t("common.required") }]}>
                  <Select
                    showSearch
                    loading={brands.isLoading}
                    options={(brands.data ?? []).map((b) => ({ value: b.code, label: b.name }))}
                    onChange={() => form.setFieldValue("model", undefined)}
                  />
                </Form.Item>
              </Col>
              <Col span={12}>
                <Form.Item name="model" label={t("intake.model")} rules={[{ required: true, message: t("common.required") }]}>
                  <Select showSearch options={models.map((m) => ({ value: m.code, label: m.name }))} />
                </Form.Item>
              </Col>
            </Row>
            <Row gutter={8}>
              <Col span={12}>
                <Form.Item name="colour" label={t("intake.colour")} rules={[{ max: SHORT }]}>
                  <Input />
                </Form.Item>
              </Col>
              <Col span={12}>
                <Form.Item name="purchase_date" label={t("intake.purchaseDate")}>
                  <DatePicker style={{ width: "100%" }} disabledDate={(day) => day.format("YYYY-MM-DD") > shanghaiToday()} />
                </Form.Item>
              </Col>
            </Row>
            <Alert
              data-testid="warranty-preview"
              type={preview.status === "in_warranty" ? "success" : "warning"}
              title={`${t("intake.warrantyPreview")}: ${t(`warranty.${preview.status}`)}`}
              description={
                <>
                  {preview.reason === "noDate"
                    ? t("warranty.noDate")
                    : preview.reason === "ended"
                      ? t("warranty.ended", { date: preview.date })
                      : preview.reason === "repair"
                        ? t("warranty.repair", { date: preview.expiresOn })
                        : t(`warranty.${preview.reason}`, { day: preview.day })}
                  <div style={{ fontSize: 12, opacity: 0.7 }}>{t("intake.warrantyNote")}</div>
                </>
              }
              style={{ marginBottom: 16 }}
            />
          </Card>
        </Col>
        <Col xs={24}>
          <Card>
            <Form.Item name="description" label={t("intake.fault")} rules={[{ required: true, whitespace: true, message: t("common.required") }, { max: TEXT }]}>
              <Input.TextArea rows={3} />
            </Form.Item>
            <Row gutter={8}>
              <Col xs={24} md={8}>
                <Form.Item name="service_type" label={t("intake.serviceType")} rules={[{ required: true }]}>
                  <Select options={(["repair", "swap", "accessory", "software"] as const).map((s) => ({ value: s, label: t(`service.${s}`) }))} />
                </Form.Item>
              </Col>
              <Col xs={24} md={8}>
                <Form.Item name="promised_date" label={t("intake.promisedDate")}>
                  <DatePicker style={{ width: "100%" }} disabledDate={(day) => day.format("YYYY-MM-DD") < shanghaiToday()} />
                </Form.Item>
              </Col>
            </Row>
            <Row gutter={8}>
              <Col xs={24} md={12}>
                <Form.Item name="accessories" label={t("intake.accessories")} rules={[{ max: NOTE }]}>
                  <Input />
                </Form.Item>
              </Col>
              <Col xs={24} md={12}>
                <Form.Item name="appearance" label={t("intake.appearance")} rules={[{ max: NOTE }]}>
                  <Input />
                </Form.Item>
              </Col>
            </Row>
            <Button type="primary" htmlType="submit" loading={save.isPending}>
              {t("intake.submit")}
            </Button>
          </Card>
        </Col>
      </Row>
    </Form>
  );
}
