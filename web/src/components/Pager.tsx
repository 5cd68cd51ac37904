import { Button, Space } from "antd";
import { useSearchParams } from "react-router-dom";
import { useI18n } from "../i18n";
import { pageQuery } from "../lib/paging";

/** First and next page of a cursor-paged list whose place is in the address. */
export default function Pager({ next }: { next: string | null | undefined }) {
  const { t } = useI18n();
  const [params, setParams] = useSearchParams();
  return (
    <Space>
      <Button disabled={!params.get("cursor")} onClick={() => setParams(pageQuery(params, {}))}>
        {t("board.first")}
      </Button>
      <Button type="primary" disabled={!next} onClick={() => setParams(pageQuery(params, {}, next ?? ""))}>
        {t("board.next")}
      </Button>
    </Space>
  );
}
