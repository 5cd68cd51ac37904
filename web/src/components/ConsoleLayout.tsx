import { useQueryClient } from "@tanstack/react-query";
import { Button, Layout, Menu, Space, Spin, Typography } from "antd";
import { Suspense } from "react";
import { Link, Outlet, useLocation, useNavigate } from "react-router-dom";
import { signOut } from "../api/client";
import { useI18n } from "../i18n";
import { menuFor } from "../lib/roles";
import { useMe } from "../session";

/** The frame of every signed-in screen: the menu the user's role allows, who they are, the
 * language, and signing out. */
export default function ConsoleLayout() {
  const { t, language, setLanguage } = useI18n();
  const me = useMe();
  const location = useLocation();
  const navigate = useNavigate();
  const queries = useQueryClient();
  // The screen loads its own data beside /me rather than after it; the menu follows when the
  // role is known.
  const entries = me.data ? menuFor(me.data) : [];
  const selected = entries.filter((e) => location.pathname.startsWith(e.path)).map((e) => e.path);
  return (
    <Layout style={{ minHeight: "100vh" }}>
      <Layout.Header style={{ display: "flex", alignItems: "center", gap: 24, paddingInline: 24 }}>
        <Typography.Text strong style={{ color: "#fff", whiteSpace: "nowrap" }}>
          {t("app.title")}
        </Typography.Text>
        <Menu
          theme="dark"
          mode="horizontal"
          selectedKeys={selected}
          style={{ flex: 1, minWidth: 0 }}
          items={entries.map((e) => ({ key: e.path, label: <Link to={e.path}>{t(e.label)}</Link> }))}
        />
        <Space>
          {me.data ? (
            <Typography.Text style={{ color: "#fff" }} data-testid="whoami">
              {me.data.display_name} · {me.data.org_unit.name}
            </Typography.Text>
          ) : (
            <Spin size="small" aria-label={t("common.loading")} />
          )}
          <Button size="small" onClick={() => setLanguage(language === "zh-CN" ? "en" : "zh-CN")}>
            {t("app.language")}
          </Button>
          <Button
            size="small"
            onClick={() => {
              signOut();
              queries.clear();
              navigate("/login", { replace: true });
            }}
          >
            {t("app.logout")}
          </Button>
        </Space>
      </Layout.Header>
      <Layout.Content style={{ padding: 24 }}>
        {/* The frame (and its /me) shows while a screen's chunk is still on its way. */}
        <Suspense fallback={<Spin aria-label={t("common.loading")} />}>
          <Outlet />
        </Suspense>
      </Layout.Content>
    </Layout>
  );
}
