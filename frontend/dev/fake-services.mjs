#!/usr/bin/env node
/**
 * Protocol-faithful stand-ins for relay-service and simulation-service, for working on the
 * page without the Rust services and their trained models (and for the e2e test's
 * `E2E_SERVICES=fake` mode). They speak docs/protocol.md: sessions with expiring HMAC
 * tokens (`POST /api/sessions` and `/api/sessions/{id}/renew`, JSON content type only),
 * `subscribe`/`subscribed`, `stimulus` -> `response` + `reconstructed_image`,
 * `imagined` -> `response` + `reconstructed_image` (Imagine mode), `start_stream`/`stop_stream`
 * for the recorded replay and the dream, `/api/info` and `/api/projective-fields`, both
 * populations (`population: "wide"`: four arrays over the whole frame, each channel with a
 * receptive-field centre but for a few) and single trials (`trial: "single"`: the counts
 * rounded to whole spikes). Every
 * message they send is first checked against the wire format's examples
 * (shared-protocol/fixtures/wire-format.json, through dev/wire-format.mjs).
 *
 * What they do not do is model anything: the "activity" is a smooth function of a
 * procedural pattern, and the "reconstruction" a blurred copy of that pattern; an imagined
 * response is "reconstructed" as one soft blob per channel at its array position (the wide
 * field: where it reads), bright where the channel is above the mean and dark below.
 *
 *   node dev/fake-services.mjs [--relay-port 8080] [--sim-port 8081] [--static-dir dist]
 */
import { createHmac, randomBytes } from "node:crypto";
import { createReadStream, existsSync, statSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
import { WebSocketServer } from "ws";
import { shapeProblem } from "./wire-format.mjs";

const SECRET = process.env.V1_SHARED_SECRET ?? "fake-services-secret";
/** Token lifetime in seconds (the relay's --token-ttl-secs). */
const TOKEN_TTL_SECS = Number(process.env.V1_RELAY_TOKEN_TTL_SECS ?? 3600);
const LAGS = 3;
const SIDE = 64;

// ------------------------------------------------------------------------------ images

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A grayscale PNG data URL of `pixels` (Float64Array, 0..255, side x side). */
function pngDataUrl(pixels, side) {
  const raw = Buffer.alloc((side + 1) * side);
  for (let y = 0; y < side; y++) {
    raw[y * (side + 1)] = 0;
    for (let x = 0; x < side; x++) raw[y * (side + 1) + 1 + x] = Math.max(0, Math.min(255, Math.round(pixels[y * side + x])));
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grayscale
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", zlib.deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
  return `data:image/png;base64,${png.toString("base64")}`;
}

/** A natural-ish frame: a few oriented gratings under soft blobs, varying with `seed`. */
function pattern(seed) {
  const px = new Float64Array(SIDE * SIDE);
  const t = seed * 0.37;
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      const u = x / SIDE - 0.5;
      const v = y / SIDE - 0.5;
      const g1 = Math.sin(18 * (u * Math.cos(t) + v * Math.sin(t)) + seed);
      const g2 = Math.sin(9 * (u * Math.cos(t * 1.7 + 1) - v * Math.sin(t * 1.3)) + 2 * seed);
      const blob = Math.exp(-((u - 0.2 * Math.sin(t)) ** 2 + (v - 0.2 * Math.cos(t * 0.7)) ** 2) / 0.05);
      px[y * SIDE + x] = 128 + 70 * g1 * blob + 40 * g2 * (1 - blob);
    }
  }
  return px;
}

function blur(px, passes = 3) {
  let cur = px;
  for (let p = 0; p < passes; p++) {
    const next = new Float64Array(cur.length);
    for (let y = 0; y < SIDE; y++) {
      for (let x = 0; x < SIDE; x++) {
        let s = 0;
        let n = 0;
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const yy = y + dy;
            const xx = x + dx;
            if (yy < 0 || yy >= SIDE || xx < 0 || xx >= SIDE) continue;
            s += cur[yy * SIDE + xx];
            n += 1;
          }
        }
        next[y * SIDE + x] = s / n;
      }
    }
    cur = next;
  }
  return cur;
}

