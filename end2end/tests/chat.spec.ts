import { expect, test, type Page } from "@playwright/test";
import { MockUpstream } from "./support/mock-upstream";
import { ModelCompose } from "./support/server";

let mock: MockUpstream;
let server: ModelCompose;
let problems: string[] = [];

const WORDS = ["Machine", " learning", " finds", " patterns", " in", " data", " and", " learns", " from", " them."];

test.beforeAll(async () => {
  mock = await MockUpstream.start();
  server = await ModelCompose.up(mock.baseUrl);
});

test.afterAll(async () => {
  expect(await server.remove()).toBe(0);
  await mock.stop();
});

test.beforeEach(async ({ page }) => {
  problems = [];
  mock.behavior = { tokens: WORDS, delayMs: 0 };
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("dialog", (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  await page.goto(server.url);
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
});

test.afterEach(() => {
  expect(problems).toEqual([]);
});

async function ask(page: Page, prompt: string) {
  await page.getByLabel("Prompt").fill(prompt);
  await page.getByLabel("Prompt").press("Enter");
}

const lastAnswer = (page: Page) => page.locator(".message.assistant").last();

test("the answer streams in token by token, as Markdown", async ({ page }) => {
  mock.behavior = { tokens: WORDS, delayMs: 250 };
  await ask(page, "Explain machine learning in simple terms");
  await expect(page.locator(".message.user").last()).toContainText("Explain machine learning in simple terms");
  const answer = lastAnswer(page);
  // Partial text is visible while the run is still going.
  await expect(answer).toContainText("Machine learning");
  await expect(answer).toHaveAttribute("data-state", "streaming");
  expect(await answer.textContent()).not.toContain("them.");
  if (process.env.SCREENSHOT) {
    // For the README: the picture is taken a few words further into the answer.
    await expect(answer).toContainText("finds patterns");
    await page.screenshot({ path: process.env.SCREENSHOT });
  }
  await expect(answer).toHaveAttribute("data-state", "completed", { timeout: 15_000 });
  await expect(answer).toContainText("Machine learning finds patterns in data and learns from them.");
  await expect(page.locator(".event-log")).toContainText(/First token after \d+ ms/);
  await expect(page.locator(".event-log")).toContainText(/Completed in \d+ ms/);
  // The composer was cleared; Shift+Enter adds a line instead of sending.
  const prompt = page.getByLabel("Prompt");
  await expect(prompt).toHaveValue("");
  await prompt.fill("line one");
  await prompt.press("Shift+Enter");
  await prompt.pressSequentially("line two");
  await expect(prompt).toHaveValue("line one\nline two");
  await expect(page.locator(".message.user")).toHaveCount(1);

  mock.behavior = { tokens: ["Here:\n\n```rust\nfn main() {}\n```"], delayMs: 0 };
  await prompt.press("Enter");
  await expect(lastAnswer(page).locator("pre code")).toHaveText("fn main() {}");
});

test("the temperature set in the UI is what the upstream receives", async ({ page }) => {
  const value = page.getByLabel("Temperature value");
  await expect(value).toHaveValue("0.7");
  await value.fill("1.3");
  await value.press("Tab");
  await ask(page, "Be creative");
  await expect(lastAnswer(page)).toHaveAttribute("data-state", "completed");
  const request = mock.requests.at(-1);
  expect(request.temperature).toBe(1.3);
  expect(request.messages).toEqual([{ role: "user", content: "Be creative" }]);
  expect(request.stream).toBe(true);
  await expect(page.locator(".message.user").last()).toContainText("temperature 1.3");
});

test("Stop ends the stream, drops the upstream request, and the history shows it stopped", async ({ page }) => {
  // Long enough (12 s) that the run cannot end by itself before Stop, even on a busy machine.
  mock.behavior = { tokens: [...WORDS, ...WORDS, ...WORDS], delayMs: 400 };
  await ask(page, "A run to stop");
  const answer = lastAnswer(page);
  await expect(answer).toContainText("Machine");
  await page.getByRole("button", { name: "Stop" }).click();
  await expect(answer).toHaveAttribute("data-state", "stopped");
  await expect(page.locator(".event-log")).toContainText("Stopped");
  await expect.poll(() => mock.openStreams).toBe(0);
  const run = page.locator(".history .run").first();
  await expect(run).toContainText("A run to stop");
  await expect(run).toHaveAttribute("data-status", "cancelled");
  await expect(page.getByRole("button", { name: "Run Workflow" })).toBeEnabled();
});

test("an upstream error is shown in place, and Retry runs again", async ({ page }) => {
  mock.behavior = { tokens: [], delayMs: 0, error: { status: 401, body: { error: { message: "Incorrect API key provided" } } } };
  await ask(page, "Will this fail?");
  const answer = lastAnswer(page);
  await expect(answer).toHaveAttribute("data-state", "failed");
  await expect(answer.getByRole("alert")).toContainText("upstream returned 401: Incorrect API key provided");
  await expect(page.locator(".event-log")).toContainText("Failed: upstream returned 401");
  mock.behavior = { tokens: ["It works now."], delayMs: 0 };
  await answer.getByRole("button", { name: "Retry" }).click();
  await expect(lastAnswer(page)).toHaveAttribute("data-state", "completed");
  await expect(lastAnswer(page)).toContainText("It works now.");
  expect(mock.requests.at(-1).messages[0].content).toBe("Will this fail?");
});

test("a stream cut off midway keeps what came and shows the error with Retry", async ({ page }) => {
  mock.behavior = { tokens: WORDS, delayMs: 50, cutAfter: 3 };
  await ask(page, "This will break");
  const answer = lastAnswer(page);
  await expect(answer).toHaveAttribute("data-state", "failed");
  await expect(answer).toContainText("Machine learning finds");
  await expect(answer.getByRole("alert")).toContainText("upstream stream failed");
  await expect(answer.getByRole("button", { name: "Retry" })).toBeVisible();
  await expect(page.locator(".history .run").first()).toHaveAttribute("data-status", "failed");
});

test("HTML in the model's reply is shown as text, never run", async ({ page }) => {
  mock.behavior = { tokens: ["Look: ", "<img src=x onerror=alert(1)>", " <script>alert(2)</script>"], delayMs: 0 };
  await ask(page, "Say something nasty");
  const answer = lastAnswer(page);
  await expect(answer).toHaveAttribute("data-state", "completed");
  await expect(answer).toContainText("<img src=x onerror=alert(1)>");
  await expect(answer.locator("img")).toHaveCount(0);
  await expect(answer.locator("script")).toHaveCount(0);
});

test("runs can be opened and deleted, and the history outlives a restart", async ({ page }) => {
  mock.behavior = { tokens: ["Kept", " for", " later"], delayMs: 0 };
  await ask(page, "Remember me\nsecond line");
  await expect(lastAnswer(page)).toHaveAttribute("data-state", "completed");
  const first = page.locator(".history .run").first();
  await expect(first).toContainText("Remember me");
  await expect(first).not.toContainText("second line");
  await expect(first).toContainText("t=0.7");

  await server.stop();
  await server.start();
  await page.goto(server.url);
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
  const kept = page.locator(".history .run", { hasText: "Remember me" });
  await expect(kept).toHaveCount(1);
  await kept.getByRole("button").click();
  const detail = page.getByRole("region", { name: "Selected run" });
  await expect(detail).toContainText("Kept for later");
  await expect(detail).toContainText('"temperature": 0.7');
  const before = await page.locator(".history .run").count();
  await detail.getByRole("button", { name: "Delete" }).click();
  await expect(page.locator(".history .run")).toHaveCount(before - 1);
  await expect(page.locator(".history .run", { hasText: "Remember me" })).toHaveCount(0);
});

test("the page fits a 375 px phone", async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 800 });
  await ask(page, "Small screen");
  await expect(lastAnswer(page)).toHaveAttribute("data-state", "completed");
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width).toBeLessThanOrEqual(375);
  await expect(page.getByRole("button", { name: "Run Workflow" })).toBeVisible();
  await expect(page.getByRole("complementary", { name: "Run history" })).toBeVisible();
});
