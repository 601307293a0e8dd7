import { expect, test } from "@playwright/test";
import { MockProviders, MP3, PNG } from "./support/mock-providers";
import { example, ModelCompose } from "./support/server";

// The media examples in a real browser: an audio player for speech, a file picker that takes
// a chosen or dropped picture (sent once as multipart, named in the run by a reference), the
// edited picture shown, and a gallery of generated images.

let mock: MockProviders;

test.beforeAll(async () => {
  mock = await MockProviders.start();
});

test.afterAll(async () => {
  await mock.stop();
});

async function open(page: import("@playwright/test").Page, name: string): Promise<ModelCompose> {
  // The mock's images are links to 127.0.0.1, which the page loads through the server.
  const allow = (c: string) => c.replace("controller:\n", "controller:\n  fetch:\n    allow: [127.0.0.1]\n");
  const server = await ModelCompose.up(mock.openai, allow, undefined, example(name));
  await page.goto(server.url);
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
  return server;
}

test("speech comes back as an audio player", async ({ page }) => {
  const server = await open(page, "openai-text-to-speech");
  try {
    await page.getByLabel("Prompt").fill("Hello there");
    await page.getByLabel("Prompt").press("Enter");
    const answer = page.locator(".message.assistant").last();
    await expect(answer).toHaveAttribute("data-state", "completed");
    const audio = answer.locator("audio[controls]");
    await expect(audio).toHaveCount(1);
    const expected = Buffer.concat([MP3, Buffer.from("Hello there")]).toString("base64");
    await expect(audio).toHaveAttribute("src", `data:audio/mpeg;base64,${expected}`);
  } finally {
    await server.remove();
  }
});

test("a picture is chosen or dropped, uploaded once, and the edit is shown", async ({ page }) => {
  const server = await open(page, "openai-image-edit");
  const calls: string[] = [];
  page.on("request", (request) => {
    if (request.url().includes("/_ui/chat")) calls.push(request.postData() ?? "");
  });
  try {
    const zone = page.locator(".drop");
    await expect(zone).toContainText("Drop a file here, or choose one");
    // Too large: refused before sending, with the limit in the message.
    await page.getByLabel("Image").setInputFiles({ name: "huge.png", mimeType: "image/png", buffer: Buffer.alloc(26 * 1024 * 1024) });
    await expect(zone).toContainText("huge.png is larger than 25 MiB");
    await expect(zone).toHaveClass(/failed/);
    // Chosen with the file chooser.
    await page.getByLabel("Image").setInputFiles({ name: "cat.png", mimeType: "image/png", buffer: PNG });
    await expect(zone).toContainText(`cat.png · ${PNG.length} B`);
    // Dropped on the zone: it replaces the chosen one.
    const dropped = await page.evaluateHandle((b64) => {
      const transfer = new DataTransfer();
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      transfer.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
      return transfer;
    }, PNG.toString("base64"));
    await zone.dispatchEvent("drop", { dataTransfer: dropped });
    await expect(zone).toContainText(`dropped.png · ${PNG.length} B`);

    await page.getByLabel("Prompt").fill("add a hat");
    await page.getByLabel("Prompt").press("Enter");
    const answer = page.locator(".message.assistant").last();
    await expect(answer).toHaveAttribute("data-state", "completed");
    const picture = answer.locator("img");
    await expect(picture).toHaveAttribute("src", `data:image/png;base64,${PNG.toString("base64")}`);
    expect(await picture.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBe(2);

    // The run named the upload; the file itself went to the upstream as a file part.
    expect(calls.at(-1)).toContain("upload%3A");
    expect(calls.at(-1)).not.toContain(PNG.toString("base64").slice(0, 20));
    const edit = mock.seen.at(-1)!;
    expect(edit.path).toBe("/v1/images/edits");
    expect(edit.contentType).toMatch(/^multipart\/form-data; boundary=/);
    expect(edit.body.toString("latin1")).toContain('filename="dropped.png"');
    expect(edit.body.includes(PNG)).toBe(true);
  } finally {
    await server.remove();
  }
});

test("several generated images make a gallery", async ({ page }) => {
  const server = await open(page, "openai-image-generation");
  try {
    await page.getByLabel("Workflow").selectOption({ label: "Draw several sketches" });
    await page.getByLabel("Prompt").fill("owls");
    await page.getByLabel("Prompt").press("Enter");
    const answer = page.locator(".message.assistant").last();
    await expect(answer).toHaveAttribute("data-state", "completed");
    const images = answer.locator(".gallery img");
    await expect(images).toHaveCount(3);
    // The run read each link (`;url`): the page shows the bytes, loading nothing from elsewhere.
    await expect(images.first()).toHaveAttribute("src", /^data:image\/png;name=1\.png;base64,/);
    for (const image of await images.all()) {
      await expect.poll(() => image.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBe(2);
    }
  } finally {
    await server.remove();
  }
});
