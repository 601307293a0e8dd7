import { defineConfig } from "@playwright/test";

// Each test file starts its own model-compose server (see tests/support/server.ts), on a
// free port, from a copy of the binary in an empty directory. Chromium is Debian's: the
// machine is offline, so Playwright never downloads a browser.
export default defineConfig({
  testDir: "./tests",
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  forbidOnly: true,
  retries: 0,
  reporter: [["list"]],
  use: {
    browserName: "chromium",
    headless: true,
    trace: "off",
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        // Other sites, for the cross-site tests: served from this machine, under their own names.
        "--host-resolver-rules=MAP *.example 127.0.0.1",
      ],
    },
  },
});
