// The console in Debian's Chromium against the real system (scripts/run_web_e2e.py starts it):
// a clerk's intake → order board → order detail, a technician's diagnosis through the step
// form, another store's clerk kept out, and the customer's tracking page on a phone.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, afterEach, before, test as nodeTest } from "node:test";
import { chromium } from "playwright-core";

const BASE = process.env.GATEWAY_URL;
// E2E_ONLY=<words of a walk's name> runs that walk alone (those that stand on their own).
const ONLY = process.env.E2E_ONLY;
const test = (name, fn) => nodeTest(name, { skip: Boolean(ONLY) && !name.includes(ONLY) }, fn);
const PASSWORD = process.env.DEMO_PASSWORD;
const RESULTS = process.env.E2E_RESULTS;
// The flags these closed-network machines need (the library's machine page).
const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let browser;
const shared = {};

before(async () => {
  assert.ok(BASE, "GATEWAY_URL: run through `make web-e2e`");
  // Playwright starts Chromium on a new, empty profile (--user-data-dir in a temporary folder).
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: FLAGS,
  });
});

after(async () => {
  await browser?.close();
});

/** A fresh context (its own sessionStorage), collecting CSP refusals, page errors and any
 * request that would leave the gateway. Not Shanghai's zone: the pages must show Shanghai
 * times anyway. */
async function newPage(options = {}) {
  const context = await browser.newContext({
    viewport: { width: 1366, height: 900 },
    locale: "zh-CN",
    timezoneId: "Europe/London",
    ...options,
  });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  open.add(page);
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("request", (r) => {
    if (!r.url().startsWith(BASE) && !r.url().startsWith("data:")) problems.push(`left the gateway: ${r.url()}`);
  });
  return { context, page, problems };
}

/** Each test's page, shot when the test fails. */
const open = new Set();

afterEach(async (t) => {
  let i = 0;
  for (const page of open) {
    i += 1;
    if (!page.isClosed()) await shot(page, `FAILED-${t.name.slice(0, 40).replace(/\W+/g, "-")}-${i}`).catch(() => {});
  }
  open.clear();
});

async function shot(page, name) {
  await page.screenshot({ path: join(RESULTS, `${name}.png`), fullPage: true });
}

// The README's pictures of each main screen: the visible part only, so the files stay small.
const SCREENSHOTS = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "docs", "screenshots");

