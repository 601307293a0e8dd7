import { expect, test } from "@playwright/test";
import OpenAI from "openai";
import { MockProviders } from "./support/mock-providers";
import { example, ModelCompose } from "./support/server";

// OpenAI's own SDK (the npm `openai` package, not written here) against the OpenAI-compatible
// endpoint: the conversation example is a model, answered whole and streamed; an unknown model
// is the SDK's NotFoundError; the access key is the SDK's API key.

let mock: MockProviders;

test.beforeAll(async () => {
  mock = await MockProviders.start();
});

test.afterAll(async () => {
  await mock.stop();
});

const KEY = "sk-local-e2e";
const CONVERSATION = example("openai-chat-conversation").replace("controller:\n", `controller:\n  access_keys: [${KEY}]\n`);

test("the official openai SDK lists, completes and streams a conversation workflow", async () => {
  const server = await ModelCompose.up(mock.openai, undefined, undefined, CONVERSATION);
  try {
    const root = server.api.replace(/\/api$/, "");
    const client = new OpenAI({ baseURL: `${root}/v1`, apiKey: KEY, maxRetries: 0 });
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["__workflow__"]);

    const completion = await client.chat.completions.create({
      model: "__workflow__",
      messages: [{ role: "user", content: "Hi" }],
      temperature: 0.3,
    });
    expect(completion.object).toBe("chat.completion");
    expect(completion.choices[0].message).toEqual({ role: "assistant", content: "You said: Hi" });
    expect(completion.choices[0].finish_reason).toBe("stop");

    const stream = await client.chat.completions.create({
      model: "__workflow__",
      messages: [{ role: "user", content: "Hello there" }],
      stream: true,
    });
    let text = "";
    let chunks = 0;
    let finish: string | null = null;
    for await (const chunk of stream) {
      chunks += 1;
      text += chunk.choices[0]?.delta?.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe("You said: Hello there");
    expect(chunks).toBeGreaterThan(3);
    expect(finish).toBe("stop");

    await expect(client.chat.completions.create({ model: "gpt-4o", messages: [] })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const stranger = new OpenAI({ baseURL: `${root}/v1`, apiKey: "sk-wrong", maxRetries: 0 });
    await expect(stranger.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  } finally {
    expect(await server.remove()).toBe(0);
  }
});
