import { App as AntApp, ConfigProvider } from "antd";
import enUS from "antd/locale/en_US";
import zhCN from "antd/locale/zh_CN";
import dayjs from "dayjs";
import "dayjs/locale/zh-cn";
import { lazy, Suspense, useEffect } from "react";
import { Navigate, Route, Routes, useLocation, useNavigate } from "react-router-dom";
import { onUnauthenticated } from "./api/client";
import { getToken } from "./api/token";
import ConsoleLayout from "./components/ConsoleLayout";
import { useI18n } from "./i18n";
import { homeFor, mayTakeIn } from "./lib/roles";
import NotFound from "./pages/NotFound";
import { useMe } from "./session";

// Each screen its own chunk: a customer's phone on the tracking link loads none of the console.
const IntakePage = lazy(() => import("./pages/IntakePage"));
const LoginPage = lazy(() => import("./pages/LoginPage"));
const OrderBoard = lazy(() => import("./pages/OrderBoard"));
const OrderDetail = lazy(() => import("./pages/OrderDetail"));
const TrackingPage = lazy(() => import("./pages/TrackingPage"));

function RequireSignIn({ children }: { children: React.ReactNode }) {
  const location = useLocation();
  if (getToken() === null) {
    const next = encodeURIComponent(location.pathname + location.search);
    return <Navigate to={`/login?next=${next}`} replace />;
  }
  return <>{children}</>;
}

function Home() {
  const me = useMe();
  if (!me.data) return null;
  return <Navigate to={homeFor(me.data)} replace />;
}

function IntakeIfAllowed() {
  const me = useMe();
  if (!me.data) return null;
  return mayTakeIn(me.data) ? <IntakePage me={me.data} /> : <NotFound />;
}

export default function App() {
  const { language } = useI18n();
  const navigate = useNavigate();
  useEffect(() => {
    dayjs.locale(language === "zh-CN" ? "zh-cn" : "en");
    document.documentElement.lang = language;
  }, [language]);
  useEffect(() => {
    onUnauthenticated((back) => navigate(`/login?next=${encodeURIComponent(back)}&expired=1`, { replace: true }));
  }, [navigate]);
  return (
    <ConfigProvider
      locale={language === "zh-CN" ? zhCN : enUS}
      theme={{ token: { colorPrimary: "#1f6feb" } }}
      // "登录", not "登 录": the same name on screen and for a screen reader.
      button={{ autoInsertSpace: false }}
    >
      <AntApp>
        <Suspense fallback={null}>
        <Routes>
          <Route path="/login" element={<LoginPage />} />
          <Route path="/track/:token" element={<TrackingPage />} />
          <Route
            element={
              <RequireSignIn>
                <ConsoleLayout />
              </RequireSignIn>
            }
          >
            <Route index element={<Home />} />
            <Route path="/orders" element={<OrderBoard />} />
            <Route path="/orders/:orderId" element={<OrderDetail />} />
            <Route path="/intake" element={<IntakeIfAllowed />} />
            <Route path="*" element={<NotFound />} />
          </Route>
        </Routes>
        </Suspense>
      </AntApp>
    </ConfigProvider>
  );
}
