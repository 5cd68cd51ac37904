/** The forms of an order's steps. Each validates before it sends (the API's declared limits,
 * amounts in yuan turned into fen, an IMEI by Luhn) and shows the API's field errors beside
 * the fields when it refuses. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { App, Button, Checkbox, Form, type FormInstance, Input, InputNumber, Radio, Select, Space } from "antd";
import { useState } from "react";
import { api, ApiProblem, type Order, unwrap } from "../api/client";
import { isStale, StepAttempt, type StepBodies } from "../api/steps";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/zh-CN";
import { checkImei, fenToYuan, normaliseDigits, yuanToFen } from "../lib/digits";
import type { StepName } from "../lib/steps";

export const STEP_LABELS: Record<StepName, MessageKey> = {
  diagnosis: "step.diagnosis",
  quote: "step.quote",
  approval: "step.approval",
  "manager-approval": "step.managerApproval",
  parts: "step.parts",
  "repair/start": "step.repairStart",
  "repair/finish": "step.repairFinish",
  qc: "step.qc",
  pickup: "step.pickup",
};

const REPAIR_LEVELS = ["L1", "L2", "L3", "L4"].map((level) => ({ value: level, label: level }));
const SHORT = 50;
const NOTE = 500;
const MAINBOARD = "mainboard_replacement";

/** Form field names where the API's differ (amounts typed in yuan). */
const FIELD_ALIASES: Record<string, string> = { labour_fen: "labour_yuan", amount_fen: "amount_yuan" };

function fieldPath(field: string): (string | number)[] {
  const name = FIELD_ALIASES[field] ?? field;
  return name.split(".").map((part) => (/^\d+$/.test(part) ? Number(part) : part));
}

function useStep<S extends StepName>(order: Order, step: S, form: FormInstance) {
  const { t } = useI18n();
  const { message } = App.useApp();
  const queries = useQueryClient();
  const [attempt] = useState(() => new StepAttempt());
  return useMutation({
    mutationFn: (body: StepBodies[S]) => attempt.send(order.id, step, body),
    onSuccess: (updated) => {
      queries.setQueryData(["order", order.id], updated);
      void queries.invalidateQueries({ queryKey: ["orders"] });
      message.success(t("detail.done"));
    },
    onError: (error) => {
      if (isStale(error)) {
        message.warning(t("detail.stale"));
        void queries.invalidateQueries({ queryKey: ["order", order.id] });
        return;
      }
      if (error instanceof ApiProblem && error.errors.length) {
        form.setFields(error.errors.map((e) => ({ name: fieldPath(e.field), errors: [e.reason] })));
      }
      message.error(error.message);
    },
  });
}

function Submit({ busy, label }: { busy: boolean; label: string }) {
  return (
    <Button type="primary" htmlType="submit" loading={busy}>
      {label}
    </Button>
  );
}

function codesRule(t: (key: MessageKey) => string, required: boolean) {
  return [
    { required, message: t("common.required") },
    { type: "array" as const, max: 20 },
  ];
}

/** The manufacturer's active codes of the order's brand, by kind, as select options. */
function useFaultCodes(brand: string) {
  const { language } = useI18n();
  const codes = useQuery({
    queryKey: ["fault-codes", brand],
    queryFn: async () =>
      unwrap(await api.GET("/api/v1/fault-codes", { params: { query: { brand, active_only: true } } })).items,
    staleTime: 10 * 60_000,
  });
  return (kind: "symptom" | "fault" | "cause") =>
    (codes.data ?? [])
      .filter((code) => code.kind === kind)
      .map((code) => ({
        value: code.code,
        label: `${code.code} ${language === "en" && code.description_en ? code.description_en : code.description_zh}`,
      }));
}

