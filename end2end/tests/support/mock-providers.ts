// A mock of OpenAI for the browser tests: chat completions as JSON or SSE (`You said: PROMPT`,
// or, asked by a system message for "one word: a, b or c.", the first of those words the
// prompt contains, else the last; a prompt's `CALL [...]` line calls those tools, and once
// their results are in, the answer is `Done: ` and them), speech as `audio/mpeg` bytes, image generations as links to
// images it serves itself, and image edits, which take a multipart upload. It records every
// request's path, content type and raw body.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A 2×2 orange PNG. */
export const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP438MARAwQCgAvPgYtmKN0KQAAAABJRU5ErkJggg==",
  "base64",
);

/** An ID3 tag and an MPEG frame header: bytes that are not text. */
export const MP3 = Buffer.from([0x49, 0x44, 0x33, 0x04, 0, 0, 0, 0, 0, 0, 0xff, 0xfb, 0x90, 0x64]);

export interface Seen {
  path: string;
  contentType: string;
  body: Buffer;
}

export class MockProviders {
  readonly seen: Seen[] = [];

  private constructor(private readonly server: Server, readonly base: string) {}

  static async start(): Promise<MockProviders> {
    let mock: MockProviders | undefined;
    const server = createServer((req, res) => mock!.handle(req, res));
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    const { port } = server.address() as AddressInfo;
    mock = new MockProviders(server, `http://127.0.0.1:${port}`);
    return mock;
  }

  /** Where a config's `https://api.openai.com/v1` should point. */
  get openai(): string {
    return `${this.base}/v1`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const path = req.url ?? "";
    this.seen.push({ path, contentType: req.headers["content-type"] ?? "", body });
    const json = (value: unknown) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(value));
    };
    if (path === "/v1/chat/completions") {
      const request = JSON.parse(body.toString());
      const messages: Message[] = request.messages ?? [];
      const system = messages.find((m) => m.role === "system")?.content ?? "";
      const prompt = [...messages].reverse().find((m) => m.role === "user")?.content ?? "";
      const calls = toolCalls(messages, prompt ?? "");
      const results = toolResults(messages);
      const content = results !== undefined ? `Done: ${results}` : (classified(system ?? "", prompt ?? "") ?? `You said: ${prompt}`);
      if (request.stream) {
        res.writeHead(200, { "content-type": "text/event-stream" });
        const chunk = (delta: unknown, finish: string | null = null) =>
          `data: ${JSON.stringify({ id: "chatcmpl-mock", object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
        let events = chunk({ role: "assistant", content: calls ? null : "" });
        if (calls) {
          calls.forEach((call, index) => {
            events += chunk({ tool_calls: [{ index, id: call.id, type: "function", function: { name: call.function.name, arguments: "" } }] });
            events += chunk({ tool_calls: [{ index, function: { arguments: call.function.arguments } }] });
          });
        } else {
          for (const word of content.split(/(?= )/)) events += chunk({ content: word });
        }
        res.end(events + chunk({}, calls ? "tool_calls" : "stop") + "data: [DONE]\n\n");
        return;
      }
      const message = calls ? { role: "assistant", content: null, tool_calls: calls } : { role: "assistant", content };
      json({
        id: "chatcmpl-mock",
        object: "chat.completion",
        model: request.model,
        choices: [{ index: 0, message, finish_reason: calls ? "tool_calls" : "stop" }],
      });
    } else if (path === "/v1/audio/speech") {
      res.writeHead(200, { "content-type": "audio/mpeg" });
      res.end(Buffer.concat([MP3, Buffer.from(JSON.parse(body.toString()).input)]));
    } else if (path === "/v1/images/generations") {
      const n = JSON.parse(body.toString()).n ?? 1;
      json({ data: Array.from({ length: n }, (_, i) => ({ url: `${this.base}/files/${i + 1}.png` })) });
    } else if (path === "/v1/images/edits") {
      json({ data: [{ b64_json: PNG.toString("base64") }] });
    } else if (path.startsWith("/files/")) {
      res.writeHead(200, { "content-type": "image/png" });
      res.end(PNG);
    } else {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: `no route ${path}` } }));
    }
  }

  async stop(): Promise<void> {
    await new Promise((done) => this.server.close(() => done(undefined)));
  }
}

interface Message {
  role: string;
  content: string | null;
}

interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** The tools a prompt's `CALL [{"name", "arguments"}, ...]` line asks for, until their results are in. */
function toolCalls(messages: Message[], prompt: string): ToolCall[] | undefined {
  const at = prompt.indexOf("CALL ");
  if (at < 0 || toolResults(messages) !== undefined) return undefined;
  const asked: { name: string; arguments: unknown }[] = JSON.parse(prompt.slice(at + 5).split("\n")[0]);
  const turn = messages.filter((m) => m.role === "assistant").length;
  return asked.map((call, k) => ({
    id: `call_${turn}_${k}`,
    type: "function",
    function: { name: call.name, arguments: JSON.stringify(call.arguments) },
  }));
}

/** The contents of the tool messages that end the conversation, joined by `; `. */
function toolResults(messages: Message[]): string | undefined {
  const results: string[] = [];
  for (const message of [...messages].reverse()) {
    if (message.role !== "tool") break;
    results.unshift(message.content ?? "");
  }
  return results.length > 0 ? results.join("; ") : undefined;
}

/** A classifier's answer: see the top of this file. */
function classified(system: string, prompt: string): string | undefined {
  const at = system.indexOf("one word:");
  if (at < 0) return undefined;
  const labels = system
    .slice(at + "one word:".length)
    .split(".")[0]
    .split(/,| or /)
    .map((label) => label.trim())
    .filter((label) => label.length > 0);
  const found = labels.find((label) => prompt.toLowerCase().includes(label.toLowerCase()));
  return found ?? labels[labels.length - 1];
}
