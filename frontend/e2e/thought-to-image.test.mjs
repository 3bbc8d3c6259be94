/**
 * End to end: Debian's Chromium, with a fake camera, against the real relay-service
 * (which serves the built page) and simulation-service.
 *
 * It clicks Thought-to-Image with the webcam as input and expects the reconstruction and
 * the activity heatmap within a few seconds; runs the live stream and the recorded replay;
 * then stops the relay, expects the page to say so, restarts it and expects the page to
 * recover without a reload. Screenshots go to e2e-artifacts/.
 *
 *   npm run e2e                         (RELAY_BIN, SIM_BIN, V1_MODEL_DIR, V1_DATA_DIR set)
 *   E2E_SERVICES=fake npm run e2e       (the protocol stand-ins of dev/)
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServices } from "./services.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const dist = path.join(root, "dist");
const artifacts = path.join(root, "e2e-artifacts");
/** How long a reconstruction may take to appear after the click. */
const APPEAR_MS = Number(process.env.E2E_APPEAR_MS ?? 5000);

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
];

let services;
let context;
let page;
let userDataDir;
const consoleLines = [];

async function shot(name) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

/** Fails with what the page and the services said, which is what one needs to debug. */
function context_(message) {
  return `${message}\n--- browser console ---\n${consoleLines.slice(-30).join("\n")}\n${services?.logs() ?? ""}`;
}

async function expectVisible(locator, what, timeout = APPEAR_MS) {
  try {
    await locator.first().waitFor({ state: "visible", timeout });
  } catch {
    await shot(`failure-${what.replace(/\W+/g, "-")}`);
    assert.fail(context_(`${what} did not appear within ${timeout / 1000} s`));
  }
}

/** Natural size of an image element once loaded (0 while not decoded). */
function naturalWidth(locator) {
  return locator.evaluate((img) => (img.complete ? img.naturalWidth : 0));
}

before(async () => {
  assert.ok(existsSync(path.join(dist, "index.html")), `${dist}/index.html is missing; run npm run build first`);
  mkdirSync(artifacts, { recursive: true });
  services = await startServices({ staticDir: dist });
  userDataDir = mkdtempSync(path.join(os.tmpdir(), "v1-e2e-chromium-"));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 900 },
  });
  await context.grantPermissions(["camera"], { origin: services.relayUrl });
  page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
  await page.goto(`${services.relayUrl}/?sim=${encodeURIComponent(services.simUrl)}`);
});

