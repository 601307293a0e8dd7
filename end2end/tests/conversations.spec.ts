import { expect, test, type Page } from "@playwright/test";
import { MockUpstream } from "./support/mock-upstream";
import { example, ModelCompose } from "./support/server";

let mock: MockUpstream;
let server: ModelCompose;

test.beforeAll(async () => {
  mock = await MockUpstream.start();
  // The conversation example, as shipped.
  server = await ModelCompose.up(mock.baseUrl, (c) => c, undefined, example("openai-chat-conversation"));
});

test.afterAll(async () => {
  expect(await server.remove()).toBe(0);
  await mock.stop();
});

/** Sends a prompt and waits for its answer. */
async function ask(page: Page, prompt: string) {
  const before = await page.locator(".message.user").count();
  await page.getByLabel("Prompt").fill(prompt);
  await page.getByLabel("Prompt").press("Enter");
  await expect(page.locator(".message.user")).toHaveCount(before + 1);
  await expect(page.locator(".message.assistant").last()).not.toHaveAttribute("data-state", "streaming");
  // Every chat is a conversation, with an address of its own.
  await expect(page).toHaveURL(/\/c\/[0-9A-Z]{26}$/);
}

async function open(page: Page, url: string) {
  await page.goto(url);
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
}

test("a conversation workflow gets the earlier turns as messages", async ({ page }) => {
  await open(page, server.url);
  mock.behavior = { tokens: ["Seven."], delayMs: 0 };
  await ask(page, "Name a prime number.");
  mock.behavior = { tokens: ["Eleven."], delayMs: 0 };
  // The settings folded away when the chat began; they unfold again.
  await expect(page.getByLabel("System")).toBeHidden();
  await page.getByText("Settings", { exact: true }).click();
  await page.getByLabel("System").fill("Answer in one word.");
  await ask(page, "And the next one?");
  expect(mock.requests.at(-1).messages).toEqual([
    { role: "system", content: "Answer in one word." },
    { role: "user", content: "Name a prime number." },
    { role: "assistant", content: "Seven." },
    { role: "user", content: "And the next one?" },
  ]);
  await expect(page.getByText("answers each message on its own")).toHaveCount(0);
});

test("a workflow without messages (the seed) says, once, that each message stands alone", async ({ page }) => {
  const seed = await ModelCompose.up(mock.baseUrl);
  try {
    await open(page, seed.url);
    await expect(page.getByText("This workflow answers each message on its own")).toBeVisible();
    mock.behavior = { tokens: ["Hi."], delayMs: 0 };
    await ask(page, "First");
    await expect(page.getByText("This workflow answers each message on its own")).toHaveCount(0);
    await ask(page, "Second");
    expect(mock.requests.at(-1).messages).toEqual([{ role: "user", content: "Second" }]);
  } finally {
    await seed.remove();
  }
});

test("conversations have their own address, outlive a reload and a restart, and can be continued", async ({ page }) => {
  await open(page, server.url);
  mock.behavior = { tokens: ["Paris."], delayMs: 0 };
  await ask(page, "Capital of France?\nBriefly.");
  await expect(page).toHaveURL(/\/c\/[0-9A-Z]{26}$/);
  const first = page.url();
  const item = page.locator(".conversation", { hasText: "Capital of France?" });
  await expect(item).toHaveClass(/current/);
  await expect(item).not.toContainText("Briefly");

  await page.getByRole("link", { name: "New chat" }).click();
  await expect(page).toHaveURL(server.url + "/");
  await expect(page.locator(".message")).toHaveCount(0);
  mock.behavior = { tokens: ["Berlin."], delayMs: 0 };
  await ask(page, "Capital of Germany?");
  const second = page.url();
  expect(second).not.toBe(first);

  // The new chat's address took the place of "/": back is the conversation before.
  await page.goBack();
  await expect(page).toHaveURL(first);
  await expect(page.locator(".message.assistant")).toContainText("Paris.");
  await page.goForward();
  await expect(page).toHaveURL(second);
  await expect(page.locator(".message.assistant")).toContainText("Berlin.");

  await server.stop();
  await server.start();
  await open(page, first.replace(/^http:\/\/[^/]+/, server.url));
  await expect(page.locator(".message.assistant")).toContainText("Paris.");
  await expect(page.locator(".message.user")).toContainText("Capital of France?");
  mock.behavior = { tokens: ["About two million."], delayMs: 0 };
  await ask(page, "How many people live there?");
  await expect(page.locator(".message.assistant")).toHaveCount(2);
  expect(mock.requests.at(-1).messages.slice(1)).toEqual([
    { role: "user", content: "Capital of France?\nBriefly." },
    { role: "assistant", content: "Paris." },
    { role: "user", content: "How many people live there?" },
  ]);
});

