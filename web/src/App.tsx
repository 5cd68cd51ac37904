import { App as AntApp, ConfigProvider } from "antd";
import dayjs from "dayjs";
import "dayjs/locale/zh-cn";
import { lazy, Suspense, useEffect } from "react";
import { Navigate, Route, Routes, useLocation, useNavigate } from "react-router-dom";
import { onUnauthenticated } from "./api/client";
import { getToken } from "./api/token";
import ConsoleLayout from "./components/ConsoleLayout";
import { antdLocale, useI18n } from "./i18n";
import { homeFor, mayAdminister, mayApprove, mayFollowUp, mayKeepStock, mayReport, mayTakeIn, type Scope } from "./lib/roles";
import NotFound from "./pages/NotFound";
import { useMe } from "./session";
import { loadOrderBoard } from "./startup";

// Each screen its own chunk: a customer's phone on the tracking link loads none of the console.
const IntakePage = lazy(() => import("./pages/IntakePage"));
const LoginPage = lazy(() => import("./pages/LoginPage"));
const OrderBoard = lazy(loadOrderBoard);
const OrderDetail = lazy(() => import("./pages/OrderDetail"));
const TrackingPage = lazy(() => import("./pages/TrackingPage"));
const StockPage = lazy(() => import("./pages/StockPage"));
const TransfersPage = lazy(() => import("./pages/TransfersPage"));
const TransferDetail = lazy(() => import("./pages/TransferDetail"));
const StocktakesPage = lazy(() => import("./pages/StocktakesPage"));
const StocktakeDetail = lazy(() => import("./pages/StocktakesPage").then((m) => ({ default: m.StocktakeDetail })));
const PurchasingPage = lazy(() => import("./pages/PurchasingPage"));
const ApprovalsPage = lazy(() => import("./pages/ApprovalsPage"));
const ComplaintsPage = lazy(() => import("./pages/ComplaintsPage"));
const ComplaintDetail = lazy(() => import("./pages/ComplaintsPage").then((m) => ({ default: m.ComplaintDetail })));
const FollowUpDetail = lazy(() => import("./pages/ComplaintsPage").then((m) => ({ default: m.FollowUpDetail })));
const Dashboard = lazy(() => import("./pages/Dashboard"));
const FigureOrders = lazy(() => import("./pages/Dashboard").then((m) => ({ default: m.FigureOrders })));
const BaseDataPage = lazy(() => import("./pages/BaseDataPage"));
const IntakeSlip = lazy(() => import("./pages/IntakeSlip"));
const AdminPage = lazy(() => import("./pages/AdminPage"));

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

/** A screen only for the roles `allowed` admits; the API refuses the rest anyway. */
function Allowed({ allowed, children }: { allowed: (scope: Scope) => boolean; children: React.ReactNode }) {
  const me = useMe();
  if (!me.data) return null;
  return allowed(me.data) ? <>{children}</> : <NotFound />;
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
      locale={antdLocale(language)}
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
            <Route path="/orders/:orderId/slip" element={<IntakeSlip />} />
            <Route path="/intake" element={<IntakeIfAllowed />} />
            <Route path="/queue" element={<OrderBoard queue />} />
            <Route path="/stock" element={<Allowed allowed={mayKeepStock}><StockPage /></Allowed>} />
            <Route path="/transfers" element={<Allowed allowed={mayKeepStock}><TransfersPage /></Allowed>} />
            <Route path="/transfers/:transferId" element={<TransferDetail />} />
            <Route path="/stocktakes" element={<Allowed allowed={mayKeepStock}><StocktakesPage /></Allowed>} />
            <Route path="/stocktakes/:stocktakeId" element={<StocktakeDetail />} />
            <Route path="/purchasing" element={<Allowed allowed={mayKeepStock}><PurchasingPage /></Allowed>} />
            <Route path="/approvals" element={<Allowed allowed={mayApprove}><ApprovalsPage /></Allowed>} />
            <Route path="/complaints" element={<Allowed allowed={mayFollowUp}><ComplaintsPage /></Allowed>} />
            <Route path="/complaints/:complaintId" element={<ComplaintDetail />} />
            <Route path="/follow-ups/:followUpId" element={<FollowUpDetail />} />
            <Route path="/dashboard" element={<Allowed allowed={mayReport}><Dashboard /></Allowed>} />
            <Route path="/dashboard/orders" element={<Allowed allowed={mayReport}><FigureOrders /></Allowed>} />
            <Route path="/base-data" element={<Allowed allowed={mayAdminister}><BaseDataPage /></Allowed>} />
            <Route path="/admin" element={<Allowed allowed={mayAdminister}><AdminPage /></Allowed>} />
            <Route path="*" element={<NotFound />} />
          </Route>
        </Routes>
        </Suspense>
      </AntApp>
    </ConfigProvider>
  );
}
