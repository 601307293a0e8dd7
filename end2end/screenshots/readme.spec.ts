import { expect, test, type Browser, type Page } from "@playwright/test";
import { join } from "node:path";
import { MockUpstream } from "../tests/support/mock-upstream";
import { example, ModelCompose } from "../tests/support/server";

// The README's pictures, taken of the conversation example with a mock model: a desktop and a
// phone, light and dark, and an answer while it streams. Written to docs/.

const DOCS = join(__dirname, "..", "..", "docs");

const ANSWER = [
  "Rust's ownership rules are checked when the program is compiled:\n\n",
  "- each value has **one owner**;\n",
  "- a value is dropped when its owner goes out of scope;\n",
  "- references must never outlive what they point to.\n\n",
  "```rust\nfn main() {\n    let greeting = String::from(\"hello\");\n    let moved = greeting;\n    println!(\"{moved}\");\n}\n```\n\n",
  "After the move, `greeting` can no longer be used.",
];

const TABLE = [
  "| Borrow | How many at once | May change the value |\n",
  "|---|---|---|\n",
  "| `&T` | any number | no |\n",
  "| `&mut T` | exactly one | yes |\n\n",
  "> Many readers or one writer, never both.",
];

let mock: MockUpstream;
let server: ModelCompose;

test.beforeAll(async () => {
  mock = await MockUpstream.start();
  // Asking for the usage, so that the pictures show the tokens beside each answer.
  const withUsage = (c: string) =>
    c.replace("      stream: true\n", "      stream: true\n      stream_options:\n        include_usage: true\n");
  server = await ModelCompose.up(mock.baseUrl, withUsage, undefined, example("openai-chat-conversation"));
});

test.afterAll(async () => {
  await server.remove();
  await mock.stop();
});

async function ask(page: Page, prompt: string, tokens: string[]) {
  mock.behavior = { tokens, delayMs: 0 };
  await page.getByLabel("Prompt").fill(prompt);
  await page.getByLabel("Prompt").press("Enter");
  await expect(page.locator(".message.assistant").last()).toHaveAttribute("data-state", "completed");
  await expect(page).toHaveURL(/\/c\//);
}

async function shot(browser: Browser, url: string, name: string, options: { width: number; height: number; dark?: boolean }) {
  const context = await browser.newContext({
    viewport: { width: options.width, height: options.height },
    colorScheme: options.dark ? "dark" : "light",
  });
  const page = await context.newPage();
  await page.goto(url);
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
  await expect(page.locator(".message.assistant").last()).toContainText("never both");
  await page.screenshot({ path: join(DOCS, name) });
  await context.close();
}

test("the README's pictures", async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(server.url);
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
  await ask(page, "Give me a haiku about the sea", ["Grey waves fold and break,\nsalt wind carries gulls inland,\nthe tide keeps its time."]);
  await page.getByRole("link", { name: "New chat" }).click();
  await ask(page, "How does ownership work in Rust?", ANSWER);
  await ask(page, "And borrowing?", TABLE);
  const url = page.url();

  await shot(browser, url, "ui-desktop.png", { width: 1280, height: 800 });
  await shot(browser, url, "ui-dark.png", { width: 1280, height: 800, dark: true });
  await shot(browser, url, "ui-phone.png", { width: 375, height: 812 });

  mock.behavior = { tokens: ANSWER.join("").split(/(?<= )/), delayMs: 60 };
  await page.getByLabel("Prompt").fill("Once more, slowly");
  await page.getByLabel("Prompt").press("Enter");
  const answer = page.locator(".message.assistant").last();
  await expect(answer.locator(".block li").first()).toBeVisible();
  await expect(answer).toContainText("let greeting");
  await expect(answer).toHaveAttribute("data-state", "streaming");
  await page.screenshot({ path: join(DOCS, "ui-streaming.png") });
  await context.close();
});
