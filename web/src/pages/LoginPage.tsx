import { useQueryClient } from "@tanstack/react-query";
import { Alert, Button, Card, Form, Input, Typography } from "antd";
import { useState } from "react";
import { useNavigate, useSearchParams } from "react-router-dom";
import { ApiProblem, signIn } from "../api/client";
import { useI18n } from "../i18n";
import { safeReturnPath } from "../session";

interface Credentials {
  username: string;
  password: string;
}

export default function LoginPage() {
  const { t, language, setLanguage } = useI18n();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const queries = useQueryClient();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(values: Credentials) {
    setBusy(true);
    setError(null);
    try {
      await signIn(values.username.trim(), values.password);
      queries.clear();
      navigate(safeReturnPath(params.get("next")) ?? "/", { replace: true });
    } catch (failure) {
      setError(failure instanceof ApiProblem && failure.status === 401 ? t("login.failed") : (failure as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main style={{ display: "flex", justifyContent: "center", padding: "10vh 16px" }}>
      <Card style={{ width: 360 }}>
        <Typography.Title level={3}>{t("app.title")}</Typography.Title>
        {params.get("expired") && <Alert type="warning" title={t("login.expired")} style={{ marginBottom: 16 }} />}
        {error && <Alert type="error" title={error} role="alert" style={{ marginBottom: 16 }} />}
        <Form<Credentials> layout="vertical" onFinish={submit} requiredMark={false}>
          <Form.Item name="username" label={t("login.username")} rules={[{ required: true, message: t("common.required") }]}>
            <Input autoComplete="username" autoFocus />
          </Form.Item>
          <Form.Item name="password" label={t("login.password")} rules={[{ required: true, message: t("common.required") }]}>
            <Input.Password autoComplete="current-password" />
          </Form.Item>
          <Button type="primary" htmlType="submit" block loading={busy}>
            {t("login.submit")}
          </Button>
        </Form>
        <Button type="link" onClick={() => setLanguage(language === "zh-CN" ? "en" : "zh-CN")} style={{ marginTop: 8 }}>
          {t("app.language")}
        </Button>
      </Card>
    </main>
  );
}
