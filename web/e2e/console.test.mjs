// The console in Debian's Chromium against the real system (scripts/run_web_e2e.py starts it):
// a clerk's intake → order board → order detail, a technician's diagnosis through the step
// form, another store's clerk kept out, and the customer's tracking page on a phone.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, before, test } from "node:test";
import { chromium } from "playwright-core";

const BASE = process.env.GATEWAY_URL;
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
  for (const page of open) {
    if (!page.isClosed()) await shot(page, `FAILED-${t.name.slice(0, 40).replace(/\W+/g, "-")}`).catch(() => {});
  }
  open.clear();
});

async function shot(page, name) {
  await page.screenshot({ path: join(RESULTS, `${name}.png`), fullPage: true });
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
  await shot(page, "01-login");
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
  await shot(page, "02-intake");

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
  await shot(page, "03-board");
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
  await shot(page, "05-detail-diagnosed");
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
  await shot(clerk.page, "06-detail-closed");
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
  await shot(page, "07-tracking-phone");

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
  await page.locator(".swagger-ui .info .title", { hasText: "After-sales gateway" }).waitFor();
  await page.locator(".opblock-tag", { hasText: "repair orders" }).first().waitFor();
  await shot(page, "10-docs");
  assert.deepEqual(problems, []);
  await context.close();
});
