import { expect, test, type Page } from "@playwright/test";
import { MockProviders } from "./support/mock-providers";
import { example, ModelCompose } from "./support/server";

// A run that waits for a person, in the chat: `examples/support-triage` drafts a reply and
// asks before sending it. The card shows the question and its metadata as a table; Continue
// sends the draft, an answer typed in the card is sent instead, Cancel run drops it.

let mock: MockProviders;
let server: ModelCompose;
let problems: string[] = [];

const MESSAGE = "A billing question: I was charged twice";

test.beforeAll(async () => {
  mock = await MockProviders.start();
  server = await ModelCompose.up(mock.openai, undefined, undefined, example("support-triage"));
});

test.afterAll(async () => {
  expect(await server.remove()).toBe(0);
  await mock.stop();
});

test.beforeEach(async ({ page }) => {
  problems = [];
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(e.message));
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

test("a waiting run shows a card; Continue sends the draft as it is", async ({ page }) => {
  await ask(page, MESSAGE);
  const answer = lastAnswer(page);
  const card = answer.locator(".interrupt-card");
  await expect(card).toHaveCount(1);
  await expect(card).toContainText("Waiting for you: job send before it runs");
  await expect(card.locator(".interrupt-message")).toHaveText("Send this reply to the customer?");
  // The metadata as a table: one row per key, texts as they are.
  const rows = card.locator(".interrupt-metadata tr");
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(0).locator("th")).toHaveText("category");
  await expect(rows.nth(0).locator("td")).toHaveText("billing");
  await expect(rows.nth(1).locator("th")).toHaveText("reply");
  await expect(rows.nth(1).locator("td")).toHaveText(`You said: ${MESSAGE}`);
  await expect(page.locator(".sr-status")).toHaveText("Waiting for your answer…");
  await page.screenshot({ path: "test-results/interrupt-card.png" });
  await card.getByRole("button", { name: "Continue" }).click();
  await expect(card).toHaveCount(0);
  await expect(answer).toHaveAttribute("data-state", "completed");
  await expect(answer.locator(".markdown")).toHaveText(`You said: ${MESSAGE}`);
});

test("an answer typed in the card is sent instead; Cancel run drops the reply", async ({ page }) => {
  await ask(page, MESSAGE);
  let card = lastAnswer(page).locator(".interrupt-card");
  await expect(card).toHaveCount(1);
  await card.getByLabel("Answer").fill("We refunded the second charge.");
  await card.getByRole("button", { name: "Send answer" }).click();
  await expect(lastAnswer(page)).toHaveAttribute("data-state", "completed");
  await expect(lastAnswer(page).locator(".markdown")).toHaveText("We refunded the second charge.");

  await ask(page, "Technical trouble: the app crashes");
  card = lastAnswer(page).locator(".interrupt-card");
  await expect(card.locator(".interrupt-metadata td").first()).toHaveText("technical");
  await card.getByRole("button", { name: "Cancel run" }).click();
  await expect(lastAnswer(page)).toHaveAttribute("data-state", "stopped");
  await expect(card).toHaveCount(0);
});