// ------------------------------------------------------------------------------ model stand-in

/** Deterministic channel map: 48 channels from 3 "files" on 40 array positions. */
function channelMap() {
  const channels = [];
  let state = 7;
  const rand = () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
  const used = new Set();
  while (used.size < 40) used.add(1 + Math.floor(rand() * 100));
  const electrodes = [...used];
  electrodes.forEach((e, i) => channels.push({ file: `ac1_u00${1 + (i % 3)}_000.mat`, electrode: e, row: Math.floor((e - 1) / 10), col: (e - 1) % 10 }));
  electrodes.slice(0, 8).forEach((e) => channels.push({ file: "ac1_u004_000.mat", electrode: e, row: Math.floor((e - 1) / 10), col: (e - 1) % 10 }));
  return channels;
}

const CHANNELS = channelMap();

/**
 * The wide-field stand-in: four arrays (one per quadrant of the frame) of 5x5 channels,
 * each with its receptive-field centre in the (square) image's pixels, except the last
 * three channels of the last array, which have none.
 */
function wideChannelMap() {
  const channels = [];
  for (let a = 0; a < 4; a++) {
    for (let i = 0; i < 25; i++) {
      const [row, col] = [Math.floor(i / 5), i % 5];
      const ch = { file: `w0${a + 1}_u001_000.mat`, electrode: i + 1, row, col };
      if (!(a === 3 && i >= 22)) ch.rf_centre = [((a % 2) * 5 + col + 0.5) * (SIDE / 10), (Math.floor(a / 2) * 5 + row + 0.5) * (SIDE / 10)];
      channels.push(ch);
    }
  }
  return channels;
}

const WIDE_CHANNELS = wideChannelMap();

/** Where a channel of either population reads its contrast, in image pixels. */
function readsAt(ch) {
  if (ch.rf_centre !== undefined) return ch.rf_centre.map(Math.round);
  if (ch.file.startsWith("w")) return [SIDE / 2, SIDE / 2];
  return [Math.round(((ch.col + 0.5) / 10) * SIDE), Math.round(((ch.row + 0.5) / 10) * SIDE)];
}

/** Spike counts per lag and channel: each channel reads local contrast at its RF. */
function respond(px, channels = CHANNELS) {
  const payload = [];
  for (let l = 0; l < LAGS; l++) {
    const gain = [0.6, 1, 0.5][l];
    for (const ch of channels) {
      const [cx, cy] = readsAt(ch);
      let contrast = 0;
      for (let dy = -3; dy <= 3; dy++) {
        for (let dx = -3; dx <= 3; dx++) {
          const x = Math.min(SIDE - 1, Math.max(0, cx + dx));
          const y = Math.min(SIDE - 1, Math.max(0, cy + dy));
          contrast += Math.abs(px[y * SIDE + x] - 128);
        }
      }
      payload.push(Number(((gain * contrast) / 49 / 40 + 0.05 * Math.random()).toFixed(3)));
    }
  }
  return payload;
}

/** The mean response Imagine mode can start from. */
const MEAN_RESPONSE = new Array(LAGS * CHANNELS.length).fill(0.3);
const WIDE_MEAN_RESPONSE = new Array(LAGS * WIDE_CHANNELS.length).fill(0.3);

/** What a frame of `population` is simulated with, and how its responses are made whole. */
function population(msg) {
  const wide = msg.population === "wide";
  return {
    wide,
    channels: wide ? WIDE_CHANNELS : CHANNELS,
    /** The response's fields naming the population and the trial, as the real service writes them. */
    fields: { ...(msg.population !== undefined ? { population: msg.population } : {}), ...(msg.trial === "single" ? { trial: "single" } : {}) },
    /** A single trial stands in as the counts rounded to whole spikes. */
    trial: (payload) => (msg.trial === "single" ? payload.map((v) => Math.round(v * 3)) : payload),
  };
}
const MAX_IMAGINED_COUNT = 100;