after(async () => {
  await context?.close();
  await services?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

test("the relay serves the page and both services connect", async () => {
  await expectVisible(page.getByRole("status", { name: "Simulation: connected" }), "the simulation connected badge", 15_000);
  await expectVisible(page.getByRole("status", { name: "Relay: connected" }), "the relay connected badge", 15_000);
  await shot("01-connected");
});

test("Thought-to-Image with the fake camera shows a reconstruction and the activity heatmap", async () => {
  await page.getByRole("radio", { name: "Webcam" }).check();
  await expectVisible(page.getByLabel("Webcam preview"), "the webcam preview", 10_000);
  // The fake camera needs a moment to deliver its first frame.
  await page.waitForFunction(() => {
    const v = document.querySelector("video");
    return v !== null && v.readyState >= 2 && v.videoWidth > 0;
  });
  const started = Date.now();
  await page.getByTestId("primary-action").click();
  const reconstruction = page.getByTestId("reconstruction");
  await expectVisible(reconstruction, "the reconstruction");
  await page.waitForFunction(() => document.querySelector('[data-testid="activity-heatmap"]')?.getAttribute("data-has-activity") === "true", null, {
    timeout: APPEAR_MS,
  });
  const elapsed = Date.now() - started;
  assert.ok((await naturalWidth(reconstruction)) > 0, "the reconstruction is a decodable image");
  await expectVisible(page.getByTestId("model-input"), "the model's input crop");
  const coloured = await page.locator('[data-testid="activity-heatmap"] rect[data-electrode]').count();
  assert.ok(coloured > 0, "the heatmap places electrodes on the array");
  console.log(`# snapshot: reconstruction and heatmap after ${elapsed} ms (${services.kind} services)`);
  await shot("02-snapshot-webcam");
});

test("a random stimulus works as well", async () => {
  await page.getByRole("radio", { name: "Random stimulus" }).check();
  const previous = await page.getByTestId("reconstruction").getAttribute("src");
  await page.keyboard.press("t");
  await page.waitForFunction(
    (prev) => {
      const img = document.querySelector('[data-testid="reconstruction"]');
      return img !== null && img.getAttribute("src") !== prev && !document.querySelector('[aria-label="Waiting for the reconstruction"]');
    },
    previous,
    { timeout: APPEAR_MS },
  );
  assert.equal(await page.getByTestId("page-error").count(), 0, context_("no error is shown after a random stimulus"));
  await shot("03-snapshot-random");
});

test("live mode streams webcam frames and shows the achieved rate and latency", async () => {
  await page.getByRole("tab", { name: "Live" }).click();
  await page.getByTestId("primary-action").click();
  await page.waitForTimeout(3000);
  const fps = Number.parseFloat((await page.getByTestId("stat-fps").textContent()).replace(/^Frame rate/, ""));
  const latency = (await page.getByTestId("stat-latency").textContent()).replace(/^Latency p50/, "");
  console.log(`# live: ${fps} frames/s achieved, p50 latency ${latency} (${services.kind} services)`);
  await shot("04-live");
  assert.ok(fps > 0, context_(`live mode achieved ${fps} frames/s`));
  assert.match(latency, /\d/, "a latency is shown");
  await page.getByTestId("primary-action").click();
});

test("recorded mode shows the true frame beside the reconstruction with a similarity score", async () => {
  const info = await (await fetch(`${services.simHttp}/api/info`)).json();
  await page.getByRole("tab", { name: "Recorded" }).click();
  await page.getByTestId("primary-action").click();
  if (Array.isArray(info.sources) && !info.sources.includes("recorded")) {
    // A service without recorded data must say so in the page.
    await expectVisible(page.getByTestId("page-error"), "the 'recording unavailable' error");
    await shot("05-recorded-unavailable");
    return;
  }
  await expectVisible(page.getByTestId("true-frame"), "the true movie frame", APPEAR_MS * 2);
  await expectVisible(page.getByTestId("reconstruction"), "the recorded reconstruction");
  await page.waitForFunction(() => {
    const dd = document.querySelectorAll('[data-testid="similarity"] dd');
    return dd.length === 3 && Number(dd[2].textContent) > 0;
  });
  const mean = await page.locator('[data-testid="similarity"] dd').nth(1).textContent();
  console.log(`# recorded: running mean similarity ${mean} (${services.kind} services)`);
  await shot("05-recorded");
  await page.getByTestId("primary-action").click();
});

test("a relay outage is shown in the page, and the page recovers without a reload", async () => {
  await page.getByRole("tab", { name: "Snapshot" }).click();
  await services.stopRelay();
  await expectVisible(page.getByTestId("relay-down"), "the 'relay is down' alert", 10_000);
  await expectVisible(page.getByRole("status", { name: /Relay: unreachable/ }), "the unreachable relay badge");
  const text = await page.getByTestId("relay-down").textContent();
  assert.match(text, /Relay is down/);
  await shot("06-relay-down");

  await services.startRelay();
  // The page retries on its own with backoff; it may already be reconnecting or connected
  // by the time the button would be clicked, and then the alert (and button) are gone.
  const reconnect = page.getByTestId("relay-down").getByRole("button", { name: "Reconnect now" });
  if ((await reconnect.count()) > 0) {
    await reconnect.click({ timeout: 2_000 }).catch(() => {});
  }
  await expectVisible(page.getByRole("status", { name: "Relay: connected" }), "the reconnected relay badge", 15_000);
  assert.equal(await page.getByTestId("relay-down").count(), 0, "the alert is gone once the relay is back");

  // The simulation reconnects to the relay on its own; allow it a few tries.
  const deadline = Date.now() + 20_000;
  let ok = false;
  while (!ok && Date.now() < deadline) {
    const shown = page.getByTestId("reconstruction");
    const before_ = (await shown.count()) > 0 ? await shown.getAttribute("src") : null;
    await page.getByTestId("primary-action").click();
    try {
      await page.waitForFunction(
        (prev) => {
          const img = document.querySelector('[data-testid="reconstruction"]');
          return img !== null && img.getAttribute("src") !== prev;
        },
        before_,
        { timeout: APPEAR_MS },
      );
      ok = true;
    } catch {
      await page.waitForTimeout(1000);
    }
  }
  await shot("07-relay-recovered");
  assert.ok(ok, context_("a new reconstruction arrived after the relay came back"));
});
