// Starts the real model-compose binary for a test: the binary is copied alone into a fresh
// directory (so nothing beside it can help it serve the site) and run from another fresh
// directory that holds only the test's model-compose.yml: the seed example, with its upstream
// replaced by a mock and its ports by 0. The server reports the ports the system picked; it
// runs with an empty environment, so that nothing of the developer's shell changes a result.
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = join(__dirname, "..", "..", "..");

/** The binary under test: $MODEL_COMPOSE_BIN, else the debug build. */
export const BINARY = resolve(process.env.MODEL_COMPOSE_BIN ?? join(ROOT, "target", "debug", "model-compose"));

/** An example's configuration, as shipped. */
export const example = (name: string) => readFileSync(join(ROOT, "examples", name, "model-compose.yml"), "utf8");

const SEED = example("openai-chat-completions-stream");

export class ModelCompose {
  private output = "";
  private child!: ChildProcess;
  url = "";
  api = "";

  private constructor(
    readonly workDir: string,
    private readonly binDir: string,
    private readonly upstream: string,
    private readonly edit: (config: string) => string,
    private readonly config: string,
  ) {}

  /**
   * Runs `model-compose up` on the seed config, its upstream at `upstream` (a mock);
   * `edit` may change the config further.
   */
  static async up(
    upstream = "http://127.0.0.1:9/v1",
    edit = (config: string) => config,
    apiKey = "sk-e2e-test-key-0123456789",
    config = SEED,
  ): Promise<ModelCompose> {
    const binDir = mkdtempSync(join(tmpdir(), "mc-bin-"));
    const workDir = mkdtempSync(join(tmpdir(), "mc-work-"));
    copyFileSync(BINARY, join(binDir, "model-compose"));
    writeFileSync(join(workDir, ".env"), `OPENAI_API_KEY=${apiKey}\n`);
    const server = new ModelCompose(workDir, binDir, upstream, edit, config);
    await server.start();
    return server;
  }

  /** (Re)starts the process on new ports, keeping the directory and its history. */
  async start(): Promise<void> {
    const config = this.edit(this.config).replace("https://api.openai.com/v1", this.upstream)
      .replace("    port: 8080", "    port: 0")
      .replace("    port: 8081", "    port: 0");
    writeFileSync(join(this.workDir, "model-compose.yml"), config);
    this.output = "";
    this.child = spawn(join(this.binDir, "model-compose"), ["up"], {
      cwd: this.workDir,
      env: {},
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout?.on("data", (chunk) => (this.output += chunk));
    this.child.stderr?.on("data", (chunk) => (this.output += chunk));
    await this.waitUntilServing();
  }

  /** Everything the process printed so far. */
  get log(): string {
    return this.output;
  }

  /** Waits for the addresses `up` prints once every port is bound, then for both to answer. */
  private async waitUntilServing(): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) {
        throw new Error(`model-compose exited with ${this.child.exitCode}:\n${this.output}`);
      }
      const api = /^API on (\S+)$/m.exec(this.output);
      const ui = /^web UI on (\S+)$/m.exec(this.output);
      if (api && ui && this.output.includes("model-compose is ready")) {
        [this.api, this.url] = [api[1], ui[1]];
        const [uiPage, health] = await Promise.all([fetch(this.url + "/"), fetch(this.api + "/health")]);
        if (uiPage.ok && health.ok) return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`model-compose did not report its addresses within 15 s:\n${this.output}`);
  }

  /** Stops the process with SIGTERM; returns its exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once("exit", r));
      this.child.kill("SIGTERM");
      await exited;
    }
    return this.child.exitCode;
  }

  /** Stops the process and removes its directories. */
  async remove(): Promise<number | null> {
    const code = await this.stop();
    rmSync(this.workDir, { recursive: true, force: true });
    rmSync(this.binDir, { recursive: true, force: true });
    return code;
  }
}
