import { expect, test } from "@playwright/test";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { MockProviders } from "./support/mock-providers";
import { MockUpstream } from "./support/mock-upstream";
import { ModelCompose } from "./support/server";

// A page of another site, in the same browser as the user's model-compose: it may neither
// read, start nor delete anything, on either port. Chromium resolves *.example to 127.0.0.1
// (playwright.config.ts), so that the other site is served here, on a port of its own.

let mock: MockUpstream;
let server: ModelCompose;
let elsewhere: Server;
let elsewhereUrl: string;

test.beforeAll(async () => {
  mock = await MockUpstream.start();
  server = await ModelCompose.up(mock.baseUrl);
  elsewhere = createServer((_, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<!doctype html><title>Somewhere else</title><p>Another site</p>");
  });
  await new Promise<void>((done) => elsewhere.listen(0, "127.0.0.1", done));
  elsewhereUrl = `http://evil.example:${(elsewhere.address() as AddressInfo).port}/`;
});

test.afterAll(async () => {
  await server.remove();
  await mock.stop();
  await new Promise((done) => elsewhere.close(done));
});

test("another site's page can neither read, start nor delete runs", async ({ page, request }) => {
  mock.behavior = { tokens: ["Private", " answer"], delayMs: 0 };
  const run = await request.post(`${server.api}/workflows/runs`, {
    data: { input: { prompt: "A private question" }, wait_for_completion: true },
  });
  expect(run.status()).toBe(200);
  const taskId = run.headers()["x-task-id"];
  const chat = await request.post(`${server.url}/_ui/chat`, {
    form: { workflow_id: "__workflow__", input: '{"prompt":"A private chat"}', prompt: "A private chat" },
  });
  expect(chat.status()).toBe(200);
  const started = await chat.text();
  const conversationId = /"conversation_id":"([^"]+)"/.exec(started)![1];
  const chatTaskId = /"task_id":"([^"]+)"/.exec(started)![1];
  const requestsBefore = mock.requests.length;

  await page.goto(elsewhereUrl);
  const attempts = await page.evaluate(
    async ({ api, ui, taskId, conversationId }) => {
      const attempt = async (call: () => Promise<Response>) => {
        try {
          const response = await call();
          return response.type === "opaque" ? "opaque" : `status ${response.status}`;
        } catch {
          return "blocked";
        }
      };
      const json = { "content-type": "application/json" };
      const body = JSON.stringify({ input: { prompt: "from another site" } });
      return {
        read: await attempt(() => fetch(`${api}/runs`, { credentials: "include" })),
        start: await attempt(() => fetch(`${api}/workflows/runs`, { method: "POST", headers: json, body })),
        startBlind: await attempt(() => fetch(`${api}/workflows/runs`, { method: "POST", mode: "no-cors", body })),
        remove: await attempt(() => fetch(`${api}/runs/${taskId}`, { method: "DELETE" })),
        uiRead: await attempt(() => fetch(`${ui}/_ui/conversations`, { method: "POST", credentials: "include" })),
        uiRun: await attempt(() =>
          fetch(`${ui}/_ui/chat`, {
            method: "POST",
            mode: "no-cors",
            body: new URLSearchParams({ workflow_id: "__workflow__", input: body, prompt: "from another site" }),
          }),
        ),
        uiDelete: await attempt(() =>
          fetch(`${ui}/_ui/delete_conversation`, {
            method: "POST",
            mode: "no-cors",
            body: new URLSearchParams({ id: conversationId }),
          }),
        ),
      };
    },
    { api: server.api, ui: server.url, taskId, conversationId },
  );
  expect(attempts).toEqual({
    read: "blocked",
    start: "blocked",
    startBlind: "opaque",
    remove: "blocked",
    uiRead: "blocked",
    uiRun: "opaque",
    uiDelete: "opaque",
  });

  // A form posted from the other site is refused too.
  await page.evaluate(
    ({ ui }) => {
      const form = document.createElement("form");
      form.method = "post";
      form.action = `${ui}/_ui/chat`;
      const fields = [["workflow_id", "__workflow__"], ["input", '{"prompt":"form post"}'], ["prompt", "form post"]];
      for (const [name, value] of fields) {
        const input = document.createElement("input");
        input.name = name;
        input.value = value;
        form.append(input);
      }
      document.body.append(form);
      form.submit();
    },
    { ui: server.url },
  );
  await expect(page.locator("body")).toContainText("Cross-site request refused");

  // Nothing reached the upstream, and the run is still there.
  expect(mock.requests.length).toBe(requestsBefore);
  const runs = await (await request.get(`${server.api}/runs`)).json();
  expect(runs.map((r: { task_id: string }) => r.task_id).sort()).toEqual([taskId, chatTaskId].sort());
  const conversation = await request.post(`${server.url}/_ui/conversation`, { form: { id: conversationId } });
  expect(await conversation.json()).toMatchObject({ summary: { id: conversationId } });
});

test("a host name pointed at this machine does not reach it (DNS rebinding)", async ({ page }) => {
  for (const url of [server.url, `${server.api}/health`]) {
    const rebound = url.replace("127.0.0.1", "rebind.evil.example");
    const response = await page.goto(rebound);
    expect(response?.status(), rebound).toBe(403);
    await expect(page.locator("body")).toContainText("Host header");
  }
});

