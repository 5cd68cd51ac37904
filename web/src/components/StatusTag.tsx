import { Tag } from "antd";
import { hasMessage, useI18n } from "../i18n";

const COLOURS: Record<string, string> = {
  received: "blue",
  diagnosed: "cyan",
  awaiting_approval: "gold",
  approved: "geekblue",
  waiting_parts: "orange",
  in_repair: "purple",
  quality_check: "magenta",
  ready_for_pickup: "green",
  closed: "default",
  cancelled: "default",
  declined: "volcano",
};

export function useStatusLabel() {
  const { t } = useI18n();
  return (status: string) => {
    const key = `status.${status}`;
    return hasMessage(key) ? t(key) : status;
  };
}

export default function StatusTag({ status }: { status: string }) {
  const label = useStatusLabel();
  return <Tag color={COLOURS[status] ?? "default"}>{label(status)}</Tag>;
}