/** Where each channel "sees", in crop pixels: the middle of its array cell. */
function centreOf(ch) {
  return [((ch.col + 0.5) / 10) * SIDE, ((ch.row + 0.5) / 10) * SIDE];
}

/** The stand-in decoder of a response: a blob per channel, signed by its activity over the mean. */
function decodeResponse(payload, wide = false) {
  const [channels, mean, at] = wide ? [WIDE_CHANNELS, WIDE_MEAN_RESPONSE, readsAt] : [CHANNELS, MEAN_RESPONSE, centreOf];
  const px = new Float64Array(SIDE * SIDE).fill(128);
  channels.forEach((ch, c) => {
    let excess = 0;
    for (let l = 0; l < LAGS; l++) excess += payload[l * channels.length + c] - mean[l * channels.length + c];
    if (excess === 0) return;
    const [cx, cy] = at(ch);
    for (let y = 0; y < SIDE; y++) {
      for (let x = 0; x < SIDE; x++) px[y * SIDE + x] += 20 * excess * Math.exp(-((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2) / 32);
    }
  });
  return px;
}

/** Why an imagined payload is refused (code and message, as the real service says), or null. */
function checkImagined(payload, channels = CHANNELS) {
  const expected = LAGS * channels.length;
  if (!Array.isArray(payload) || payload.length !== expected) {
    return ["payload_length", `imagined: payload has ${Array.isArray(payload) ? payload.length : 0} values; the model expects ${expected} (${LAGS} lags x ${channels.length} channels)`];
  }
  const bad = payload.findIndex((v) => typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > MAX_IMAGINED_COUNT);
  if (bad >= 0) return ["non_finite", `imagined: payload[${bad}] is ${payload[bad]}; imagined activity is a spike count per bin, between 0 and ${MAX_IMAGINED_COUNT}: clamp the value`];
  return null;
}

/** `GET /api/projective-fields` of either population (the wide field's `rf_center`: its channels' own, or null). */
function projectiveFields(wide = false) {
  const [channels, mean, at] = wide ? [WIDE_CHANNELS, WIDE_MEAN_RESPONSE, readsAt] : [CHANNELS, MEAN_RESPONSE, centreOf];
  const one = (c) => {
    const payload = mean.slice();
    for (let l = 0; l < LAGS; l++) payload[l * channels.length + c] += 1 / LAGS;
    return decodeResponse(payload, wide);
  };
  return {
    image_size: SIDE,
    channels: channels.map((ch, c) => ({
      index: c,
      electrode: ch.electrode,
      image: pngDataUrl(one(c), SIDE),
      pf_center: at(ch),
      rf_center: wide ? (ch.rf_centre ?? null) : centreOf(ch),
    })),
  };
}

// ------------------------------------------------------------------------------ services

/** `<expiry>.<hex HMAC-SHA256(secret, "<session id>.<expiry>")>`, as the relay issues. */
function token(sessionId, expiresAt) {
  return `${expiresAt}.${createHmac("sha256", SECRET).update(`${sessionId}.${expiresAt}`).digest("hex")}`;
}

/** A fresh grant for `sessionId`: the relay's answer to a create or renew. */
function grant(sessionId) {
  const now = Math.floor(Date.now() / 1000);
  const expiresAt = now + TOKEN_TTL_SECS;
  return { session_id: sessionId, token: token(sessionId, expiresAt), expires_at: expiresAt, expires_in: TOKEN_TTL_SECS };
}

/** Whether `tok` is a valid, unexpired token of `sessionId`. */
function tokenValid(sessionId, tok) {
  if (typeof sessionId !== "string" || typeof tok !== "string") return false;
  const [expiry, mac] = tok.split(".");
  if (!/^\d{1,20}$/.test(expiry ?? "") || mac === undefined) return false;
  return tok === token(sessionId, expiry) && Number(expiry) > Date.now() / 1000;
}

/** Reads a request body (small: the session endpoints take `{}` or `{"token": …}`). */
function readBody(req) {
  return new Promise((resolve) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
      if (body.length > 4096) req.destroy();
    });
    req.on("end", () => resolve(body));
  });
}