async function keep(page, name) {
  await shot(page, name);
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.waitForLoadState("networkidle").catch(() => {});
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

async function signIn(page, username) {
  await page.getByLabel("用户名").fill(username);
  await page.getByLabel("密码").fill(PASSWORD);
  await page.getByRole("button", { name: "登录" }).click();
}

function luhnDigit(body) {
  for (let d = 0; d <= 9; d++) {
    const digits = body + d;
    let sum = 0;
    for (let i = 0; i < digits.length; i++) {
      let n = Number(digits[digits.length - 1 - i]);
      if (i % 2 === 1) n = n * 2 > 9 ? n * 2 - 9 : n * 2;
      sum += n;
    }
    if (sum % 10 === 0) return String(d);
  }
  throw new Error("no check digit");
}

const randomDigits = (n) => Array.from({ length: n }, () => Math.floor(Math.random() * 10)).join("");
const fullWidth = (digits) => [...digits].map((d) => String.fromCharCode(0xff10 + Number(d))).join("");
const shanghaiDay = (offsetDays) =>
  new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai" }).format(new Date(Date.now() + offsetDays * 86_400_000));

/** Choose in a select as a keyboard user does: type, then Enter takes the first match. */
async function pick(page, label, text) {
  const select = page.getByLabel(label);
  await select.click();
  await select.fill(text);
  await page.locator(".ant-select-item-option-active", { hasText: text }).waitFor();
  await select.press("Enter");
}

test("a clerk takes an order in, finds it on the board and opens it", async () => {
  const { context, page, problems } = await newPage();
  const imei = "86" + randomDigits(12);
  const goodImei = imei + luhnDigit(imei);
  const badImei = imei + String((Number(luhnDigit(imei)) + 1) % 10);
  const phone = "139" + randomDigits(8);
  shared.phone = phone;
  shared.imei = goodImei;
  shared.name = "李测试" + randomDigits(3);

  // A deep link before signing in leads to the sign-in, and back after it.
  await page.goto(`${BASE}/intake`);
  await page.waitForURL(/\/login\?next=%2Fintake/);
  await keep(page, "01-login");
  await signIn(page, "sh001.clerk");
  await page.waitForURL(`${BASE}/intake`);
  await page.getByRole("heading", { name: "受理登记" }).waitFor();

  await page.getByLabel("手机号").fill(phone);
  await page.getByRole("button", { name: "查找客户" }).click();
  await page.getByText("新客户").waitFor();
  await page.getByLabel("姓名").fill(shared.name);

  // The IMEI is checked by Luhn as it is typed; full-width digits are made ASCII.
  await page.getByLabel("IMEI").fill(badImei);
  await page.getByText("IMEI 校验位不正确，请核对").waitFor();
  await page.getByLabel("IMEI").fill(fullWidth(goodImei));
  await page.getByText("IMEI 校验通过").waitFor();
  assert.equal(await page.getByLabel("IMEI").inputValue(), goodImei);

  await pick(page, "品牌", "Huawei");
  await pick(page, "型号", "P60");
  // Bought 30 days ago: in warranty, shown before saving.
  await page.getByLabel("购买日期").fill(shanghaiDay(-30));
  await page.getByLabel("购买日期").press("Tab");
  const preview = page.getByTestId("warranty-preview");
  await preview.getByText("保修预判: 保内").waitFor();
  await page.getByLabel("故障描述").fill("屏幕碎裂，触摸失灵");
  await keep(page, "02-intake");

  await page.getByRole("button", { name: "保存受理单" }).click();
  await page.waitForURL(/\/orders\/[^/]+$/);
  const orderId = page.url().split("/").pop();
  shared.orderId = orderId;
  const heading = page.getByRole("heading", { name: /^工单 / });
  shared.number = (await heading.innerText()).replace(/^工单\s*/, "").trim();
  await page.getByText("已受理").first().waitFor();
  await page.getByText("保内").first().waitFor();

  // The board lists it, its number a real link to the order.
  await page.getByRole("link", { name: "工单看板" }).click();
  await page.waitForURL(`${BASE}/orders`);
  const link = page.getByRole("link", { name: shared.number });
  await link.waitFor();
  assert.equal(await link.getAttribute("href"), `/orders/${orderId}`);
  await keep(page, "03-board");
  await link.click();
  await page.waitForURL(`${BASE}/orders/${orderId}`);
  await page.getByText("处理进度").waitFor();
  // A clerk has no step to take on a received repair: the technician diagnoses.
  await page.getByText("您的角色当前无可执行的操作").waitFor();
  await shot(page, "04-detail-clerk");
  assert.deepEqual(problems, []);
  await context.close();
});

test("a technician diagnoses it through the step form (If-Match and Idempotency-Key sent)", async () => {
  const { context, page, problems } = await newPage();
  await page.goto(`${BASE}/orders/${shared.orderId}`);
  await page.waitForURL(/\/login\?next=/);
  await signIn(page, "sh001.tech");
  await page.waitForURL(`${BASE}/orders/${shared.orderId}`);
  const form = page.locator("form#diagnosis");
  await form.waitFor();
  // Validated before sending: nothing goes out without the required fields.
  await form.getByRole("button", { name: "检测" }).click();
  await form.getByText("必填").first().waitFor();
  const sent = [];
  page.on("request", (r) => {
    if (r.method() === "POST") sent.push(r.headers());
  });
  await pick(page, "故障代码", "F-LCD");
  await pick(page, "维修级别", "L2");
  await form.getByRole("button", { name: "检测" }).click();
  await page.locator(".ant-tag", { hasText: "已检测" }).waitFor();
  assert.equal(sent.length, 1);
  assert.equal(sent[0]["if-match"], '"1"');
  assert.match(sent[0]["idempotency-key"], /^[0-9a-f-]{36}$/);
  await keep(page, "05-detail-diagnosed");
  assert.deepEqual(problems, []);
  await context.close();
});

/** Signed in as `username` on the order's page. */
async function onOrder(username) {
  const opened = await newPage();
  await opened.page.goto(`${BASE}/orders/${shared.orderId}`);
  await signIn(opened.page, username);
  await opened.page.waitForURL(`${BASE}/orders/${shared.orderId}`);
  return opened;
}

/** Open a step's tab, fill its form with `fill`, send it, and wait for the status it leads to. */
async function takeStep(page, tab, formId, fill, status) {
  await page.getByRole("tab", { name: tab }).click();
  const form = page.locator(`form#${formId}`);
  await form.waitFor();
  await fill(form);
  await form.getByRole("button", { name: tab }).click();
  await page.locator(".ant-tag", { hasText: new RegExp(`^${status}$`) }).waitFor();
}

test("the order goes through quote, approval, repair, QC and pickup on its step forms", async () => {
  const tech = await onOrder("sh001.tech");
  const clerk = await onOrder("sh001.clerk");
  const nothing = async () => {};
  const yes = async (form) => form.getByText("是", { exact: true }).click();
  // In warranty: the labour is free, and the form starts from 0.
  await takeStep(tech.page, "报价", "quote", async (form) => {
    assert.equal(await form.getByLabel("工时费（元）").inputValue(), "0");
  }, "待客户确认");
  await clerk.page.reload();
  await takeStep(clerk.page, "客户确认", "approval", yes, "已确认");
  await tech.page.reload();
  await takeStep(tech.page, "开始维修", "repair-start", nothing, "维修中");
  await takeStep(tech.page, "维修完成", "repair-finish", async (form) => {
    const actions = form.getByLabel("已完成的维修动作");
    await actions.fill("replace_screen");
    await actions.press("Enter");
  }, "质检中");
  await takeStep(tech.page, "质检", "qc", yes, "待取机");
  await clerk.page.reload();
  await takeStep(clerk.page, "取机", "pickup", async (form) => {
    assert.equal(await form.getByLabel("收款金额（元）").inputValue(), "0.00");
  }, "已完成");
  await keep(clerk.page, "06-detail-closed");
  assert.deepEqual([...tech.problems, ...clerk.problems], []);
  await tech.context.close();
  await clerk.context.close();
});

async function apiToken(username) {
  const form = new URLSearchParams({ username, password: PASSWORD });
  const signedIn = await fetch(`${BASE}/api/v1/auth/token`, { method: "POST", body: form });
  return (await signedIn.json()).access_token;
}

/** From navigation start until the board's first row shows, in ms. */
async function boardLoad(page) {
  const started = Date.now();
  await page.goto(`${BASE}/orders`);
  await page.locator(".ant-table-row").first().waitFor();
  return Date.now() - started;
}

test("the order board's first load, cold and warm, is measured", async () => {
  // Signed in beforehand (the tab's session holds the token), so only the board is timed.
  const token = await apiToken("sh001.clerk");
  const { context, page, problems } = await newPage();
  await context.addInitScript((value) => sessionStorage.setItem("console.token", value), token);
  // Cold: a new browser context, nothing cached; warm: the same tab loading it again.
  const cold = await boardLoad(page);
  const warms = [await boardLoad(page), await boardLoad(page), await boardLoad(page)].sort((a, b) => a - b);
  const warm = warms[1]; // the median of three
  writeFileSync(join(RESULTS, "board-load.json"), JSON.stringify({ cold_ms: cold, warm_ms: warm }) + "\n");
  console.log(`order board first load: cold ${cold} ms, warm ${warm} ms`);
  assert.deepEqual(problems, []);
  await context.close();
});

test("another store's clerk cannot reach the order by its address", async () => {
  const { context, page } = await newPage();
  await page.goto(`${BASE}/orders/${shared.orderId}`);
  await signIn(page, "sh002.clerk");
  await page.waitForURL(`${BASE}/orders/${shared.orderId}`);
  await page.getByText("没有找到该页面").waitFor();
  assert.equal(await page.getByText(shared.name).count(), 0);
  await context.close();
});

async function trackingToken() {
  const token = await apiToken("sh001.clerk");
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const reply = await fetch(`${BASE}/api/v1/repair-orders/${shared.orderId}/tracking-link`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    if (reply.ok) return (await reply.json()).token;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  throw new Error("no tracking link within 30 s");
}

test("the customer's tracking page on a phone: status and steps, nothing personal", async () => {
  const token = await trackingToken();
  const { context, page, problems } = await newPage({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    locale: "zh-CN",
    timezoneId: "America/New_York",
  });
  await page.goto(`${BASE}/track/${token}`);
  await page.getByText("维修进度查询").waitFor();
  await page.getByText(shared.number).waitFor();
  await page.getByText("SH-001", { exact: true }).waitFor();
  await page.getByText("已受理").first().waitFor();
  await page.getByText("已完成").first().waitFor();
  const text = await page.locator("body").innerText();
  for (const personal of [shared.name, shared.phone, shared.imei]) assert.ok(!text.includes(personal), personal);
  // Shanghai times, though this phone is in New York.
  const received = await fetch(`${BASE}/track/${token}`, { headers: { Accept: "application/json" } }).then((r) => r.json());
  assert.ok(text.includes(received.steps[0].at_local.slice(0, 16).replace("T", " ")), "a step's Shanghai time");
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no sideways scrolling on a phone (${width}px)`);
  await keep(page, "07-tracking-phone");

  // The same address in English, and the JSON still there for programs.
  await page.goto(`${BASE}/track/${token}?lang=en`);
  await page.getByText("Repair status").waitFor();
  await shot(page, "08-tracking-phone-en");

  await page.goto(`${BASE}/track/not-a-token-of-ours`);
  await page.getByText("此查询链接无效或已过期").waitFor();
  await shot(page, "09-tracking-unknown");
  assert.deepEqual(problems, []);
  await context.close();
});

test("the API docs render from the gateway's own files, with no internet", async () => {
  const { context, page, problems } = await newPage();
  await page.goto(`${BASE}/docs`);
  // Swagger UI renders the whole API in the browser: slow on a busy 2-core machine.
  await page.locator(".swagger-ui .info .title", { hasText: "After-sales gateway" }).waitFor({ timeout: 60_000 });
  await page.locator(".opblock-tag", { hasText: "repair orders" }).first().waitFor();
  await shot(page, "10-docs");
  assert.deepEqual(problems, []);
  await context.close();
});

/** A call to the API as `token`'s user, for the set-up a walk needs before its screens. */
async function call(token, method, path, body, headers = {}) {
  const reply = await fetch(`${BASE}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${token}`,
      "Content-Type": "application/json",
      "Idempotency-Key": crypto.randomUUID(),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await reply.json().catch(() => ({}));
  assert.ok(reply.ok, `${method} ${path}: ${reply.status} ${JSON.stringify(data)}`);
  return { data, etag: reply.headers.get("ETag") };
}

test("the clerk prints the intake slip with the tracking link as a QR code", async () => {
  const { context, page, problems } = await onOrder("sh001.clerk");
  await page.getByRole("link", { name: "打印受理单" }).click();
  await page.waitForURL(`${BASE}/orders/${shared.orderId}/slip`);
  await page.getByTestId("slip-qr").waitFor();
  await page.getByText("维修受理单").waitFor();
  await page.getByText("/track/").waitFor();
  await page.emulateMedia({ media: "print" });
  assert.equal(await page.getByRole("button", { name: "打印受理单" }).isVisible(), false, "the buttons stay off paper");
  await keep(page, "11-intake-slip");
  assert.deepEqual(problems, []);
  await context.close();
});

test("a keeper's transfer: requested, approved by the branch, shipped, received one short", async () => {
  const part = "HW-BAT-MATE60PRO";
  // The receiving store's keeper asks SH-001 for two batteries.
  const receiver = await newPage();
  await receiver.page.goto(`${BASE}/transfers`);
  await signIn(receiver.page, "sh002.keeper");
  await receiver.page.waitForURL(`${BASE}/transfers`);
  // The keeper sees only their own warehouse: the sender's is typed.
  await receiver.page.locator('input#transfer_to_warehouse_id[value="WH-SH-002"]').waitFor();
  await receiver.page.getByLabel("调出仓库").fill("WH-SH-001");
  await receiver.page.keyboard.press("Escape");
  await receiver.page.getByLabel("料号").fill(part);
  await receiver.page.getByLabel("数量").fill("2");
  await keep(receiver.page, "12-transfer-request");
  await receiver.page.getByRole("button", { name: "申请调拨" }).click();
  await receiver.page.waitForURL(/\/transfers\/[^/]+$/);
  const transferUrl = receiver.page.url();
  const transferId = decodeURIComponent(transferUrl.split("/").pop());
  await receiver.page.getByTestId("transfer-status").getByText("待审批").waitFor();
  // It heads the keeper's list of their warehouse's transfers, inward, awaiting approval.
  await receiver.page.goto(`${BASE}/transfers`);
  const listed = receiver.page.locator(".ant-table-row", { hasText: transferId });
  await listed.waitFor();
  assert.deepEqual((await listed.locator("td").allInnerTexts()).slice(0, 5), [transferId, "调入", "WH-SH-001", `${part} ×2`, "待审批"]);
  await listed.getByRole("link", { name: transferId }).click();
  await receiver.page.waitForURL(transferUrl);

  // The branch manager finds it in the branch's queue and approves it; a keeper had no such button.
  assert.equal(await receiver.page.getByRole("button", { name: "审批通过" }).count(), 0);
  const manager = await newPage();
  await manager.page.goto(`${BASE}/approvals`);
  await signIn(manager.page, "sh.manager");
  await manager.page.waitForURL(`${BASE}/approvals`);
  await manager.page.locator(".ant-table-row", { hasText: transferId }).getByRole("link", { name: transferId }).click();
  await manager.page.waitForURL(transferUrl);
  await manager.page.getByRole("button", { name: "审批通过" }).click();
  await manager.page.getByTestId("transfer-status").getByText("已审批").waitFor();

  // The sender ships it.
  const sender = await newPage();
  await sender.page.goto(`${BASE}/stock`);
  await signIn(sender.page, "sh001.keeper");
  await sender.page.waitForURL(`${BASE}/stock`);
  await sender.page.getByRole("cell", { name: part, exact: true }).waitFor();
  await keep(sender.page, "13-stock");
  // The sender opens it from their list, outward and approved.
  await sender.page.goto(`${BASE}/transfers?status=approved`);
  const outward = sender.page.locator(".ant-table-row", { hasText: transferId });
  await outward.getByText("调出").waitFor();
  await outward.getByRole("link", { name: transferId }).click();
  await sender.page.waitForURL(transferUrl);
  await sender.page.getByRole("button", { name: "发货" }).click();
  await sender.page.getByTestId("transfer-status").getByText("在途").waitFor();

  // The receiver counts one short.
  await receiver.page.reload();
  await receiver.page.getByLabel(`短少 ${part}`).fill("1");
  await receiver.page.getByRole("button", { name: "收货" }).click();
  await receiver.page.getByTestId("transfer-status").getByText("已收货").waitFor();
  const row = receiver.page.locator(".ant-table-row", { hasText: part });
  assert.deepEqual((await row.locator("td").allInnerTexts()).slice(0, 5), [part, "2", "1", "1", "0"]);
  await keep(receiver.page, "14-transfer-received");
  assert.deepEqual([...receiver.problems, ...manager.problems, ...sender.problems], []);
  for (const opened of [receiver, manager, sender]) await opened.context.close();
});

test("a branch manager approves a quote over the branch's threshold", async () => {
  // Set up through the API: an out-of-warranty order diagnosed and quoted at ¥1,500 (SH's
  // threshold is ¥1,000).
  const clerk = await apiToken("sh001.clerk");
  const tech = await apiToken("sh001.tech");
  const imei = "86" + randomDigits(12);
  const { data: created } = await call(clerk, "POST", "/api/v1/repair-orders", {
    customer: { name: "王审批" + randomDigits(3), phone: "138" + randomDigits(8), message_consent: false, language: "zh-CN" },
    device: { imei: imei + luhnDigit(imei), brand: "huawei", model: "p60", colour: null, purchase_date: null },
    fault: { description: "主板故障", symptom_code: null },
    service_type: "repair",
    accessories: null,
    appearance: null,
    promised_date: null,
    store_id: null,
  });
  const { data: codes } = await call(tech, "GET", "/api/v1/fault-codes?brand=huawei&kind=fault");
  const path = `/api/v1/repair-orders/${created.id}`;
  const { etag } = await call(tech, "GET", path);
  const diagnosed = await call(tech, "POST", `${path}/diagnosis`, {
    fault_code: codes.items[0].code, symptom_code: "", cause_code: "", actions: [], parts: [], repair_level: "L4",
  }, { "If-Match": etag });
  const quoted = await call(tech, "POST", `${path}/quote`, { labour_fen: 150000 }, { "If-Match": diagnosed.etag });
  assert.equal(quoted.data.quote.manager_approval_required, true);

  const { context, page, problems } = await newPage();
  await page.goto(`${BASE}/approvals`);
  await signIn(page, "sh.manager");
  await page.waitForURL(`${BASE}/approvals`);
  const row = page.locator(".ant-table-row", { hasText: created.number });
  await row.getByText("需经理审批").waitFor();
  await keep(page, "15-approvals");
  await row.getByRole("link", { name: created.number }).click();
  await page.waitForURL(`${BASE}${path.replace("/api/v1/repair-orders", "/orders")}`);
  const form = page.locator("form#manager-approval");
  await form.waitFor();
  await form.getByText("是", { exact: true }).click();
  await form.getByRole("button", { name: "经理审批" }).click();
  await page.getByText("您的角色当前无可执行的操作").waitFor();
  const { data: after } = await call(clerk, "GET", path);
  assert.equal(after.quote.manager_approved, true);
  assert.deepEqual(problems, []);
  await context.close();
});

test("HQ changes a labour price in the base data and finds it in the audit trail", async () => {
  const { context, page, problems } = await newPage();
  await page.goto(`${BASE}/base-data?tab=labour`);
  await signIn(page, "hq.admin");
  await page.waitForURL(/\/base-data/);
  const form = page.locator("form#labour-price");
  await form.waitFor();
  await pick(page, "品牌", "samsung");
  await pick(page, "维修级别", "L1");
  const yuan = `${40 + Math.floor(Math.random() * 50)}.50`;
  await form.getByLabel("工时费（元）").fill(yuan);
  await form.getByRole("button", { name: "保存" }).click();
  const row = page.locator(".ant-table-row", { hasText: "samsung" }).filter({ hasText: "L1" });
  await row.getByText(yuan).waitFor();
  await keep(page, "16-base-data");
  await page.getByRole("tab", { name: "变更记录" }).click();
  await page.locator(".ant-table-row", { hasText: "labour_price" }).first().waitFor();
  await page.getByText(String(Math.round(Number(yuan) * 100))).first().waitFor();
  await keep(page, "17-base-data-audit");
  assert.deepEqual(problems, []);
  await context.close();
});

test("HQ's dashboard drills down HQ → branch → store → the orders behind a figure", async () => {
  const { context, page, problems } = await newPage();
  await page.goto(`${BASE}/dashboard`);
  await signIn(page, "hq.admin");
  await page.waitForURL(`${BASE}/dashboard`);
  await page.getByRole("heading", { name: "经营看板" }).waitFor();
  await page.getByText("各分公司").waitFor();
  await keep(page, "18-dashboard-hq");
  await page.getByRole("link", { name: /^SH / }).click();
  await page.waitForURL(/\/dashboard\?branch_id=SH$/);
  await page.getByText("各门店").waitFor();
  await page.getByRole("link", { name: /^SH-001 / }).click();
  await page.waitForURL(/\/dashboard\?branch_id=SH&store_id=SH-001$/);
  // The store's figures come from reporting's projection of the orders' events: wait until the
  // walk's orders are counted, then follow the figure to the orders behind it.
  const deadline = Date.now() + 30_000;
  let received = page.locator(".ant-statistic", { hasText: "受理量" }).getByRole("link");
  while (Number(await received.innerText().catch(() => "0")) === 0 && Date.now() < deadline) {
    await page.waitForTimeout(500);
    await page.reload();
    received = page.locator(".ant-statistic", { hasText: "受理量" }).getByRole("link");
  }
  await keep(page, "19-dashboard-store");
  await received.click();
  await page.waitForURL(/\/dashboard\/orders\?figure=received&branch_id=SH&store_id=SH-001$/);
  const link = page.getByRole("link", { name: shared.number });
  await link.waitFor();
  assert.equal(await link.getAttribute("href"), `/orders/${shared.orderId}`);
  await keep(page, "20-dashboard-orders");
  assert.deepEqual(problems, []);
  await context.close();
});
