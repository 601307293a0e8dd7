import { expect, test } from "@playwright/test";
import { MockProviders } from "./support/mock-providers";
import { example, ModelCompose } from "./support/server";

// The run view: a run's jobs as a graph, live while it runs, the route a router took and the
// branches it skipped, a job's input and output on click, and the iterations of a for-each.

let mock: MockProviders;
let problems: string[] = [];

test.beforeAll(async () => {
  mock = await MockProviders.start();
});

test.afterAll(async () => {
  await mock.stop();
});

test.beforeEach(async ({ page }) => {
  problems = [];
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(e.message));
});

test.afterEach(() => {
  expect(problems).toEqual([]);
});

const job = (page: import("@playwright/test").Page, id: string) => page.locator(`.run-graph .job[data-job="${id}"]`);

test("a routed run: live while it waits, then the route taken and the branches skipped", async ({ page, context }) => {
  const server = await ModelCompose.up(mock.openai, undefined, undefined, example("support-triage"));
  try {
    await page.goto(server.url);
    await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
    await page.getByLabel("Prompt").fill("A billing question: I was charged twice");
    await page.getByLabel("Prompt").press("Enter");
    const answer = page.locator(".message.assistant").last();
    await expect(answer.locator(".interrupt-card")).toHaveCount(1);
    // The answer links to its run, opened beside the chat.
    const opened = context.waitForEvent("page");
    await answer.getByRole("link", { name: "Run view" }).click();
    const view = await opened;
    view.on("pageerror", (e) => problems.push(e.message));
    await expect(view.locator("main.run-page")).toHaveAttribute("data-hydrated", "true");
    await expect(view.locator(".run-status")).toHaveText("interrupted");
    await expect(job(view, "send")).toHaveClass(/waiting/);
    await expect(job(view, "classify")).toHaveClass(/completed/);
    await expect(job(view, "route")).toHaveClass(/routed/);
    // Answered in the chat: the view follows by itself.
    await answer.locator(".interrupt-card").getByRole("button", { name: "Continue" }).click();
    await expect(view.locator(".run-status")).toHaveText("completed");
    await expect(job(view, "send")).toHaveClass(/completed/);
    await expect(job(view, "technical")).toHaveClass(/skipped/);
    await expect(job(view, "other")).toHaveClass(/skipped/);
    await expect(job(view, "billing")).toHaveClass(/completed/);
    await expect(view.locator(".edge.route.taken")).toHaveCount(1);
    await expect(view.locator(".edge.route:not(.taken)")).toHaveCount(2);
    // A job's input and output, on click.
    await job(view, "billing").click();
    const detail = view.locator(".job-detail");
    await expect(detail.locator("h2")).toContainText("billing");
    await expect(detail.locator(".job-input")).toContainText('"message": "A billing question: I was charged twice"');
    await expect(detail.locator(".job-input")).toContainText("You answer billing questions");
    await expect(detail.locator(".job-output")).toHaveText("You said: A billing question: I was charged twice");
    await job(view, "route").click();
    await expect(detail).toContainText("Routed to billing");
    await view.screenshot({ path: "test-results/run-view.png", fullPage: true });
  } finally {
    expect(await server.remove()).toBe(0);
  }
});

const EACH = `controller:
  adapter:
    type: http-server
    port: 8080
    base_path: /api
  webui:
    port: 8081
workflow:
  title: Shout each word
  jobs:
    - id: words
      type: for-each
      input: \${input.words}
      batch_size: 2
      do:
        component: shout
        input: {word: '\${item}'}
components:
  - id: shout
    type: shell
    action:
      command: [sh, -c, 'printf "%s!" "$1" | tr a-z A-Z', shout, '\${input.word}']
      output: \${result.stdout}
`;

test("a for-each shows its iterations, each with its input and output", async ({ page }) => {
  const server = await ModelCompose.up(mock.openai, undefined, undefined, EACH);
  try {
    const response = await page.request.post(`${server.api}/workflows/runs`, {
      data: { input: { words: ["red", "green", "blue"] } },
    });
    const state = await response.json();
    expect(state.status).toBe("completed");
    await page.goto(`${server.url}/runs/${state.task_id}`);
    await expect(page.locator("main.run-page")).toHaveAttribute("data-hydrated", "true");
    await job(page, "words").click();
    const rows = page.locator(".job-detail .iterations tbody tr");
    await expect(rows).toHaveCount(3);
    await expect(rows.nth(0).locator("td").nth(3)).toHaveText('{"word":"red"}');
    await expect(rows.nth(2).locator("td").nth(4)).toHaveText('"BLUE!"');
    await expect(page.locator(".job-detail .job-output")).toContainText('"GREEN!"');
    // Unknown runs say so.
    await page.goto(`${server.url}/runs/01NOSUCHRUN`);
    await expect(page.locator(".notice")).toHaveText("There is no run with this id (any more).");
  } finally {
    expect(await server.remove()).toBe(0);
  }
});

test("an agent's steps: each call, each result (an error in red), then its answer", async ({ page }) => {
  const tavily = (config: string) => config.replace("${env.TAVILY_API_KEY}", "tvly-e2e");
  const server = await ModelCompose.up(mock.openai, tavily, undefined, example("agent-tools"));
  try {
    await page.goto(server.url);
    await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
    const calls = [
      { name: "calculate", arguments: { expression: "6*7" } },
      { name: "no_such_tool", arguments: {} },
    ];
    await page.getByLabel("Prompt").fill(`CALL ${JSON.stringify(calls)}`);
    await page.getByLabel("Prompt").press("Enter");
    const answer = page.locator(".message.assistant").last();
    await expect(answer).toContainText("Done: 42; Error: Unknown tool 'no_such_tool'");
    await page.goto(`${server.url}${await answer.getByRole("link", { name: "Run view" }).getAttribute("href")}`);
    await expect(page.locator("main.run-page")).toHaveAttribute("data-hydrated", "true");
    await expect(page.locator(".run-status")).toHaveText("completed");
    await job(page, "__job__").click();
    const steps = page.locator(".job-detail .agent-steps .step");
    await expect(steps).toHaveCount(5);
    await expect(steps.nth(0)).toHaveClass(/call/);
    await expect(steps.nth(0).locator("summary")).toContainText("Calls calculate");
    // The results as they ended: the unknown tool's error at once, then the calculator's.
    await expect(steps.nth(2)).toHaveClass(/error/);
    await expect(steps.nth(2).locator("summary")).toContainText("Error from no_such_tool");
    await expect(steps.nth(3)).toHaveClass(/result/);
    await steps.nth(3).locator("summary").click();
    await expect(steps.nth(3).locator("pre")).toHaveText("42");
    await expect(steps.nth(4)).toHaveClass(/answer/);
    await expect(steps.nth(4).locator("pre")).toHaveText("Done: 42; Error: Unknown tool 'no_such_tool'");
    await page.screenshot({ path: "test-results/run-view-agent.png", fullPage: true });
  } finally {
    expect(await server.remove()).toBe(0);
  }
});