function jsonError(res, status, code, message) {
  res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify({ type: "error", code, message }));
}

/** Sends a message, after checking it against the wire format's examples: a fake that
 * sent what the real services never do would test the page against the wrong thing. */
function send(ws, msg) {
  const text = JSON.stringify(msg);
  const problem = shapeProblem(JSON.parse(text));
  if (problem !== null) throw new Error(`the fake services were about to send a message the protocol does not have: ${problem}: ${text.slice(0, 200)}`);
  if (ws.readyState === 1) ws.send(text);
}

function cors(res) {
  res.setHeader("Access-Control-Allow-Origin", "*");
}

const MIME = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".map": "application/json", ".png": "image/png" };

function serveStatic(dir, req, res) {
  const url = new URL(req.url, "http://x");
  const rel = decodeURIComponent(url.pathname) === "/" ? "index.html" : decodeURIComponent(url.pathname).slice(1);
  const file = path.resolve(dir, rel);
  if (!file.startsWith(path.resolve(dir)) || !existsSync(file) || !statSync(file).isFile()) {
    res.writeHead(404).end("not found");
    return;
  }
  res.writeHead(200, { "Content-Type": MIME[path.extname(file)] ?? "application/octet-stream" });
  createReadStream(file).pipe(res);
}

export async function startFakeServices({ relayPort = 0, simPort = 0, staticDir } = {}) {
  /** session id -> { subscribers: Set<ws>, buffer: msg[] } */
  const sessions = new Map();
  let relayUp = false;
  let relayServer = null;
  let relayWss = null;
  let boundRelayPort = relayPort;

  function session(id) {
    let s = sessions.get(id);
    if (!s) {
      s = { subscribers: new Set(), buffer: [] };
      sessions.set(id, s);
    }
    return s;
  }

  /** What the real relay does with a `waveform_latent`: decode, buffer, fan out. */
  function deliver(sessionId, frameId, px, sentAt, populationName) {
    if (!relayUp) return;
    const msg = {
      type: "reconstructed_image",
      session_id: sessionId,
      frame_id: frameId,
      image_base64: pngDataUrl(blur(px), SIDE),
      sent_at_ms: sentAt,
      latency_ms: 1.5,
    };
    if (populationName !== undefined) msg.population = populationName;
    const s = session(sessionId);
    s.buffer.push(msg);
    if (s.buffer.length > 32) s.buffer.shift();
    for (const ws of s.subscribers) send(ws, msg);
  }

  async function startRelay() {
    relayServer = http.createServer(async (req, res) => {
      const renew = req.method === "POST" ? /^\/api\/sessions\/([A-Za-z0-9_-]{1,64})\/renew$/.exec(req.url ?? "") : null;
      if (req.method === "POST" && (req.url === "/api/sessions" || renew)) {
        if (!/^application\/json\s*(;|$)/i.test(req.headers["content-type"] ?? "")) {
          return jsonError(res, 415, "bad_message", "this POST needs the header `Content-Type: application/json`");
        }
        const text = (await readBody(req)).trim();
        let body = {};
        try {
          if (text !== "") body = JSON.parse(text);
        } catch {
          return jsonError(res, 400, "bad_message", "the body is not JSON");
        }
        if (!renew) {
          return res.writeHead(201, { "Content-Type": "application/json" }).end(JSON.stringify(grant(randomBytes(16).toString("hex"))));
        }
        if (!tokenValid(renew[1], body?.token)) return jsonError(res, 401, "unauthorized", "missing, wrong or expired token");
        res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(grant(renew[1])));
      } else if (req.url === "/healthz") {
        res.writeHead(200, { "Content-Type": "application/json" }).end('{"status":"ok"}');
      } else if (staticDir) serveStatic(staticDir, req, res);
      else res.writeHead(404).end();
    });
    relayWss = new WebSocketServer({ noServer: true });
    relayServer.on("upgrade", (req, socket, head) => {
      if (req.url !== "/ws/subscribe") return socket.destroy();
      relayWss.handleUpgrade(req, socket, head, (ws) => {
        ws.on("message", (data) => {
          let msg;
          try {
            msg = JSON.parse(String(data));
          } catch {
            return send(ws, { type: "error", code: "bad_json", message: "not JSON" });
          }
          if (msg.type !== "subscribe") return send(ws, { type: "error", code: "unknown_type", message: `unexpected ${msg.type}` });
          if (!tokenValid(msg.session_id, msg.token)) return send(ws, { type: "error", code: "unauthorized", message: "bad token", session_id: msg.session_id });
          const s = session(msg.session_id);
          s.subscribers.add(ws);
          send(ws, { type: "subscribed", session_id: msg.session_id, buffered: s.buffer.length });
          for (const m of s.buffer) send(ws, m);
          ws.on("close", () => s.subscribers.delete(ws));
        });
      });
    });
    await new Promise((resolve) => relayServer.listen(boundRelayPort, "127.0.0.1", resolve));
    boundRelayPort = relayServer.address().port;
    relayUp = true;
  }

  async function stopRelay() {
    relayUp = false;
    for (const s of sessions.values()) s.subscribers.clear();
    for (const ws of relayWss.clients) ws.terminate();
    relayServer.closeAllConnections();
    await new Promise((resolve) => relayServer.close(resolve));
  }

  // simulation-service
  const streams = new Map();
  const simServer = http.createServer((req, res) => {
    cors(res);
    if (req.url === "/api/info") {
      res.writeHead(200, { "Content-Type": "application/json" }).end(
        JSON.stringify({
          channels: CHANNELS,
          lags: LAGS,
          crop_size: SIDE,
          sources: ["random", "recorded", "dataset", "dream"],
          recorded_segments: 4,
          response_mean: MEAN_RESPONSE,
          max_imagined_count: MAX_IMAGINED_COUNT,
          populations: ["pvc1", "wide"],
          wide: {
            available: true,
            channels: WIDE_CHANNELS,
            lags: LAGS,
            shape: [LAGS, WIDE_CHANNELS.length],
            response_len: LAGS * WIDE_CHANNELS.length,
            image_size: SIDE,
            response_mean: WIDE_MEAN_RESPONSE,
            crop_window: { x: 0, y: 0, width: 320, height: 240 },
            sources: ["dream"],
            stimulus_sources: ["client"],
          },
        }),
      );
    } else if (req.url === "/api/projective-fields" || req.url === "/api/projective-fields?population=pvc1") {
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(projectiveFields()));
    } else if (req.url === "/api/projective-fields?population=wide") {
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(projectiveFields(true)));
    } else if (req.url === "/healthz") res.writeHead(200).end('{"status":"ok"}');
    else res.writeHead(404).end();
  });
  const simWss = new WebSocketServer({ noServer: true });
  simServer.on("upgrade", (req, socket, head) => {
    if (req.url !== "/ws") return socket.destroy();
    simWss.handleUpgrade(req, socket, head, (ws) => {
      let streamTimer = null;
      const stop = () => {
        if (streamTimer) clearInterval(streamTimer);
        streamTimer = null;
      };
      ws.on("close", stop);
      ws.on("message", (data) => {
        let msg;
        try {
          msg = JSON.parse(String(data));
        } catch {
          return send(ws, { type: "error", code: "bad_json", message: "not JSON" });
        }
        if (msg.type === "stop_stream") return stop();
        if (!tokenValid(msg.session_id, msg.token)) {
          return send(ws, { type: "error", code: "unauthorized", message: "bad token", session_id: msg.session_id });
        }
        const pop = population(msg);
        const wideRefusal = (source) =>
          send(ws, {
            type: "error",
            code: "unavailable",
            message: `population "wide" simulates images sent by the browser (camera, upload) and the dream stream; source ${JSON.stringify(source)} serves frames cut for the pvc-1 array (send the image itself, or use population "pvc1")`,
            session_id: msg.session_id,
            ...(msg.frame_id !== undefined ? { frame_id: msg.frame_id } : {}),
          });
        if (msg.type === "stimulus") {
          if (msg.image !== undefined && !/^data:image\/(jpeg|png);base64,/.test(msg.image)) {
            return send(ws, { type: "error", code: "bad_image", message: "image must be a JPEG or PNG data URL", session_id: msg.session_id, frame_id: msg.frame_id });
          }
          if (pop.wide && msg.image === undefined) return wideRefusal(msg.source ?? "random");
          const seed = msg.image ? msg.image.length % 1000 : Math.floor(Math.random() * 1000);
          const px = pattern(seed);
          const started = performance.now();
          const payload = pop.trial(respond(px, pop.channels));
          send(ws, {
            type: "response",
            session_id: msg.session_id,
            frame_id: msg.frame_id,
            payload,
            shape: [LAGS, pop.channels.length],
            input_image: pngDataUrl(px, SIDE),
            latency_ms: Number((performance.now() - started).toFixed(2)),
            source: msg.source ?? "client",
            ...pop.fields,
          });
          setTimeout(() => deliver(msg.session_id, msg.frame_id, px, Date.now(), msg.population), 20);
        } else if (msg.type === "imagined") {
          const refusal = checkImagined(msg.payload, pop.channels);
          if (refusal !== null) return send(ws, { type: "error", code: refusal[0], message: refusal[1], session_id: msg.session_id, frame_id: msg.frame_id });
          send(ws, { type: "response", session_id: msg.session_id, frame_id: msg.frame_id, payload: msg.payload, shape: [LAGS, pop.channels.length], latency_ms: 0.1, source: "imagined", ...(msg.population !== undefined ? { population: msg.population } : {}) });
          const sentAt = Date.now();
          const px = decodeResponse(msg.payload, pop.wide);
          setTimeout(() => deliver(msg.session_id, msg.frame_id, px, sentAt, msg.population), 10);
        } else if (msg.type === "start_stream") {
          stop();
          if (pop.wide && msg.source !== "dream") return wideRefusal(msg.source);
          if (msg.source === "recorded" && msg.trial === "single") {
            return send(ws, { type: "error", code: "bad_message", message: 'start_stream: trial "single" draws trials from predicted means; recorded responses are single trials already: leave trial out for source "recorded"', session_id: msg.session_id });
          }
          let frame = 0;
          const dream = msg.source === "dream";
          streamTimer = setInterval(() => {
            frame += 1;
            const px = pattern(frame * 0.15);
            const response = {
              type: "response",
              session_id: msg.session_id,
              frame_id: frame,
              payload: pop.trial(respond(px, pop.channels)),
              shape: [LAGS, pop.channels.length],
              latency_ms: 0.4,
              source: dream ? "dream" : "recorded",
              ...pop.fields,
            };
            if (!dream) response.input_image = pngDataUrl(px, SIDE);
            send(ws, response);
            const sentAt = Date.now();
            setTimeout(() => deliver(msg.session_id, frame, px, sentAt, msg.population), 25);
          }, 1000 / Math.max(1, Math.min(30, msg.fps ?? 30)));
          streams.set(ws, streamTimer);
        } else send(ws, { type: "error", code: "unknown_type", message: `unexpected ${msg.type}` });
      });
    });
  });
  await new Promise((resolve) => simServer.listen(simPort, "127.0.0.1", resolve));
  await startRelay();

  return {
    get relayUrl() {
      return `http://127.0.0.1:${boundRelayPort}`;
    },
    simUrl: `ws://127.0.0.1:${simServer.address().port}/ws`,
    stopRelay,
    startRelay,
    async close() {
      if (relayUp) await stopRelay();
      for (const ws of simWss.clients) ws.terminate();
      simServer.closeAllConnections();
      await new Promise((resolve) => simServer.close(resolve));
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : fallback;
  };
  const here = path.dirname(fileURLToPath(import.meta.url));
  const services = await startFakeServices({
    relayPort: Number(arg("--relay-port", 8080)),
    simPort: Number(arg("--sim-port", 8081)),
    staticDir: path.resolve(arg("--static-dir", path.join(here, "..", "dist"))),
  });
  console.log(`fake relay on ${services.relayUrl} (serving the page), fake simulation on ${services.simUrl}`);
}
