import { expect, test, type Page } from "@playwright/test";
import { MockUpstream } from "./support/mock-upstream";
import { ModelCompose } from "./support/server";

let mock: MockUpstream;
let server: ModelCompose;

const LONG = Array.from({ length: 120 }, (_, i) => `Line ${i} of a long answer.\n\n`);

test.beforeAll(async () => {
  mock = await MockUpstream.start();
  server = await ModelCompose.up(mock.baseUrl);
});

test.afterAll(async () => {
  expect(await server.remove()).toBe(0);
  await mock.stop();
});

async function open(page: Page) {
  await page.goto(server.url);
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
}

const distanceFromEnd = (page: Page) =>
  page.locator(".messages").evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight);

test("only the message list scrolls; it follows the answer unless the reader scrolls up", async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await open(page);
  mock.behavior = { tokens: LONG, delayMs: 40 };
  await page.getByLabel("Prompt").fill("A long answer, please");
  await page.getByLabel("Prompt").press("Enter");
  const answer = page.locator(".message.assistant").last();
  await expect(answer).toContainText("Line 40");
  // The page itself does not scroll; the list does, and keeps the newest text in view.
  expect(await page.evaluate(() => document.scrollingElement!.scrollHeight - innerHeight)).toBeLessThanOrEqual(0);
  await expect.poll(() => distanceFromEnd(page)).toBeLessThan(60);
  const composer = await page.locator(".composer").boundingBox();
  expect(composer!.y + composer!.height).toBeGreaterThan(800 - 260);
  // Scrolling up stops the following; a button brings the reader back.
  await page.locator(".messages").hover();
  await page.mouse.wheel(0, -2000);
  const jump = page.getByRole("button", { name: "↓ Jump to latest" });
  await expect(jump).toBeVisible();
  const away = await distanceFromEnd(page);
  await expect(answer).toContainText("Line 70");
  expect(await distanceFromEnd(page)).toBeGreaterThan(away);
  await jump.click();
  await expect(jump).toBeHidden();
  await expect.poll(() => distanceFromEnd(page)).toBeLessThan(60);
  await page.getByRole("button", { name: "Stop" }).click();
  await expect(answer).toHaveAttribute("data-state", "stopped");
  // A short status is announced, not the conversation.
  await expect(page.locator(".sr-status")).toHaveAttribute("aria-live", "polite");
  await expect(page.locator(".sr-status")).toHaveText("Stopped.");
  expect(await page.locator("[aria-live]").count()).toBe(1);
});

test("the composer grows with its text, to a limit; the column is centred", async ({ page }) => {
  await page.setViewportSize({ width: 1600, height: 900 });
  await open(page);
  const prompt = page.getByLabel("Prompt");
  const height = async () => (await prompt.boundingBox())!.height;
  const one = await height();
  await prompt.fill("1\n2\n3\n4\n5");
  const five = await height();
  expect(five).toBeGreaterThan(one * 2);
  await prompt.fill(Array.from({ length: 80 }, (_, i) => `line ${i}`).join("\n"));
  expect(await height()).toBeLessThanOrEqual(900 * 0.4 + 1);
  const list = (await page.locator(".messages").boundingBox())!;
  const column = (await page.locator(".messages .column").boundingBox())!;
  expect(Math.abs(list.x + list.width / 2 - (column.x + column.width / 2))).toBeLessThan(12);
  expect(column.width).toBeLessThan(list.width - 200);
});

test("settings fold away and are remembered per workflow; the log folds too", async ({ page }) => {
  await open(page);
  const value = page.getByLabel("Temperature value");
  await value.fill("1.1");
  await value.press("Tab");
  await page.reload();
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
  await expect(value).toHaveValue("1.1");
  await page.locator(".settings-panel summary").click();
  await expect(value).toBeHidden();
  await page.locator(".settings-panel summary").click();
  await expect(value).toBeVisible();
  const log = page.locator(".event-log");
  await expect(log).not.toHaveAttribute("open", "");
  await log.locator("summary").click();
  await expect(log).toHaveAttribute("open", "");
  await value.fill("0.7");
  await value.press("Tab");
});

test("on a phone the conversations are a drawer, and nothing overflows", async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 812 });
  await open(page);
  mock.behavior = { tokens: ["Small screen, small answer."], delayMs: 0 };
  await page.getByLabel("Prompt").fill("Hello from a phone");
  await page.getByLabel("Prompt").press("Enter");
  await expect(page.locator(".message.assistant").last()).toHaveAttribute("data-state", "completed");
  const sidebar = page.getByRole("complementary", { name: "Conversations" });
  await expect(sidebar).not.toBeInViewport();
  await page.getByRole("button", { name: "Conversations" }).click();
  await expect(sidebar).toBeInViewport();
  await sidebar.getByRole("link", { name: "Hello from a phone" }).click();
  await expect(sidebar).not.toBeInViewport();
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width).toBeLessThanOrEqual(375);
  await expect(page.getByRole("button", { name: "Send" })).toBeInViewport();
});
