import { expect, test } from "@playwright/test";
import { MockUpstream } from "./support/mock-upstream";
import { ModelCompose } from "./support/server";

// Two workflows: the seed, and one whose inputs have other types.
const SECOND = `
- id: styled
  title: Styled answer
  description: Inputs of every kind
  job:
    output: \${output as stream/text}
    input:
      prompt: "\${input.question as text} (\${input.style as select/short,long | short}, \${input.count as integer | 3}, \${input.verbose as boolean | false}, \${input.weight as number | 0.5})"
`;

let mock: MockUpstream;
let server: ModelCompose;

test.beforeAll(async () => {
  mock = await MockUpstream.start();
  server = await ModelCompose.up(mock.baseUrl, (seed) =>
    seed.replace("workflow:\n  title", "workflows:\n- title").replace(
      "    output: ${output as stream/text}\n",
      "    output: ${output as stream/text}\n" + SECOND,
    ),
  );
});

test.afterAll(async () => {
  await server.remove();
  await mock.stop();
});

test("several workflows get a selector, and inputs get widgets that fit their type", async ({ page }) => {
  await page.goto(server.url);
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
  await expect(page.getByRole("heading", { name: "Chat with OpenAI GPT-4o" })).toBeVisible();
  await page.getByLabel("Workflow").selectOption({ label: "Styled answer" });
  await expect(page.getByRole("heading", { name: "Styled answer" })).toBeVisible();
  await expect(page.getByText("Inputs of every kind")).toBeVisible();

  // The text input is the composer's; the others are settings.
  await expect(page.getByLabel("Prompt")).toHaveJSProperty("tagName", "TEXTAREA");
  await expect(page.getByLabel("Style")).toHaveJSProperty("tagName", "SELECT");
  await expect(page.getByLabel("Count")).toHaveAttribute("type", "number");
  await expect(page.getByLabel("Count")).toHaveValue("3");
  await expect(page.getByLabel("Verbose")).toHaveAttribute("type", "checkbox");
  // A number of no known range is a number field: no slider.
  await expect(page.getByLabel("Weight")).toHaveAttribute("type", "number");
  await expect(page.getByRole("slider")).toHaveCount(0);

  await page.getByLabel("Style").selectOption("long");
  await page.getByLabel("Count").fill("5");
  await page.getByLabel("Verbose").check();
  mock.behavior = { tokens: ["ok"], delayMs: 0 };
  await page.getByLabel("Prompt").fill("Why?");
  await page.getByRole("button", { name: "Send" }).click();
  await expect(page.locator(".message.assistant").last()).toHaveAttribute("data-state", "completed");
  expect(mock.requests.at(-1).messages[0].content).toBe("Why? (long, 5, true, 0.5)");
});

test("the page follows the system's dark mode", async ({ browser }) => {
  const background = async (colorScheme: "light" | "dark") => {
    const context = await browser.newContext({ colorScheme });
    const page = await context.newPage();
    await page.goto(server.url);
    const color = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await context.close();
    return color;
  };
  expect(await background("light")).toBe("rgb(246, 246, 248)");
  expect(await background("dark")).toBe("rgb(18, 18, 24)");
});

test("a missing API key is shown in place, with Retry", async ({ page }) => {
  const keyless = await ModelCompose.up(mock.baseUrl, (config) => config, "");
  try {
    await page.goto(keyless.url);
    await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
    await page.getByLabel("Prompt").fill("Hello?");
    await page.getByLabel("Prompt").press("Enter");
    const answer = page.locator(".message.assistant").last();
    await expect(answer).toHaveAttribute("data-state", "failed");
    await expect(answer.getByRole("alert")).toContainText("upstream returned 401: You didn't provide an API key.");
    await expect(answer.getByRole("button", { name: "Retry" })).toBeVisible();
  } finally {
    await keyless.remove();
  }
});
