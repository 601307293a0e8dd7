import { expect, test } from "@playwright/test";
import { MockProviders } from "./support/mock-providers";
import { ModelCompose } from "./support/server";

// An agent in the chat: each tool step shows inside the answer as it happens (a call running
// with a spinner, then its result folded, an error in red), the final answer below them, and
// again when the conversation is reopened.

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

const AGENT = `controller:
  adapter:
    type: http-server
    port: 8080
    base_path: /api
  webui:
    port: 8081
workflows:
  - id: ask
    default: true
    job:
      component: helper
      input: {messages: '\${input.messages as list}'}
      output: \${output[-1].content[0].text}
  - id: slow
    private: true
    name: slow_echo
    job:
      component: {type: shell, action: {command: [sh, -c, 'sleep 1.5; printf "slept:%s" "$0"', '\${input.text}'], output: '\${result.stdout}'}}
  - id: broken
    private: true
    name: broken
    job:
      component: {type: shell, action: {command: [/nonexistent/tool]}}
components:
  - id: helper
    type: agent
    model:
      component: llm
      input: {messages: '\${messages}', tools: '\${tools}'}
    tools: [slow, broken]
    action:
      messages: \${input.messages}
  - id: llm
    type: http-client
    base_url: https://api.openai.com/v1
    action:
      path: /chat/completions
      headers: {Content-Type: application/json}
      body:
        model: gpt-4o
        messages:
          '*': \${input.messages}
          role: \${item.role}
          content: \${item.content[0].text}
          '?':
            - input: \${item.role}
              value: assistant
              if_true:
                content: {'?': {input: '\${item.content[0].type}', value: text, if_true: '\${item.content[0].text}'}}
                tool_calls:
                  '*': {input: '\${item.content}', where: {input: '\${item.type}', value: tool_call}}
                  id: \${item.id}
                  type: function
                  function: {name: '\${item.name}', arguments: '\${item.arguments as text}'}
            - input: \${item.role}
              value: tool
              if_true: {content: '\${item.content[0].content}', tool_call_id: '\${item.content[0].id}'}
        tools: {'*': '\${input.tools}', type: function, function: '\${item}'}
      output:
        role: assistant
        content:
          '+':
            - '?': {input: '\${response.choices[0].message.content}', operator: neq, value: null,
                    if_true: [{type: text, text: '\${response.choices[0].message.content}'}]}
            - '*': \${response.choices[0].message.tool_calls}
              type: tool_call
              id: \${item.id}
              name: \${item.function.name}
              arguments: \${item.function.arguments as json}
`;

test("each tool step shows in the answer as it happens, then the answer; a follow-up sees them", async ({ page }) => {
  const server = await ModelCompose.up(mock.openai, undefined, undefined, AGENT);
  try {
    await page.goto(server.url);
    await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
    const calls = [
      { name: "slow_echo", arguments: { text: "a" } },
      { name: "broken", arguments: {} },
    ];
    await page.getByLabel("Prompt").fill(`CALL ${JSON.stringify(calls)}`);
    await page.getByLabel("Prompt").press("Enter");
    const answer = page.locator(".message.assistant").last();
    const steps = answer.locator(".agent-steps .step");
    // Both calls show while the slow one runs, and the failing one's error (in red) as soon
    // as it has ended.
    await expect(steps).toHaveCount(3);
    await expect(steps.nth(0)).toHaveClass(/call/);
    await expect(steps.nth(0).locator("summary")).toContainText("Calls slow_echo");
    await expect(steps.nth(0).locator(".spinner")).toBeVisible();
    // Its running time counts up while it runs.
    await expect(steps.nth(0).locator("summary .muted")).toHaveText(/running (0\.[3-9]|1\.\d) s/);
    await expect(steps.nth(1).locator(".spinner")).toHaveCount(0);
    await expect(steps.nth(2)).toHaveClass(/error/);
    await expect(steps.nth(2).locator("summary")).toContainText("Error from broken");
    await page.screenshot({ path: "test-results/agent-running.png", fullPage: true });
    // Then the slow one's result, and the answer below.
    await expect(steps).toHaveCount(4);
    await expect(answer.locator(".spinner")).toHaveCount(0);
    await expect(steps.nth(3)).toHaveClass(/result/);
    await expect(steps.nth(3).locator("summary")).toContainText("Result of slow_echo");
    await steps.nth(3).locator("summary").click();
    await expect(steps.nth(3).locator("pre")).toHaveText("slept:a");
    await expect(answer.locator(".markdown")).toContainText("Done: slept:a; ");
    await expect(answer).toHaveAttribute("data-state", "completed");
    await expect(answer.getByRole("button", { name: "Copy" })).toBeEnabled();
    await page.screenshot({ path: "test-results/agent-done.png", fullPage: true });
    // Reopened, the conversation shows the steps as they were.
    await page.reload();
    await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
    const reopened = page.locator(".message.assistant").last();
    await expect(reopened.locator(".agent-steps .step")).toHaveCount(4);
    await expect(reopened.locator(".agent-steps .step.error summary")).toContainText("Error from broken");
    await expect(reopened.locator(".spinner")).toHaveCount(0);
    // A follow-up has the last answer's tool calls and results in view.
    await page.getByLabel("Prompt").fill("And what did the slow one say?");
    await page.getByLabel("Prompt").press("Enter");
    const followUp = page.locator(".message.assistant").last();
    await expect(followUp.locator(".markdown")).toHaveText("You said: And what did the slow one say?");
    const asked = JSON.parse(mock.seen[mock.seen.length - 1].body.toString());
    const roles = asked.messages.map((m: { role: string }) => m.role);
    expect(roles).toEqual(["user", "assistant", "tool", "tool", "assistant", "user"]);
    expect(asked.messages[2]).toEqual({ role: "tool", content: "slept:a", tool_call_id: "call_0_0" });
  } finally {
    expect(await server.remove()).toBe(0);
  }
});