export function DiagnosisForm({ order }: { order: Order }) {
  const { t } = useI18n();
  const [form] = Form.useForm();
  const step = useStep(order, "diagnosis", form);
  const codes = useFaultCodes(order.device.brand);
  return (
    <Form form={form} layout="vertical" name="diagnosis"
      // Taken again from `diagnosed`, it revises the diagnosis: start from the one on record.
      initialValues={order.diagnosis ?? undefined}
      onFinish={(v) => step.mutate({
      fault_code: v.fault_code,
      symptom_code: v.symptom_code ?? "",
      cause_code: v.cause_code ?? "",
      actions: v.actions ?? [],
      parts: (v.parts ?? []).map((p: { part_id: string; quantity: number }) => ({ part_id: p.part_id.trim(), quantity: p.quantity })),
      repair_level: v.repair_level,
    })}>
      <Form.Item name="fault_code" label={t("field.faultCode")} rules={[{ required: true, message: t("common.required") }]}>
        <Select showSearch optionFilterProp="label" options={codes("fault")} />
      </Form.Item>
      <Form.Item name="symptom_code" label={t("field.symptomCode")}>
        <Select showSearch allowClear optionFilterProp="label" options={codes("symptom")} />
      </Form.Item>
      <Form.Item name="cause_code" label={t("field.causeCode")}>
        <Select showSearch allowClear optionFilterProp="label" options={codes("cause")} />
      </Form.Item>
      <Form.Item name="actions" label={t("field.actions")} rules={codesRule(t, false)}>
        <Select mode="tags" tokenSeparators={[",", " "]} options={[{ value: "replace_screen" }, { value: "replace_battery" }, { value: MAINBOARD }, { value: "swap" }]} />
      </Form.Item>
      <Form.Item label={t("field.parts")}>
        <Form.List name="parts">
          {(fields, { add, remove }) => (
            <>
              {fields.map((field) => (
                <Space key={field.key} align="baseline">
                  <Form.Item name={[field.name, "part_id"]} rules={[{ required: true, whitespace: true, message: t("common.required") }, { max: SHORT }]}>
                    <Input placeholder={t("field.partId")} aria-label={t("field.partId")} />
                  </Form.Item>
                  <Form.Item name={[field.name, "quantity"]} initialValue={1} rules={[{ required: true, type: "integer", min: 1, max: 100 }]}>
                    <InputNumber min={1} max={100} aria-label={t("field.quantity")} />
                  </Form.Item>
                  <Button onClick={() => remove(field.name)}>−</Button>
                </Space>
              ))}
              {fields.length < 20 && <Button onClick={() => add()}>{t("field.addPart")}</Button>}
            </>
          )}
        </Form.List>
      </Form.Item>
      <Form.Item name="repair_level" label={t("field.repairLevel")} rules={[{ required: true, message: t("common.required") }]}>
        <Select showSearch options={REPAIR_LEVELS} />
      </Form.Item>
      <Submit busy={step.isPending} label={t("step.diagnosis")} />
    </Form>
  );
}

function yuanRule(t: (key: MessageKey) => string) {
  return {
    validator: (_: unknown, value: string | undefined) => {
      const fen = yuanToFen(value);
      return fen !== null && fen <= 100_000_000 ? Promise.resolve() : Promise.reject(new Error(t("common.required")));
    },
  };
}

export function QuoteForm({ order }: { order: Order }) {
  const { t } = useI18n();
  const [form] = Form.useForm();
  const step = useStep(order, "quote", form);
  const free = order.warranty.status === "in_warranty";
  return (
    <Form form={form} layout="vertical" name="quote" initialValues={{ labour_yuan: free ? "0" : "" }}
      onFinish={(v) => step.mutate({ labour_fen: yuanToFen(v.labour_yuan) ?? 0 })}>
      <Form.Item name="labour_yuan" label={t("field.labourYuan")} rules={[yuanRule(t)]}>
        <Input inputMode="decimal" />
      </Form.Item>
      <Submit busy={step.isPending} label={t("step.quote")} />
    </Form>
  );
}

interface DecisionProps<S extends "approval" | "qc" | "manager-approval"> {
  order: Order;
  step: S;
  label: MessageKey;
  /** A "no" needs a reason. */
  noteOnNo: boolean;
  toBody: (yes: boolean, note: string | null) => StepBodies[S];
}

function DecisionForm<S extends "approval" | "qc" | "manager-approval">({ order, step: name, label, noteOnNo, toBody }: DecisionProps<S>) {
  const { t } = useI18n();
  const [form] = Form.useForm();
  const step = useStep(order, name, form);
  const decided = Form.useWatch("yes", form);
  return (
    <Form form={form} layout="vertical" name={name} onFinish={(v) => step.mutate(toBody(v.yes, v.note?.trim() || null))}>
      <Form.Item name="yes" label={t(label)} rules={[{ required: true, message: t("common.required") }]}>
        <Radio.Group options={[{ value: true, label: t("common.yes") }, { value: false, label: t("common.no") }]} />
      </Form.Item>
      <Form.Item name="note" label={t("field.note")}
        rules={[{ max: NOTE }, { required: noteOnNo && decided === false, whitespace: true, message: t("common.required") }]}>
        <Input.TextArea rows={2} />
      </Form.Item>
      <Submit busy={step.isPending} label={t(STEP_LABELS[name])} />
    </Form>
  );
}

export function ApprovalForm({ order }: { order: Order }) {
  return (
    <DecisionForm order={order} step="approval" label="field.accepted" noteOnNo={false}
      toBody={(accepted, note) => ({ accepted, note })} />
  );
}

export function ManagerApprovalForm({ order }: { order: Order }) {
  return (
    <DecisionForm order={order} step="manager-approval" label="field.managerApproves" noteOnNo
      toBody={(approved, note) => ({ approved, note })} />
  );
}

export function QcForm({ order }: { order: Order }) {
  return (
    <DecisionForm order={order} step="qc" label="field.passed" noteOnNo
      toBody={(passed, note) => ({ passed, note })} />
  );
}

