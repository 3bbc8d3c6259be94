/**
 * End to end: Debian's Chromium, with a fake camera, against the real relay-service
 * (which serves the built page) and simulation-service.
 *
 * The simulation-service starts while Recorded mode's dataset is still being prepared
 * (V1_DATA_DIR holds only the progress file): the page must say "Recorded mode: preparing,
 * N%", follow the progress, and turn the mode on without a reload once the test moves the
 * cache of V1_PREPARED_CACHE_DIR into place (skipped when that is not set).
 * It clicks Thought-to-Image with the webcam as input and expects the reconstruction and
 * the activity heatmap within a few seconds; runs the live stream and the recorded replay;
 * paints one electrode in Imagine mode (the reconstruction must change most near its
 * receptive field, follow each edit within 100 ms, and come back on reset), then one channel
 * of the wide field the same way, and dreams on both populations (at least 10 reconstructions
 * a second, a picture that changes); then stops the relay, expects the page to say so,
 * restarts it and expects the page to recover without a reload. Screenshots go to e2e-artifacts/.
 *
 *   npm run e2e                         (RELAY_BIN, SIM_BIN, V1_MODEL_DIR, V1_DATA_DIR set)
 *   E2E_SERVICES=fake npm run e2e       (the protocol stand-ins of dev/)
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
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

const preparingDir = process.env.V1_DATA_DIR;
const preparedCache = process.env.V1_PREPARED_CACHE_DIR;

/** Writes a file the way the services' writers do: whole, under its final name at once. */
function placeFile(target, write) {
  const tmp = `${target}.e2e-tmp`;
  write(tmp);
  renameSync(tmp, target);
}

test(
  "Recorded mode says how far its dataset's preparation is, and turns on without a reload when it is done",
  { skip: preparingDir && preparedCache ? false : "V1_PREPARED_CACHE_DIR is not set (the services start with a prepared dataset)" },
  async () => {
    const progress = { phase: "building the cache", percent: 70, updated_unix: Math.floor(Date.now() / 1000) };
    placeFile(path.join(preparingDir, ".preparing.json"), (tmp) => writeFileSync(tmp, JSON.stringify(progress)));
    const waiting = page.getByRole("tab", { name: "Recorded mode: preparing, 70%" });
    await expectVisible(waiting, "the Recorded tab saying 'preparing, 70%'", 10_000);
    assert.equal(await waiting.getAttribute("aria-disabled"), "true", "Recorded mode cannot be chosen while it is prepared");
    await shot("01b-recorded-preparing");

    const cache = path.join(preparingDir, "cache");
    mkdirSync(cache, { recursive: true });
    for (const name of readdirSync(preparedCache).filter((n) => n.endsWith(".safetensors"))) {
      placeFile(path.join(cache, name), (tmp) => copyFileSync(path.join(preparedCache, name), tmp));
    }
    rmSync(path.join(preparingDir, ".preparing.json"));
    const ready = page.getByRole("tab", { name: "Recorded", exact: true });
    await expectVisible(ready, "the Recorded tab, ready", 15_000);
    assert.equal(await ready.getAttribute("aria-disabled"), "false");
    // The recorded test below plays it, in this same page.
  },
);

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