// The same agent with `streaming: true` and a model that streams: its text streams into the
// answer below the steps.
const STREAMING = AGENT.replace("      output: ${output[-1].content[0].text}\n", "")
  .replace("      messages: ${input.messages}\n", "      messages: ${input.messages}\n      streaming: true\n")
  .replace("        model: gpt-4o\n", "        model: gpt-4o\n        stream: true\n")
  .replace(
    AGENT.slice(AGENT.indexOf("      output:\n        role: assistant")),
    `      stream_format: json
      output:
        '+':
          - '?': {input: '\${response[].choices[0].delta.content}', operator: neq, value: null,
                  if_true: [{type: text_delta, text: '\${response[].choices[0].delta.content}'}]}
          - '*': \${response[].choices[0].delta.tool_calls}
            type: tool_call_delta
            index: \${item.index}
            id: \${item.id}
            name: \${item.function.name}
            arguments: \${item.function.arguments}
`,
  );

test("a streaming agent's text streams into the answer below its steps", async ({ page }) => {
  expect(STREAMING).toContain("streaming: true");
  expect(STREAMING).toContain("text_delta");
  const server = await ModelCompose.up(mock.openai, undefined, undefined, STREAMING);
  try {
    await page.goto(server.url);
    await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
    const calls = [{ name: "slow_echo", arguments: { text: "b" } }];
    await page.getByLabel("Prompt").fill(`CALL ${JSON.stringify(calls)}`);
    await page.getByLabel("Prompt").press("Enter");
    const answer = page.locator(".message.assistant").last();
    const steps = answer.locator(".agent-steps .step");
    await expect(steps.nth(0).locator("summary")).toContainText("Calls slow_echo");
    await expect(steps.nth(0).locator(".spinner")).toBeVisible();
    await expect(answer).toHaveAttribute("data-state", "streaming");
    await expect(answer.locator(".markdown")).toHaveText("Done: slept:b");
    await expect(answer).toHaveAttribute("data-state", "completed");
    await expect(steps).toHaveCount(2);
    await expect(steps.nth(1).locator("summary")).toContainText("Result of slow_echo");
    await page.reload();
    await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
    const reopened = page.locator(".message.assistant").last();
    await expect(reopened.locator(".agent-steps .step")).toHaveCount(2);
    await expect(reopened.locator(".markdown")).toHaveText("Done: slept:b");
  } finally {
    expect(await server.remove()).toBe(0);
  }
});

// A tool the caller runs pauses the run: the chat shows the interrupt card, its answer a
// mapping of each call's id to its result, drafted for the user to fill in.
const EXTERNAL = AGENT.replace(
  "    tools: [slow, broken]\n",
  `    tools:
      - slow
      - name: pick_color
        description: Asks the user for a color
        parameters: {type: object, properties: {}}
`,
);

test("a tool the user runs shows as a card whose answer is the tool's result", async ({ page }) => {
  expect(EXTERNAL).toContain("pick_color");
  const server = await ModelCompose.up(mock.openai, undefined, undefined, EXTERNAL);
  try {
    await page.goto(server.url);
    await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
    await page.getByLabel("Prompt").fill(`CALL ${JSON.stringify([{ name: "pick_color", arguments: {} }])}`);
    await page.getByLabel("Prompt").press("Enter");
    const answer = page.locator(".message.assistant").last();
    const card = answer.locator(".interrupt-card");
    await expect(card.locator(".interrupt-message")).toHaveText("Agent is waiting for tool results.");
    await expect(card.locator(".interrupt-metadata")).toContainText("pick_color");
    const field = card.locator("textarea.interrupt-answer");
    await expect(field).toHaveValue('{\n  "call_0_0": ""\n}');
    await field.fill('{"call_0_0": "blue"}');
    await card.getByRole("button", { name: "Send answer" }).click();
    await expect(answer.locator(".interrupt-card")).toHaveCount(0);
    await expect(answer.locator(".markdown")).toHaveText("Done: blue");
    const steps = answer.locator(".agent-steps .step");
    await expect(steps.nth(0).locator("summary")).toContainText("Calls pick_color");
    await expect(steps.nth(1).locator("summary")).toContainText("Result of pick_color");
  } finally {
    expect(await server.remove()).toBe(0);
  }
});
