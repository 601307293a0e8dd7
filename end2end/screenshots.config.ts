import { defineConfig } from "@playwright/test";
import base from "./playwright.config";

// The README's pictures (`make screenshots`): the same browser as the tests, another folder.
export default defineConfig({ ...base, testDir: "./screenshots", timeout: 60_000 });