test("the sidebar groups by day, searches, renames and deletes after asking", async ({ page }) => {
  await open(page, server.url);
  mock.behavior = { tokens: ["Blue."], delayMs: 0 };
  await ask(page, "Colour of the sky?");
  await expect(page.locator(".day h2").first()).toHaveText("Today");
  const item = page.locator(".conversation", { hasText: "Colour of the sky?" });

  await page.getByLabel("Search conversations").fill("sky");
  await expect(page.locator(".conversation")).toHaveCount(1);
  await page.getByLabel("Search conversations").fill("nothing like this");
  await expect(page.getByText("Nothing matches.")).toBeVisible();
  await page.getByLabel("Search conversations").fill("");

  await item.hover();
  await item.getByRole("button", { name: "Rename" }).click();
  await page.getByLabel("New title").fill("Sky colours");
  await page.getByLabel("New title").press("Enter");
  const renamed = page.locator(".conversation", { hasText: "Sky colours" });
  await expect(renamed).toHaveCount(1);
  await page.reload();
  await expect(renamed).toHaveCount(1);

  await renamed.hover();
  await renamed.getByRole("button", { name: "Delete" }).click();
  const confirm = page.getByRole("alertdialog", { name: "Delete this conversation?" });
  await confirm.getByRole("button", { name: "Cancel" }).click();
  await expect(renamed).toHaveCount(1);
  await renamed.hover();
  await renamed.getByRole("button", { name: "Delete" }).click();
  await confirm.getByRole("button", { name: "Delete" }).click();
  await expect(renamed).toHaveCount(0);
  await expect(page).toHaveURL(server.url + "/");
});

test("regenerate keeps every version, and an edited prompt runs again from there", async ({ page }) => {
  await open(page, server.url);
  mock.behavior = { tokens: ["One."], delayMs: 0 };
  await ask(page, "Count to one");
  mock.behavior = { tokens: ["Two."], delayMs: 0 };
  await ask(page, "Now to two");
  const answers = page.locator(".message.assistant");
  mock.behavior = { tokens: ["Uno."], delayMs: 0 };
  await answers.first().getByRole("button", { name: "Regenerate" }).click();
  await expect(answers.first()).toContainText("Uno.");
  // A new answer to the first turn: the turn after it followed from the other one.
  await expect(answers).toHaveCount(1);
  await expect(answers.first().locator(".version-count")).toHaveText("2 / 2");
  await answers.first().getByRole("button", { name: "Previous answer" }).click();
  await expect(answers.first()).toContainText("One.");
  await expect(answers.first().locator(".version-count")).toHaveText("1 / 2");
  await page.reload();
  await expect(answers.first()).toContainText("One.");
  await expect(answers.first().locator(".version-count")).toHaveText("1 / 2");

  await page.locator(".message.user").first().getByRole("button", { name: "Edit" }).click();
  await page.getByLabel("Edit the prompt").fill("Count to three");
  mock.behavior = { tokens: ["One, two, three."], delayMs: 0 };
  await page.locator(".message.user .edit").getByRole("button", { name: "Send" }).click();
  await expect(answers.first()).toContainText("One, two, three.");
  await expect(page.locator(".message.user").first()).toContainText("Count to three");
  await expect(answers.first().locator(".version-count")).toHaveText("3 / 3");
  expect(mock.requests.at(-1).messages.at(-1)).toEqual({ role: "user", content: "Count to three" });
});

test("the REST API lists, shows and deletes conversations", async ({ page, request }) => {
  await open(page, server.url);
  mock.behavior = { tokens: ["Pong."], delayMs: 0 };
  await ask(page, "Ping from the UI");
  const id = page.url().split("/c/")[1];
  const list = await (await request.get(`${server.api}/conversations?q=Ping`)).json();
  expect(list.map((c: { id: string }) => c.id)).toEqual([id]);
  expect(list[0].title).toBe("Ping from the UI");
  const conversation = await (await request.get(`${server.api}/conversations/${id}`)).json();
  expect(conversation.turns).toHaveLength(1);
  expect(conversation.turns[0].versions[0]).toMatchObject({ prompt: "Ping from the UI", output: "Pong.", status: "completed" });
  expect((await request.delete(`${server.api}/conversations/${id}`)).status()).toBe(204);
  const gone = await request.get(`${server.api}/conversations/${id}`);
  expect(gone.status()).toBe(404);
  expect(await gone.json()).toEqual({ detail: "Conversation not found." });
});