test("the web UI cannot be framed by another site", async ({ page }) => {
  await page.goto(elsewhereUrl);
  const response = page.waitForResponse((r) => r.url().startsWith(server.url));
  await page.evaluate((ui) => {
    const frame = document.createElement("iframe");
    frame.src = ui;
    document.body.append(frame);
  }, server.url);
  expect((await response).headers()["content-security-policy"]).toContain("frame-ancestors 'self'");
  // Chromium refuses to show it: the frame holds its error page instead.
  await expect.poll(() => page.frames().map((f) => f.url())).toContain("chrome-error://chromewebdata/");
  await expect(page.frameLocator("iframe").locator(".layout")).toHaveCount(0);
});

test("with access keys, the web UI signs in and out", async ({ page }) => {
  const key = "mc-e2e-access-key-0123456789";
  const guarded = await ModelCompose.up(mock.baseUrl, (seed) =>
    seed.replace("controller:\n", `controller:\n  access_keys: ["${key}"]\n`),
  );
  try {
    await page.goto(guarded.url);
    await expect(page).toHaveURL(/\/sign-in$/);
    await page.getByLabel("Access key").fill("not-the-key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("alert")).toHaveText("That key is not right.");
    await page.getByLabel("Access key").fill(key);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
    mock.behavior = { tokens: ["Signed", " in"], delayMs: 0 };
    await page.getByLabel("Prompt").fill("Hello");
    await page.getByLabel("Prompt").press("Enter");
    await expect(page.locator(".message.assistant").last()).toContainText("Signed in");
    const cookies = await page.context().cookies();
    expect(cookies.map((c) => [c.httpOnly, c.sameSite])).toEqual([[true, "Strict"]]);
    await page.getByRole("button", { name: "Sign out" }).click();
    await expect(page).toHaveURL(/\/sign-in$/);
    await page.goto(guarded.url);
    await expect(page).toHaveURL(/\/sign-in$/);
  } finally {
    await guarded.remove();
  }
});

test("a form, a no-cors fetch and a multipart post from another site start nothing", async ({ page, request }) => {
  const runsBefore = await (await request.get(`${server.api}/runs`)).json();
  const requestsBefore = mock.requests.length;
  await page.goto(elsewhereUrl);
  const statuses = await page.evaluate(async (api) => {
    const url = `${api}/workflows/runs`;
    const blind = async (body: BodyInit) => (await fetch(url, { method: "POST", mode: "no-cors", body })).type;
    const multipart = new FormData();
    multipart.append("input[prompt]", "multipart from another site");
    return [
      await blind(multipart),
      await blind(new URLSearchParams({ "input[prompt]": "urlencoded from another site" })),
    ];
  }, server.api);
  expect(statuses).toEqual(["opaque", "opaque"]);
  // A plain HTML form that submits itself: the browser shows the refusal.
  await page.evaluate((api) => {
    const form = document.createElement("form");
    form.method = "post";
    form.action = `${api}/workflows/runs`;
    const input = document.createElement("input");
    input.name = "input[prompt]";
    input.value = "form from another site";
    form.append(input);
    document.body.append(form);
    form.submit();
  }, server.api);
  await expect(page.locator("body")).toContainText("Cross-site request refused");
  expect(mock.requests.length).toBe(requestsBefore);
  const runsAfter = await (await request.get(`${server.api}/runs`)).json();
  expect(runsAfter).toEqual(runsBefore);
});

test("an answer's remote image loads nothing until asked, then through the server", async ({ page }) => {
  const images = await MockProviders.start();
  const picture = `${images.base}/files/1.png?d=SECRET`;
  const allowed = await ModelCompose.up(mock.baseUrl, (seed) =>
    seed.replace("controller:\n", "controller:\n  fetch:\n    allow: [127.0.0.1]\n"),
  );
  const elsewhereRequests: string[] = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(allowed.url)) elsewhereRequests.push(r.url());
  });
  try {
    await page.goto(allowed.url);
    await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
    mock.behavior = { tokens: ["Here: ", `![the chart](${picture})`, " done."], delayMs: 0 };
    await page.getByLabel("Prompt").fill("Show me");
    await page.getByLabel("Prompt").press("Enter");
    const answer = page.locator(".message.assistant").last();
    await expect(answer).toHaveAttribute("data-state", "completed");
    const placeholder = answer.locator(".remote-image");
    await expect(placeholder).toContainText(`Image from ${new URL(images.base).host}`);
    await expect(placeholder).toContainText("the chart");
    await expect(answer.locator("img")).toHaveCount(0);
    // Shown, and shown again after a reload: nothing was asked of the image's host.
    await page.reload();
    await expect(page.locator(".message.assistant .remote-image")).toHaveCount(1);
    expect(images.seen).toEqual([]);
    expect(elsewhereRequests).toEqual([]);
    // Even a script of the page could not load it: the page's policy forbids other hosts
    // (Chromium reports the attempt, and sends nothing).
    const loaded = await page.evaluate(
      (src) =>
        new Promise((done) => {
          const img = new Image();
          img.onload = () => done("loaded");
          img.onerror = () => done("blocked");
          img.src = src;
        }),
      picture,
    );
    expect(loaded).toBe("blocked");
    expect(images.seen).toEqual([]);

    await page.locator(".message.assistant").last().getByRole("button", { name: "Load image" }).click();
    const shown = page.locator(".message.assistant img.remote-image-loaded");
    await expect(shown).toHaveAttribute("alt", "the chart");
    await expect.poll(() => shown.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBe(2);
    // One request, the server's.
    expect(images.seen.map((s) => s.path)).toEqual(["/files/1.png?d=SECRET"]);
  } finally {
    await allowed.remove();
    await images.stop();
  }
});