test("the wide field: a snapshot drawn at the channels' receptive fields and reconstructed at the frame's aspect", async (t) => {
  const info = await (await fetch(`${services.simHttp}/api/info`)).json();
  if (info.wide?.available !== true) {
    t.skip(`the ${services.kind} simulation-service has no wide-field model (scripts/e2e.sh gives the real ones V1_WIDE_MODEL)`);
    return;
  }
  const wide = page.getByRole("radio", { name: "wide field" });
  await page.waitForFunction(() => document.querySelector('input[name="population"][value="wide"]')?.disabled === false, null, { timeout: APPEAR_MS });
  await wide.check();
  await page.getByRole("radio", { name: "single trial" }).check();
  // The service's random frames are the pvc-1 array's: the page moves to the webcam.
  assert.equal(await page.getByRole("radio", { name: "Webcam" }).isChecked(), true, "the wide field starts on the webcam");
  await page.getByTestId("primary-action").click();
  await page.waitForFunction(() => document.querySelector('[data-testid="activity-wide"]')?.getAttribute("data-has-activity") === "true", null, {
    timeout: APPEAR_MS,
  });
  const markers = await page.locator('[data-testid="activity-wide"] circle').count();
  assert.ok(markers > 0, "the wide map places the channels");
  const reconstruction = page.getByTestId("reconstruction");
  await page.waitForFunction(() => document.querySelector('[data-testid="reconstruction"]')?.classList.contains("frame-aspect") === true, null, { timeout: APPEAR_MS });
  const { width, height } = info.wide.crop_window;
  assert.equal(await reconstruction.evaluate((img) => img.style.aspectRatio), `${width} / ${height}`, "shown at the crop window's aspect");
  assert.equal(await page.getByTestId("page-error").count(), 0, context_("no error is shown for a wide-field snapshot"));
  await shot("03b-wide-field");
  await page.getByRole("radio", { name: "mean response" }).check();
  await page.getByRole("radio", { name: "one array (pvc-1)" }).check();
  await expectVisible(page.getByTestId("activity-heatmap"), "the array again");
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

/** Gray levels (0..255) of the reconstruction as decoded, its size (`side`: its width), and its src. */
async function reconstructionPixels() {
  return page.getByTestId("reconstruction").evaluate(async (img) => {
    await img.decode();
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const rgba = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const gray = [];
    for (let i = 0; i < rgba.length; i += 4) gray.push(rgba[i]);
    return { gray, side: canvas.width, width: canvas.width, height: canvas.height, src: img.getAttribute("src") };
  });
}

/** The frame id of the reconstruction shown (a new frame may bring the same image). */
function shownFrame() {
  return page.getByTestId("reconstruction").getAttribute("data-frame-id");
}

/** Waits until the reconstruction of a frame other than `previous` is shown, then until no newer one came for `quietMs`. */
async function reconstructionSettles(previous, quietMs = 400) {
  await page.waitForFunction((prev) => document.querySelector('[data-testid="reconstruction"]')?.getAttribute("data-frame-id") !== prev, previous, { timeout: APPEAR_MS });
  let last = null;
  let stableSince = Date.now();
  for (;;) {
    const now = await shownFrame();
    if (now !== last) {
      last = now;
      stableSince = Date.now();
    } else if (Date.now() - stableSince >= quietMs) return last;
    await page.waitForTimeout(50);
  }
}

test("Imagine mode: raising one electrode changes the reconstruction most near its receptive field, and reset restores it", async () => {
  const fields = await (await fetch(`${services.simHttp}/api/projective-fields`)).json();
  const info = await (await fetch(`${services.simHttp}/api/info`)).json();
  await page.getByRole("tab", { name: "Imagine" }).click();
  await page.getByTestId("imagine-start").selectOption("mean");
  await expectVisible(page.getByTestId("reconstruction"), "the reconstruction of the mean response");
  const start = await reconstructionSettles(null);
  const before = await reconstructionPixels();

  // The electrode whose receptive field is estimated most reliably, inside the crop.
  const size = fields.image_size;
  const inside = fields.channels.filter((c) => Array.isArray(c.rf_center) && c.rf_center.every((v) => v >= 0 && v < size));
  assert.ok(inside.length > 0, "the dataset gives receptive-field centres inside the crop");
  const chosen = inside.reduce((best, c) => ((c.rf_snr ?? 0) > (best.rf_snr ?? 0) ? c : best));
  const ch = info.channels[chosen.index];
  const cell = page.locator(`[data-testid="activity-heatmap"] rect[data-cell="${ch.row * 10 + ch.col}"]`);

  // Edit latency: from the press on the electrode to the new reconstruction in the page.
  const { latencies, frame } = await raiseTenTimes("activity-heatmap", () => cell.click(), start);
  const p50 = latencies[Math.floor(latencies.length / 2)];
  const after = await reconstructionPixels();
  await shot("06-imagine-raised");

  // Where did the image change? Mean change within a radius of the RF centre against the whole image.
  const scale = after.side / size;
  const [rx, ry] = chosen.rf_center.map((v) => v * scale);
  const radius = after.side / 6;
  let near = 0;
  let nearN = 0;
  let all = 0;
  let cx = 0;
  let cy = 0;
  for (let i = 0; i < after.gray.length; i++) {
    const d = Math.abs(after.gray[i] - before.gray[i]);
    const x = (i % after.side) + 0.5;
    const y = Math.floor(i / after.side) + 0.5;
    all += d;
    cx += d * x;
    cy += d * y;
    if ((x - rx) ** 2 + (y - ry) ** 2 <= radius ** 2) {
      near += d;
      nearN += 1;
    }
  }
  const meanAll = all / after.gray.length;
  const meanNear = near / Math.max(1, nearN);
  const centroid = [cx / all, cy / all].map((v) => v / scale);
  const offset = Math.hypot(centroid[0] - chosen.rf_center[0], centroid[1] - chosen.rf_center[1]);
  console.log(
    `# imagine: electrode ${chosen.electrode} (RF centre ${chosen.rf_center.map((v) => v.toFixed(1))} of a ${size} px crop) raised by 20 spikes: mean change ${meanAll.toFixed(2)} grey levels, ${meanNear.toFixed(2)} within ${(radius / scale).toFixed(1)} px of the RF centre (x${(meanNear / meanAll).toFixed(2)}); centroid of the change ${centroid.map((v) => v.toFixed(1))}, ${offset.toFixed(1)} px from the RF centre; edit-to-image p50 ${p50.toFixed(0)} ms, max ${latencies[latencies.length - 1].toFixed(0)} ms (${services.kind} services)`,
  );
  assert.ok(meanAll > 0.5, context_(`raising electrode ${chosen.electrode} changed the reconstruction by ${meanAll.toFixed(2)} grey levels on average`));
  assert.ok(meanNear > meanAll, context_(`the change is not weighted toward the RF centre: ${meanNear.toFixed(2)} near it against ${meanAll.toFixed(2)} overall`));
  assert.ok(p50 <= 100, context_(`the reconstruction followed an edit after ${p50.toFixed(0)} ms (median of 10); at most 100 ms expected`));

  // Hovering the electrode shows its projective field.
  await cell.hover();
  await expectVisible(page.getByTestId("projective-field"), "the projective field on hover");

  await page.getByTestId("imagine-reset").click();
  await reconstructionSettles(frame);
  const back = await reconstructionPixels();
  const residual = back.gray.reduce((s, v, i) => s + Math.abs(v - before.gray[i]), 0) / back.gray.length;
  assert.ok(back.src === before.src || residual < 0.5, context_(`reset left a mean difference of ${residual.toFixed(2)} grey levels`));
  await shot("07-imagine-reset");
});

/**
 * Presses an electrode ten times with `press`, waiting each time for the reconstruction to
 * settle; returns the sorted latencies (ms) from each press on the activity panel
 * `panelTestId` to the next new reconstruction in the page, and the last reconstruction's frame.
 */
async function raiseTenTimes(panelTestId, press, start) {
  await page.evaluate((id) => {
    window.__edits = [];
    window.__images = [];
    document.querySelector(`[data-testid="${id}"]`).addEventListener("pointerdown", () => window.__edits.push(performance.now()));
    new MutationObserver(() => window.__images.push(performance.now())).observe(document.querySelector('[data-testid="reconstruction"]'), {
      attributes: true,
      attributeFilter: ["data-frame-id"],
    });
  }, panelTestId);
  const latencies = [];
  let frame = start;
  for (let i = 0; i < 10; i++) {
    await press();
    frame = await reconstructionSettles(frame, 150);
    latencies.push(
      await page.evaluate(() => {
        const pressed = window.__edits[window.__edits.length - 1];
        const shown = window.__images.find((t) => t >= pressed);
        return shown - pressed;
      }),
    );
  }
  return { latencies: latencies.sort((a, b) => a - b), frame };
}

/**
 * Where the reconstruction changed between two grey images of one size: the mean absolute
 * change overall, within `radius` (image pixels) of `centre`, and beyond twice that radius;
 * and the centroid of the change.
 */
function changeAround(before, after, centre, radius) {
  const { width, height } = after;
  const [rx, ry] = centre;
  let near = 0;
  let nearN = 0;
  let far = 0;
  let farN = 0;
  let all = 0;
  let cx = 0;
  let cy = 0;
  for (let i = 0; i < after.gray.length; i++) {
    const d = Math.abs(after.gray[i] - before.gray[i]);
    const x = (i % width) + 0.5;
    const y = Math.floor(i / width) + 0.5;
    all += d;
    cx += d * x;
    cy += d * y;
    const r2 = (x - rx) ** 2 + (y - ry) ** 2;
    if (r2 <= radius ** 2) {
      near += d;
      nearN += 1;
    } else if (r2 > (2 * radius) ** 2) {
      far += d;
      farN += 1;
    }
  }
  return {
    all: all / (width * height),
    near: near / Math.max(1, nearN),
    far: far / Math.max(1, farN),
    centroid: all > 0 ? [cx / all, cy / all] : [Number.NaN, Number.NaN],
  };
}

test("Imagine mode on the wide field: raising one channel changes the reconstruction most near its receptive field, and reset restores it", async (t) => {
  const info = await (await fetch(`${services.simHttp}/api/info`)).json();
  if (info.wide?.available !== true) {
    t.skip(`the ${services.kind} simulation-service has no wide-field model (scripts/e2e.sh gives the real ones V1_WIDE_MODEL)`);
    return;
  }
  const size = info.wide.image_size;
  // The channel whose receptive-field centre (the wide model's own estimate) lies nearest
  // the middle of the frame: chosen by where it looks, before anything is edited, so that
  // "near" and "far from" its receptive field both have room on the frame.
  const placed = info.wide.channels
    .map((ch, index) => ({ index, file: ch.file, rf: ch.rf_centre }))
    .filter((c) => Array.isArray(c.rf) && c.rf.every((v) => v >= 0 && v < size));
  assert.ok(placed.length > 0, "the wide-field model places channels on the frame");
  const offMiddle = (c) => Math.hypot(c.rf[0] - size / 2, c.rf[1] - size / 2);
  const chosen = placed.reduce((best, c) => (offMiddle(c) < offMiddle(best) ? c : best));

  await page.getByRole("tab", { name: "Imagine" }).click();
  await page.getByRole("radio", { name: "wide field" }).check();
  await page.getByTestId("imagine-start").selectOption("mean");
  await page.waitForFunction(() => document.querySelector('[data-testid="reconstruction"]')?.classList.contains("frame-aspect") === true, null, { timeout: APPEAR_MS * 2 });
  const start = await reconstructionSettles(null);
  const before = await reconstructionPixels();
  assert.equal(await page.getByTestId("activity-wide").getAttribute("data-editable"), "true", "the wide map is editable in Imagine mode");

  // The chosen channel's dot, pointed at where it is drawn; the map picks the nearest centre.
  const map = page.getByTestId("activity-wide");
  const dot = map.locator(`circle[data-channel="${chosen.index}"]`);
  await dot.scrollIntoViewIfNeeded();
  const box = await dot.boundingBox();
  assert.ok(box !== null, `channel ${chosen.index + 1}'s dot is drawn`);
  const [px, py] = [box.x + box.width / 2, box.y + box.height / 2];
  const marker = await dot.getAttribute("data-marker");

  // Hovering it names it and shows its projective field, at the frame's aspect.
  await page.mouse.move(px, py);
  // The service computes every channel's field on the first request (one batch through the decoder).
  await expectVisible(page.getByTestId("projective-field"), "the wide channel's projective field on hover", 60_000);
  assert.equal(await map.getAttribute("data-hovered"), marker, "the pointer picks the chosen channel's dot");
  assert.equal(await page.getByTestId("projective-field").getAttribute("data-channel"), String(chosen.index), "the field shown is the hovered channel's");
  await shot("07b-imagine-wide-hover");

  const { latencies, frame } = await raiseTenTimes("activity-wide", () => page.mouse.click(px, py), start);
  const p50 = latencies[Math.floor(latencies.length / 2)];
  const after = await reconstructionPixels();
  await shot("07c-imagine-wide-raised");

  // The reconstruction is the model's square image standing for the frame; the receptive
  // field's centre is in its pixels. Near: within a sixth of the side (as for the array);
  // far: beyond a third.
  const scale = after.width / size;
  const radius = after.width / 6;
  const change = changeAround(before, after, chosen.rf.map((v) => v * scale), radius);
  const centroid = change.centroid.map((v) => v / scale);
  const offset = Math.hypot(centroid[0] - chosen.rf[0], centroid[1] - chosen.rf[1]);
  console.log(
    `# imagine (wide): channel ${chosen.index + 1} of ${info.wide.channels.length} (array ${chosen.file}; RF centre ${chosen.rf.map((v) => v.toFixed(1))} of a ${size} px image, the one nearest its middle) raised by 20 spikes: mean change ${change.all.toFixed(2)} grey levels, ${change.near.toFixed(2)} within ${(radius / scale).toFixed(1)} px of the RF centre (x${(change.near / change.all).toFixed(2)}), ${change.far.toFixed(2)} beyond ${((2 * radius) / scale).toFixed(1)} px (near/far x${(change.near / change.far).toFixed(2)}); centroid of the change ${centroid.map((v) => v.toFixed(1))}, ${offset.toFixed(1)} px from the RF centre; edit-to-image p50 ${p50.toFixed(0)} ms, max ${latencies[latencies.length - 1].toFixed(0)} ms (${services.kind} services)`,
  );

  // Reset first, so that the page goes back to the array whatever the verdict.
  await page.getByTestId("imagine-reset").click();
  await reconstructionSettles(frame);
  const back = await reconstructionPixels();
  const residual = back.gray.reduce((sum, v, i) => sum + Math.abs(v - before.gray[i]), 0) / back.gray.length;
  await shot("07d-imagine-wide-reset");
  await page.getByRole("radio", { name: "one array (pvc-1)" }).check();

  assert.ok(change.all > 0.5, context_(`raising wide channel ${chosen.index + 1} changed the reconstruction by ${change.all.toFixed(2)} grey levels on average`));
  assert.ok(back.src === before.src || residual < 0.5, context_(`reset left a mean difference of ${residual.toFixed(2)} grey levels`));
  assert.ok(p50 <= 100, context_(`the reconstruction followed an edit after ${p50.toFixed(0)} ms (median of 10); at most 100 ms expected`));
  assert.ok(change.near > change.all, context_(`the change is not weighted toward the RF centre: ${change.near.toFixed(2)} near it against ${change.all.toFixed(2)} overall`));
  assert.ok(change.near > change.far, context_(`the change near the RF centre (${change.near.toFixed(2)}) is not larger than far from it (${change.far.toFixed(2)})`));
});

/**
 * Dreams for 3 s and returns what the page showed: reconstructions arrived per second (the
 * page's own count) and distinct images. The dream sends mean rates along a slow eased walk,
 * so a model that barely reacts to a small step of the walk (the e2e's small model) may
 * return the same JPEG twice in a row: arrivals measure the stream, distinct images that the
 * picture is not frozen.
 */
async function dream(name) {
  await page.getByRole("tab", { name: "Dream" }).click();
  await page.getByTestId("primary-action").click();
  await expectVisible(page.getByTestId("reconstruction"), `the first dream reconstruction (${name})`);
  const received = async () => Number.parseInt((await page.getByTestId("stat-received").textContent()).replace(/^Reconstructions/, ""), 10);
  const before = await received();
  const seen = await page.evaluate(async () => {
    const img = document.querySelector('[data-testid="reconstruction"]');
    const sources = new Set();
    let changes = 0;
    const observer = new MutationObserver(() => {
      changes += 1;
      sources.add(img.getAttribute("src"));
    });
    observer.observe(img, { attributes: true, attributeFilter: ["src"] });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    observer.disconnect();
    return { changes, distinct: sources.size };
  });
  const arrived = (await received()) - before;
  const result = { fps: arrived / 3, distinctPerS: seen.distinct / 3 };
  const summary = `${arrived} reconstructions arrived (${result.fps.toFixed(1)} frames/s), ${seen.changes} image changes, ${seen.distinct} distinct images in 3 s`;
  console.log(`# dream (${name}): ${summary} (${services.kind} services)`);
  await shot(`08-dream-${name.replace(/\W+/g, "-")}`);
  await page.getByTestId("primary-action").click();
  return { ...result, summary };
}

/** At least 10 reconstructions a second, and a picture that changes several times a second. */
function assertDreaming(name, seen) {
  assert.ok(seen.fps >= 10, context_(`the ${name} dream: ${seen.summary}; at least 10 reconstructions a second were expected`));
  assert.ok(seen.distinctPerS >= 3, context_(`the ${name} dream: ${seen.summary}; the picture should change at least 3 times a second`));
}

test("Dream mode shows a changing image at 10 frames/s or more", async () => {
  assertDreaming("pvc-1", await dream("pvc-1 array"));
});

test("Dream mode on the wide field shows a changing image at the frame's aspect, at 10 frames/s or more", async (t) => {
  const info = await (await fetch(`${services.simHttp}/api/info`)).json();
  if (info.wide?.available !== true) {
    t.skip(`the ${services.kind} simulation-service has no wide-field model (scripts/e2e.sh gives the real ones V1_WIDE_MODEL)`);
    return;
  }
  await page.getByRole("radio", { name: "wide field" }).check();
  const seen = await dream("wide field");
  const aspect = await page.getByTestId("reconstruction").evaluate((img) => img.style.aspectRatio);
  await page.getByRole("radio", { name: "one array (pvc-1)" }).check();
  assert.equal(aspect, `${info.wide.crop_window.width} / ${info.wide.crop_window.height}`, "the wide dream is shown at the frame's aspect");
  assertDreaming("wide-field", seen);
});

test("a relay outage is shown in the page, and the page recovers without a reload", async () => {
  await page.getByRole("tab", { name: "Snapshot" }).click();
  await services.stopRelay();
  await expectVisible(page.getByTestId("relay-down"), "the 'relay is down' alert", 10_000);
  await expectVisible(page.getByRole("status", { name: /Relay: unreachable/ }), "the unreachable relay badge");
  const text = await page.getByTestId("relay-down").textContent();
  assert.match(text, /Relay is down/);
  await shot("09-relay-down");

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
  await shot("10-relay-recovered");
  assert.ok(ok, context_("a new reconstruction arrived after the relay came back"));
});