export function PartsForm({ order }: { order: Order }) {
  const { t } = useI18n();
  const [form] = Form.useForm();
  const step = useStep(order, "parts", form);
  const offered = order.lines.filter((line) => line.short && line.successor_part_id);
  return (
    <Form form={form} layout="vertical" name="parts" onFinish={(v) => step.mutate({
      substitutes: offered
        .filter((line) => (v.substitute ?? []).includes(line.line_id))
        .map((line) => ({ line_id: line.line_id, part_id: line.successor_part_id! })),
    })}>
      {offered.length > 0 && (
        <Form.Item name="substitute">
          <Checkbox.Group options={offered.map((line) => ({
            value: line.line_id,
            label: `${line.part_id} → ${line.successor_part_id}`,
            disabled: !line.successor_available,
          }))} />
        </Form.Item>
      )}
      <Submit busy={step.isPending} label={t("step.parts")} />
    </Form>
  );
}

export function RepairStartForm({ order }: { order: Order }) {
  const { t } = useI18n();
  const [form] = Form.useForm();
  const step = useStep(order, "repair/start", form);
  return (
    <Form form={form} name="repair-start" onFinish={() => step.mutate({})}>
      <Submit busy={step.isPending} label={t("step.repairStart")} />
    </Form>
  );
}

export function RepairFinishForm({ order }: { order: Order }) {
  const { t } = useI18n();
  const [form] = Form.useForm();
  const step = useStep(order, "repair/finish", form);
  const actions: string[] = Form.useWatch("actions_done", form) ?? [];
  const warrantyLines = order.lines.filter((line) => line.warranty);
  return (
    <Form form={form} layout="vertical" name="repair-finish"
      initialValues={{ actions_done: order.diagnosis?.actions ?? [], repair_level: order.diagnosis?.repair_level }}
      onFinish={(v) => step.mutate({
        actions_done: v.actions_done,
        repair_level: v.repair_level,
        old_parts_kept: v.old_parts_kept ?? [],
        new_imei: v.new_imei ? normaliseDigits(v.new_imei) : null,
      })}>
      <Form.Item name="actions_done" label={t("field.actionsDone")} rules={codesRule(t, true)}>
        <Select mode="tags" tokenSeparators={[",", " "]} />
      </Form.Item>
      <Form.Item name="repair_level" label={t("field.repairLevel")} rules={[{ required: true, message: t("common.required") }]}>
        <Select showSearch options={REPAIR_LEVELS} />
      </Form.Item>
      {warrantyLines.length > 0 && (
        <Form.Item name="old_parts_kept">
          <Checkbox.Group options={warrantyLines.map((line) => ({ value: line.line_id, label: `${line.line_id} ${line.part_id}` }))} />
        </Form.Item>
      )}
      {actions.includes(MAINBOARD) && (
        <Form.Item name="new_imei" label={t("field.newImei")} rules={[{
          validator: (_, value: string | undefined) => {
            const check = checkImei(value ?? "");
            if (check === "ok") return Promise.resolve();
            return Promise.reject(new Error(t(check === "luhn" ? "intake.imeiLuhn" : "intake.imeiLength")));
          },
        }]}>
          <Input inputMode="numeric" />
        </Form.Item>
      )}
      <Submit busy={step.isPending} label={t("step.repairFinish")} />
    </Form>
  );
}

export function PickupForm({ order }: { order: Order }) {
  const { t } = useI18n();
  const [form] = Form.useForm();
  const step = useStep(order, "pickup", form);
  const owed = order.status === "declined" ? 0 : (order.quote?.total_fen ?? 0);
  const amount = yuanToFen(Form.useWatch("amount_yuan", form)) ?? 0;
  return (
    <Form form={form} layout="vertical" name="pickup" initialValues={{ amount_yuan: fenToYuan(owed) }}
      onFinish={(v) => step.mutate({ method: v.method ?? null, amount_fen: yuanToFen(v.amount_yuan) ?? 0 })}>
      <Form.Item name="amount_yuan" label={t("field.amountYuan")} rules={[yuanRule(t)]}>
        <Input inputMode="decimal" />
      </Form.Item>
      <Form.Item name="method" label={t("field.method")} rules={[{ required: amount > 0, message: t("common.required") }]}>
        <Select allowClear options={(["cash", "card", "wechat_pay", "alipay"] as const).map((m) => ({ value: m, label: t(`method.${m}`) }))} />
      </Form.Item>
      <Submit busy={step.isPending} label={t("step.pickup")} />
    </Form>
  );
}

export const STEP_FORMS: Record<StepName, (props: { order: Order }) => React.ReactElement> = {
  diagnosis: DiagnosisForm,
  quote: QuoteForm,
  approval: ApprovalForm,
  "manager-approval": ManagerApprovalForm,
  parts: PartsForm,
  "repair/start": RepairStartForm,
  "repair/finish": RepairFinishForm,
  qc: QcForm,
  pickup: PickupForm,
};
