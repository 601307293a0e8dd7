// A mock OpenAI-compatible `/v1/chat/completions` on 127.0.0.1 for the browser tests: it
// streams a reply token by token with a delay, or fails on demand, and records each request.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface Behavior {
  tokens: string[];
  delayMs: number;
  /** Answer with this status and JSON body instead of a stream. */
  error?: { status: number; body: unknown };
  /** Break the connection after this many tokens. */
  cutAfter?: number;
}

export class MockUpstream {
  readonly requests: any[] = [];
  behavior: Behavior = { tokens: ["Hello", " world"], delayMs: 0 };
  private open = new Set<ServerResponse>();

  private constructor(private readonly server: Server, readonly baseUrl: string) {}

  static async start(): Promise<MockUpstream> {
    let mock: MockUpstream | undefined;
    const server = createServer((req, res) => mock!.handle(req, res));
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    const { port } = server.address() as AddressInfo;
    mock = new MockUpstream(server, `http://127.0.0.1:${port}/v1`);
    return mock;
  }

  /** Streams still being sent. */
  get openStreams(): number {
    return this.open.size;
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    let body = "";
    for await (const chunk of req) body += chunk;
    const request = JSON.parse(body || "null");
    this.requests.push(request);
    const behavior = this.behavior;
    // As OpenAI answers a request without a key.
    if ((req.headers.authorization ?? "").trim() === "Bearer") {
      res.writeHead(401, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "You didn't provide an API key." } }));
      return;
    }
    if (behavior.error) {
      res.writeHead(behavior.error.status, { "content-type": "application/json" });
      res.end(JSON.stringify(behavior.error.body));
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    this.open.add(res);
    let closed = false;
    res.on("close", () => {
      closed = true;
      this.open.delete(res);
    });
    const chunk = (delta: object) => JSON.stringify({ choices: [{ index: 0, delta }] });
    res.write(`data: ${chunk({ role: "assistant", content: "" })}\n\n`);
    for (const [i, token] of behavior.tokens.entries()) {
      if (behavior.delayMs) await new Promise((r) => setTimeout(r, behavior.delayMs));
      if (closed) return;
      if (behavior.cutAfter !== undefined && i >= behavior.cutAfter) {
        res.destroy();
        return;
      }
      res.write(`data: ${chunk({ content: token })}\n\n`);
    }
    res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })}\n\n`);
    // As OpenAI does when asked (`stream_options: {include_usage: true}`): the counts last.
    if (request?.stream_options?.include_usage) {
      const completion = behavior.tokens.length;
      const usage = { prompt_tokens: 9, completion_tokens: completion, total_tokens: 9 + completion };
      res.write(`data: ${JSON.stringify({ choices: [], usage })}\n\n`);
    }
    res.end("data: [DONE]\n\n");
  }

  async stop(): Promise<void> {
    for (const res of this.open) res.destroy();
    await new Promise((done) => this.server.close(() => done(undefined)));
  }
}
