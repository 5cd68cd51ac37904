/** Reads an IMEI from a box's or a phone's barcode with the tablet's camera: the browser's own
 * BarcodeDetector where it has one, else the bundled ZXing decoder (loaded only when asked for;
 * nothing comes from the internet). */
import { Alert, Button, Space } from "antd";
import { useEffect, useRef, useState } from "react";
import { useI18n } from "../i18n";
import { imeiFromBarcode, scannerKind } from "../lib/barcode";

interface Detector {
  detect(source: HTMLVideoElement): Promise<{ rawValue: string }[]>;
}
type DetectorClass = new (options: { formats: string[] }) => Detector;

async function scanNative(video: HTMLVideoElement, stream: MediaStream, found: (text: string) => boolean, stopped: () => boolean) {
  video.srcObject = stream;
  await video.play();
  const Native = (window as unknown as { BarcodeDetector: DetectorClass }).BarcodeDetector;
  const detector = new Native({ formats: ["code_128", "code_39", "ean_13", "qr_code", "data_matrix"] });
  while (!stopped()) {
    const codes = await detector.detect(video).catch(() => []);
    if (codes.some((code) => found(code.rawValue))) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export default function ImeiScanner({ onRead }: { onRead: (imei: string) => void }) {
  const { t } = useI18n();
  const video = useRef<HTMLVideoElement>(null);
  const [scanning, setScanning] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);

  useEffect(() => {
    if (!scanning || !video.current) return;
    let stopped = false;
    let stream: MediaStream | null = null;
    let stopLibrary: (() => void) | null = null;
    const found = (text: string) => {
      const imei = imeiFromBarcode(text);
      if (imei) {
        onRead(imei);
        setScanning(false);
      }
      return imei !== null;
    };
    (async () => {
      try {
        if (scannerKind(window as { BarcodeDetector?: unknown }) === "native") {
          stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
          await scanNative(video.current!, stream, found, () => stopped);
        } else {
          const { BrowserMultiFormatReader } = await import("@zxing/browser");
          const controls = await new BrowserMultiFormatReader().decodeFromConstraints(
            { video: { facingMode: "environment" } },
            video.current!,
            (result) => {
              if (result) found(result.getText());
            },
          );
          stopLibrary = () => controls.stop();
          if (stopped) stopLibrary();
        }
      } catch (error) {
        setProblem(error instanceof Error ? error.message : String(error));
        setScanning(false);
      }
    })();
    return () => {
      stopped = true;
      stopLibrary?.();
      stream?.getTracks().forEach((track) => track.stop());
    };
  }, [scanning, onRead]);

  return (
    <Space orientation="vertical" style={{ width: "100%" }}>
      <Button onClick={() => { setProblem(null); setScanning(!scanning); }} data-testid="imei-scan">
        {t(scanning ? "intake.scanStop" : "intake.scan")}
      </Button>
      {problem && <Alert type="warning" title={t("intake.scanFailed", { reason: problem })} />}
      <video ref={video} muted playsInline style={{ display: scanning ? "block" : "none", width: "100%", maxWidth: 360 }} />
    </Space>
  );
}
