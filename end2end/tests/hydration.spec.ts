import { expect, test, type ConsoleMessage } from "@playwright/test";
import { ModelCompose } from "./support/server";

let server: ModelCompose;

test.beforeAll(async () => {
  server = await ModelCompose.up();
});

test.afterAll(async () => {
  expect(await server.remove()).toBe(0);
});

test("the page is rendered on the server, before any script runs", async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(server.url);
  await expect(page.getByRole("heading", { name: "Chat with OpenAI GPT-4o" })).toBeVisible();
  await expect(page.getByText("Generate text responses using OpenAI’s GPT-4o")).toBeVisible();
  await expect(page.getByLabel("Prompt")).toBeVisible();
  await expect(page.getByLabel("Temperature value")).toHaveValue("0.7");
  await expect(page.locator("main")).not.toHaveAttribute("data-hydrated");
  await context.close();
});

test("the page hydrates and the temperature control works", async ({ page }) => {
  const problems: string[] = [];
  page.on("console", (message: ConsoleMessage) => {
    if (message.type() === "error") problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(error.message));

  const wasm = page.waitForResponse((r) => r.url().endsWith("/pkg/model-compose.wasm"));
  await page.goto(server.url);
  const wasmResponse = await wasm;
  expect(wasmResponse.status()).toBe(200);
  expect(wasmResponse.headers()["content-type"]).toBe("application/wasm");
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");

  // Typing a value moves the slider: only the hydrated page can do that.
  const value = page.getByLabel("Temperature value");
  const slider = page.getByRole("slider", { name: "Temperature" });
  await value.fill("1.3");
  await value.press("Enter");
  await expect(slider).toHaveValue("1.3");

  // And moving the slider updates the number.
  await slider.fill("0.2");
  await expect(value).toHaveValue("0.2");

  // Out-of-range values are clamped, in both fields.
  await value.fill("7");
  await value.press("Enter");
  await expect(slider).toHaveValue("2");
  await expect(value).toHaveValue("2.0");

  expect(problems).toEqual([]);
});

test("unknown files are 404, the favicon and the stylesheet are served", async ({ request }) => {
  expect((await request.get(server.url + "/pkg/nope.js")).status()).toBe(404);
  const favicon = await request.get(server.url + "/favicon.svg");
  expect(favicon.status()).toBe(200);
  expect(favicon.headers()["content-type"]).toBe("image/svg+xml");
  const css = await request.get(server.url + "/pkg/model-compose.css");
  expect(css.status()).toBe(200);
  expect(css.headers()["content-type"]).toContain("text/css");
});

// Chrome DevTools' "Fast 4G" preset: 9 Mbit/s down and 1.5 up, each at 90 %, 165 ms of latency.
const FAST_4G = {
  offline: false,
  downloadThroughput: (9_000_000 / 8) * 0.9,
  uploadThroughput: (1_500_000 / 8) * 0.9,
  latency: 60 * 2.75,
};

test("over Fast 4G the first load hydrates; its time and bytes are printed", async ({ page }) => {
  // The debug build's WASM is ten times the release's: minutes would be a failure, seconds not.
  test.setTimeout(120_000);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  await cdp.send("Network.emulateNetworkConditions", FAST_4G);
  const urls = new Map<string, string>();
  const bytes = new Map<string, number>();
  cdp.on("Network.requestWillBeSent", (event) => urls.set(event.requestId, event.request.url));
  cdp.on("Network.loadingFinished", (event) => bytes.set(event.requestId, event.encodedDataLength));

  const started = Date.now();
  await page.goto(server.url);
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true", { timeout: 100_000 });
  const hydrated = Date.now() - started;

  const kib = (n: number) => (n / 1024).toFixed(0);
  const total = [...bytes.values()].reduce((sum, n) => sum + n, 0);
  const wasm = [...bytes].find(([id]) => urls.get(id)?.endsWith(".wasm"))?.[1] ?? 0;
  expect(wasm).toBeGreaterThan(0);
  console.log(
    `first load over Fast 4G: hydrated after ${hydrated} ms; ${kib(total)} KiB transferred, ` +
      `of it the WASM ${kib(wasm)} KiB (${process.env.MODEL_COMPOSE_BIN ?? "debug build"})`,
  );
});
