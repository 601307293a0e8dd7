// Starts the real model-compose binary for a test: the binary is copied alone into a fresh
// directory (so nothing beside it can help it serve the site) and run from another fresh
// directory that holds only the test's model-compose.yml.
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** The binary under test: $MODEL_COMPOSE_BIN, else the debug build. */
export const BINARY = resolve(
  process.env.MODEL_COMPOSE_BIN ?? join(__dirname, "..", "..", "..", "target", "debug", "model-compose"),
);

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.on("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => done(port));
    });
  });
}

export class ModelCompose {
  private output = "";

  private constructor(
    readonly url: string,
    readonly workDir: string,
    private readonly binDir: string,
    private readonly child: ChildProcess,
  ) {
    child.stdout?.on("data", (chunk) => (this.output += chunk));
    child.stderr?.on("data", (chunk) => (this.output += chunk));
  }

  /** Runs `model-compose up` with a config whose web UI listens on a free port. */
  static async up(): Promise<ModelCompose> {
    const port = await freePort();
    const binDir = mkdtempSync(join(tmpdir(), "mc-bin-"));
    const workDir = mkdtempSync(join(tmpdir(), "mc-work-"));
    const binary = join(binDir, "model-compose");
    copyFileSync(BINARY, binary);
    writeFileSync(
      join(workDir, "model-compose.yml"),
      `controller:\n  webui:\n    driver: gradio\n    port: ${port}\n`,
    );
    const child = spawn(binary, ["up"], { cwd: workDir, stdio: ["ignore", "pipe", "pipe"] });
    const server = new ModelCompose(`http://127.0.0.1:${port}`, workDir, binDir, child);
    await server.waitUntilServing();
    return server;
  }

  /** Everything the process printed so far. */
  get log(): string {
    return this.output;
  }

  private async waitUntilServing(): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) {
        throw new Error(`model-compose exited with ${this.child.exitCode}:\n${this.output}`);
      }
      try {
        const response = await fetch(this.url + "/");
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`model-compose did not serve ${this.url} within 15 s:\n${this.output}`);
  }

  /** Stops the server with SIGTERM and removes its directories; returns the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once("exit", r));
      this.child.kill("SIGTERM");
      await exited;
    }
    rmSync(this.workDir, { recursive: true, force: true });
    rmSync(this.binDir, { recursive: true, force: true });
    return this.child.exitCode;
  }
}
