import { useQuery } from "@tanstack/react-query";
import { Card, ConfigProvider, Result, Skeleton, Steps, Typography } from "antd";
import { useEffect } from "react";
import { useParams, useSearchParams } from "react-router-dom";
import { type Language, antdLocale, asLanguage, format, hasMessage, useLanguageReady } from "../i18n";
import type { MessageKey } from "../i18n/zh-CN";
import { shanghaiTime } from "../lib/time";
import type { components } from "../api/schema";

type Tracking = components["schemas"]["Tracking"];

class TrackingGone extends Error {
  constructor(readonly status: number) {
    super(`tracking answered ${status}`);
  }
}

/** The customer's page behind the SMS link (进度查询): no sign-in, phone-sized first, the
 * order's status and steps in Shanghai time, nothing personal. The page and its data share
 * the link's address: the gateway answers a browser with this page and this page's own
 * request (Accept: application/json) with the data. */
export default function TrackingPage() {
  const { token = "" } = useParams();
  const [params] = useSearchParams();
  // The SMS names the order's language (?lang=en); else the phone's own.
  const language: Language = asLanguage(params.get("lang")) ?? asLanguage(navigator.language) ?? "zh-CN";
  const ready = useLanguageReady(language);
  const t = (key: MessageKey, values?: Record<string, string | number>) => format(language, key, values);
  useEffect(() => {
    if (!ready) return;
    document.documentElement.lang = language;
    document.title = format(language, "track.title");
  }, [language, ready]);
  const tracking = useQuery({
    queryKey: ["track", token],
    queryFn: async (): Promise<Tracking> => {
      const response = await fetch(`/track/${encodeURIComponent(token)}`, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new TrackingGone(response.status);
      return (await response.json()) as Tracking;
    },
    retry: false,
  });
  const status = (s: string) => {
    const key = `status.${s}`;
    return hasMessage(key) ? t(key) : s;
  };

  let body;
  if (tracking.error) {
    const busy = tracking.error instanceof TrackingGone && tracking.error.status === 429;
    body = busy ? (
      <Result status="warning" title={t("track.busy")} />
    ) : (
      <Result status="info" title={t("track.gone")} subTitle={t("track.goneHelp")} />
    );
  } else if (!tracking.data) {
    body = <Skeleton active />;
  } else {
    const d = tracking.data;
    body = (
      <>
        <Typography.Paragraph type="secondary" style={{ marginBottom: 4 }}>
          {t("track.number")} {d.number}
        </Typography.Paragraph>
        <Typography.Title level={3} style={{ marginTop: 0 }} data-testid="track-status">
          {status(d.status)}
        </Typography.Title>
        <dl style={{ display: "grid", gridTemplateColumns: "auto 1fr", gap: "4px 12px", margin: "0 0 16px" }}>
          <dt>{t("track.store")}</dt>
          <dd style={{ margin: 0 }}>{d.store_id}</dd>
          <dt>{t("track.received")}</dt>
          <dd style={{ margin: 0 }}>{shanghaiTime(d.received_at)}</dd>
          {d.promised_date && (
            <>
              <dt>{t("track.promised")}</dt>
              <dd style={{ margin: 0 }}>{d.promised_date}</dd>
            </>
          )}
        </dl>
        <Typography.Title level={5}>{t("track.steps")}</Typography.Title>
        <Steps
          orientation="vertical"
          size="small"
          current={d.steps.length - 1}
          items={d.steps.map((step) => ({ title: status(step.status), content: `${shanghaiTime(step.at)}` }))}
        />
        <Typography.Paragraph type="secondary" style={{ fontSize: 12 }}>
          {t("track.updated", { time: shanghaiTime(d.updated_at) })}
        </Typography.Paragraph>
      </>
    );
  }
  if (!ready) return null;
  return (
    <ConfigProvider locale={antdLocale(language)} theme={{ token: { fontSize: 16 } }}>
      <main style={{ maxWidth: 480, margin: "0 auto", padding: 16 }}>
        <Card title={t("track.title")}>{body}</Card>
      </main>
    </ConfigProvider>
  );
}
