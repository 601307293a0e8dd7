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

test("the answer streams in token by token, its finished blocks rendered as Markdown", async ({ page }) => {
  mock.behavior = { tokens: [...WORDS, "\n\n", "**Bold**", " end."], delayMs: 250 };
  await ask(page, "Explain machine learning in simple terms");
  await expect(page.locator(".message.user").last()).toContainText("Explain machine learning in simple terms");
  const answer = lastAnswer(page);
  // Partial text is visible while the run is still going.
  await expect(answer).toContainText("Machine learning");
  await expect(answer).toHaveAttribute("data-state", "streaming");
  expect(await answer.textContent()).not.toContain("them.");
  // Once its block is finished, the first paragraph is rendered, and stays while the next streams.
  await expect(answer.locator(".block p").first()).toHaveText("Machine learning finds patterns in data and learns from them.");
  await expect(answer).toHaveAttribute("data-state", "completed", { timeout: 15_000 });
  await expect(answer.locator(".block strong")).toHaveText("Bold");
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

  mock.behavior = { tokens: ["Here:\n\n```rust\nfn main() {}\n```\n"], delayMs: 0 };
  await prompt.press("Enter");
  const code = lastAnswer(page).locator(".code-block");
  await expect(code.locator("code")).toHaveText("fn main() {}");
  await expect(code.locator(".code-lang")).toHaveText("rust");
  await expect(code.locator("code [class*=hl-]").first()).toBeVisible();
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

test("Stop, and Esc, end the stream and drop the upstream request", async ({ page }) => {
  // Long enough (12 s) that the run cannot end by itself before Stop, even on a busy machine.
  mock.behavior = { tokens: [...WORDS, ...WORDS, ...WORDS], delayMs: 400 };
  await ask(page, "A run to stop");
  const answer = lastAnswer(page);
  await expect(answer).toContainText("Machine");
  // While it streams, Send is Stop.
  await expect(page.getByRole("button", { name: "Send" })).toHaveCount(0);
  await page.getByRole("button", { name: "Stop" }).click();
  await expect(answer).toHaveAttribute("data-state", "stopped");
  await expect(page.locator(".event-log")).toContainText("Stopped");
  await expect.poll(() => mock.openStreams).toBe(0);
  await expect(page.getByRole("button", { name: "Send" })).toBeEnabled();

  await ask(page, "Another run to stop");
  await expect(lastAnswer(page)).toContainText("Machine");
  await page.keyboard.press("Escape");
  await expect(lastAnswer(page)).toHaveAttribute("data-state", "stopped");
  await expect.poll(() => mock.openStreams).toBe(0);
});

test("an upstream error says what to do, with the detail behind a toggle, and Retry replaces it", async ({ page }) => {
  mock.behavior = { tokens: [], delayMs: 0, error: { status: 401, body: { error: { message: "Incorrect API key provided" } } } };
  await ask(page, "Will this fail?");
  const answer = lastAnswer(page);
  await expect(answer).toHaveAttribute("data-state", "failed");
  const alert = answer.getByRole("alert");
  await expect(alert.locator("p")).toHaveText("The model server refused the API key (401). Check the key in the .env file.");
  await expect(alert.locator(".error-detail pre")).toBeHidden();
  await alert.getByText("Details").click();
  await expect(alert.locator(".error-detail pre")).toHaveText("upstream returned 401: Incorrect API key provided");
  await expect(page.locator(".event-log")).toContainText("Failed: upstream returned 401");
  mock.behavior = { tokens: ["It works now."], delayMs: 0 };
  await alert.getByRole("button", { name: "Retry" }).click();
  await expect(lastAnswer(page)).toHaveAttribute("data-state", "completed");
  await expect(lastAnswer(page)).toContainText("It works now.");
  // In place of the failed answer, as its second version: not a copy of the exchange.
  await expect(page.locator(".message.assistant")).toHaveCount(1);
  await expect(page.locator(".message.user")).toHaveCount(1);
  await expect(lastAnswer(page).locator(".version-count")).toHaveText("2 / 2");
  expect(mock.requests.at(-1).messages).toEqual([{ role: "user", content: "Will this fail?" }]);
});

test("a model server that cannot be reached is named, with what to do", async ({ page }) => {
  const nowhere = await ModelCompose.up("http://127.0.0.1:9/v1");
  try {
    await page.goto(nowhere.url);
    await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
    await ask(page, "Anyone there?");
    const alert = lastAnswer(page).getByRole("alert");
    await expect(alert.locator("p")).toHaveText("Can't reach the model server at 127.0.0.1:9. Is it running?");
    await expect(alert.locator(".error-detail pre")).toContainText("can't reach the model server at 127.0.0.1:9: ");
  } finally {
    await nowhere.remove();
  }
});

test("when the server goes away, the chat keeps what it showed and says so", async ({ page }) => {
  const leaving = await ModelCompose.up(mock.baseUrl);
  try {
    await page.goto(leaving.url);
    await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
    mock.behavior = { tokens: ["Still", " here."], delayMs: 0 };
    await ask(page, "Are you there?");
    await expect(lastAnswer(page)).toHaveAttribute("data-state", "completed");
    await leaving.stop();
    await ask(page, "And now?");
    await expect(lastAnswer(page)).toHaveAttribute("data-state", "failed");
    await expect(page.locator(".banner")).toHaveText(/The server can't be reached/);
    await expect(lastAnswer(page).getByRole("alert").locator("p")).toContainText("The server can't be reached");
    await expect(page.locator(".message.assistant").first()).toHaveText(/Still here\./);
    await expect(page.locator(".message.user")).toHaveCount(2);
  } finally {
    // The page keeps trying the server until it leaves; the browser reports each refused
    // (or reset) connection. Those are expected; anything else fails in afterEach.
    await page.goto("about:blank");
    problems = problems.filter((p) => !/ERR_CONNECTION_(REFUSED|RESET)/.test(p));
    await leaving.remove();
  }
});

test("a stream cut off midway keeps what came and shows the error with Retry", async ({ page }) => {
  mock.behavior = { tokens: WORDS, delayMs: 50, cutAfter: 3 };
  await ask(page, "This will break");
  const answer = lastAnswer(page);
  await expect(answer).toHaveAttribute("data-state", "failed");
  await expect(answer).toContainText("Machine learning finds");
  await expect(answer.getByRole("alert")).toContainText("upstream stream failed");
  await expect(answer.getByRole("button", { name: "Retry" })).toBeVisible();
});

test("HTML in the model's reply is shown as text, never run; links open in a new tab", async ({ page }) => {
  mock.behavior = {
    tokens: ["Look: ", "<img src=x onerror=alert(1)>", " <script>alert(2)</script>\n\n", "[docs](https://example.com/docs)"],
    delayMs: 0,
  };
  await ask(page, "Say something nasty");
  const answer = lastAnswer(page);
  await expect(answer).toHaveAttribute("data-state", "completed");
  await expect(answer).toContainText("<img src=x onerror=alert(1)>");
  await expect(answer.locator("img")).toHaveCount(0);
  await expect(answer.locator("script")).toHaveCount(0);
  const link = answer.getByRole("link", { name: "docs" });
  await expect(link).toHaveAttribute("target", "_blank");
  await expect(link).toHaveAttribute("rel", "noopener noreferrer");
});

test("Copy copies an answer, and a code block's Copy its code, saying so", async ({ page, context }) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  mock.behavior = { tokens: ["Run this:\n\n", "```sh\necho hi\n```\n"], delayMs: 0 };
  await ask(page, "A command?");
  const answer = lastAnswer(page);
  await expect(answer).toHaveAttribute("data-state", "completed");
  await answer.locator(".code-copy").click();
  await expect(answer.locator(".code-copy")).toHaveText("Copied");
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe("echo hi\n");
  await answer.locator(".message-tools .copy").click();
  await expect(answer.locator(".message-tools .copy")).toHaveText("Copied");
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe("Run this:\n\n```sh\necho hi\n```\n");
  await expect(answer.locator(".message-tools .copy")).toHaveText("Copy");
});

test("tables, quotes and headings are styled at chat scale", async ({ page }) => {
  mock.behavior = { tokens: ["# Heading\n\n> A quote\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"], delayMs: 0 };
  await ask(page, "Formatting?");
  const answer = lastAnswer(page);
  await expect(answer).toHaveAttribute("data-state", "completed");
  const style = (selector: string, property: string) =>
    answer.locator(selector).first().evaluate((el, p) => getComputedStyle(el).getPropertyValue(p), property);
  expect(await style("td", "border-top-style")).toBe("solid");
  expect(await style("blockquote", "border-left-style")).toBe("solid");
  const heading = parseFloat(await style("h1", "font-size"));
  const body = parseFloat(await style("blockquote", "font-size"));
  expect(heading / body).toBeLessThan(1.5);
});

test("the tokens a run used are shown beside its answer with their pace, also once reopened", async ({ page }) => {
  // Only a config that asks for the usage gets it: nothing is added to the request otherwise.
  await expect(lastAnswer(page)).toHaveCount(0);
  await ask(page, "No count here");
  await expect(lastAnswer(page)).toHaveAttribute("data-state", "completed");
  await expect(lastAnswer(page).locator(".usage")).toHaveCount(0);
  expect(mock.requests.at(-1).stream_options).toBeUndefined();

  const counted = await ModelCompose.up(mock.baseUrl, (c) =>
    c.replace("      stream: true\n", "      stream: true\n      stream_options:\n        include_usage: true\n"),
  );
  try {
    mock.behavior = { tokens: WORDS, delayMs: 20 };
    await page.goto(counted.url);
    await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
    await ask(page, "Count my tokens");
    const answer = lastAnswer(page);
    await expect(answer).toHaveAttribute("data-state", "completed");
    expect(mock.requests.at(-1).stream_options).toEqual({ include_usage: true });
    // 10 tokens about 20 ms apart: some tens of tokens a second.
    await expect(answer.locator(".usage")).toHaveText(/^9 \+ 10 tokens · \d+ tokens\/s$/);
    const shown = await answer.locator(".usage").textContent();
    await expect(page).toHaveURL(/\/c\/[0-9A-Z]{26}$/);
    await page.reload();
    await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
    await expect(lastAnswer(page).locator(".usage")).toHaveText(shown!);
  } finally {
    await counted.remove();
  }
});
