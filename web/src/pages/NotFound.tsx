import { Result } from "antd";
import { Link } from "react-router-dom";
import { useI18n } from "../i18n";

export default function NotFound() {
  const { t } = useI18n();
  return <Result status="404" title={t("common.notFound")} extra={<Link to="/">{t("common.back")}</Link>} />;
}
