import { useQuery } from "@tanstack/react-query";
import { Alert, Button, Space, Spin } from "antd";
import QRCode from "qrcode";
import { useEffect, useRef } from "react";
import { useParams } from "react-router-dom";
import { api, type Order, unwrap } from "../api/client";
import { useI18n } from "../i18n";
import type { MessageKey } from "../i18n/zh-CN";
import { trackingAddress } from "../lib/slip";
import { shanghaiTime } from "../lib/time";
import "./slip.css";

/** 受理单: what was taken in, for the customer to keep, with the tracking link as a QR code. */
export default function IntakeSlip() {
  const { orderId = "" } = useParams();
  const { t } = useI18n();
  const canvas = useRef<HTMLCanvasElement>(null);
  const order = useQuery({
    queryKey: ["order", orderId],
    queryFn: async (): Promise<Order> => unwrap(await api.GET("/api/v1/repair-orders/{order_id}", { params: { path: { order_id: orderId } } })),
  });
  // The link is made as the order is taken in, a moment after: ask again for a while.
  const link = useQuery({
    queryKey: ["tracking-link", orderId],
    queryFn: async () => unwrap(await api.GET("/api/v1/repair-orders/{order_id}/tracking-link", { params: { path: { order_id: orderId } } })),
    retry: 20,
    retryDelay: 1000,
  });
  const address = link.data ? trackingAddress(link.data.url, window.location.origin) : null;
  useEffect(() => {
    if (address && canvas.current) void QRCode.toCanvas(canvas.current, address, { width: 160, margin: 1 });
  }, [address]);
  if (order.error) return <Alert type="error" title={(order.error as Error).message} />;
  if (!order.data) return <Spin />;
  const o = order.data;
  return (
    <>
      <Space className="no-print" style={{ marginBottom: 16 }}>
        <Button type="primary" onClick={() => window.print()}>{t("slip.print")}</Button>
      </Space>
      <div className="slip" data-testid="intake-slip">
        <h2>{t("slip.title")}</h2>
        <table>
          <tbody>
            <tr><td>{t("track.number")}</td><td>{o.number}</td></tr>
            <tr><td>{t("board.store")}</td><td>{o.store_id}</td></tr>
            <tr><td>{t("board.received")}</td><td>{shanghaiTime(o.received_at)}</td></tr>
            <tr><td>{t("board.customer")}</td><td>{o.customer.name} {o.customer.phone}</td></tr>
            <tr><td>{t("detail.device")}</td><td>{o.device.brand} {o.device.model} · IMEI {o.current_imei}</td></tr>
            <tr><td>{t("detail.fault")}</td><td>{o.fault.description}</td></tr>
            <tr><td>{t("intake.accessories")}</td><td>{o.accessories ?? ""}</td></tr>
            <tr><td>{t("intake.appearance")}</td><td>{o.appearance ?? ""}</td></tr>
            <tr><td>{t("detail.warranty")}</td><td>{t(`warranty.${o.warranty.status}` as MessageKey)}</td></tr>
            <tr><td>{t("board.promised")}</td><td>{o.promised_date ?? ""}</td></tr>
          </tbody>
        </table>
        <div className="qr">
          {address ? (
            <>
              <canvas ref={canvas} aria-label={t("slip.scan")} data-testid="slip-qr" />
              <div>{t("slip.scan")}</div>
              <div style={{ wordBreak: "break-all", fontSize: 11 }}>{address}</div>
            </>
          ) : link.error ? (
            <div>{t("slip.noLink")}</div>
          ) : (
            <Spin />
          )}
        </div>
        <div className="signature">{t("slip.signature")}</div>
      </div>
    </>
  );
}
