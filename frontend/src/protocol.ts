/**
 * The wire protocol as the browser speaks it: a TypeScript mirror of `docs/protocol.md`
 * (whose Rust definition lives in the `shared-protocol` crate).
 *
 * Responsibility: the message types, strict parsing of everything that arrives from the
 * two services (so a malformed message becomes a readable `ProtocolError` instead of a
 * `TypeError` deep inside a component), and builders for everything the browser sends
 * (so an outgoing message cannot carry a field the services would reject as unknown).
 *
 * Incoming messages are checked field by field: required fields must be present with the
 * right type, optional fields must have the right type when present. Extra fields are
 * ignored rather than rejected: the services reject unknown fields to surface typos in
 * *their* input, while a page that is older than the service it talks to should keep
 * working when a field is added.
 */

/** Where a frame came from; `source` on `waveform_latent`, `response`, `start_stream`. */
export const SOURCES = ["client", "random", "dataset", "folder", "webcam", "recorded", "imagined", "dream"] as const;
export type Source = (typeof SOURCES)[number];

/** Sources the simulation-service can stream by itself after `start_stream`. */
export const STREAM_SOURCES = ["recorded", "dataset", "folder", "webcam", "dream"] as const;
export type StreamSource = (typeof STREAM_SOURCES)[number];

/** The modelled populations: the pvc-1 array (what an absent `population` means) and the wide field. */
export const POPULATIONS = ["pvc1", "wide"] as const;
export type Population = (typeof POPULATIONS)[number];

/** A simulated response: the predicted mean counts (absent `trial`) or one Poisson draw of them. */
export const TRIALS = ["mean", "single"] as const;
export type Trial = (typeof TRIALS)[number];

/** What a frame or stream asks the simulation-service for besides its input. */
export interface FrameOptions {
  population?: Population;
  trial?: Trial;
}

/** Error codes listed in the protocol. Unknown codes are still accepted (see `ErrorMessage`). */
export const ERROR_CODES = [
  "bad_json",
  "bad_message",
  "unknown_type",
  "payload_length",
  "non_finite",
  "too_large",
  "bad_image",
  "bad_session",
  "unauthorized",
  "rate_limited",
  "overloaded",
  "binary_not_supported",
  "unavailable",
  "internal",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Session ids on the wire: 1–64 characters of `[A-Za-z0-9_-]`. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Streaming rate limits of `start_stream`. */
export const MIN_STREAM_FPS = 1;
export const MAX_STREAM_FPS = 30;
/** Largest image data URL the simulation-service accepts (4 MiB encoded). */
export const MAX_IMAGE_BYTES = 4 * 1024 * 1024;
/** Largest image side the simulation-service accepts. */
export const MAX_IMAGE_SIDE = 4096;
/** Largest payload of a response or latent. */
export const MAX_PAYLOAD_VALUES = 65_536;
/** Largest value of an `imagined` payload: a spike count per 1/30 s bin. */
export const MAX_IMAGINED_COUNT = 100;

// ---------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------

/** A reconstruction of one frame, pushed by the relay to the subscribers of a session. */
export interface ReconstructedImage {
  type: "reconstructed_image";
  session_id: string;
  /** A `data:image/...;base64,` URL, ready for an `<img src>`. */
  image_base64: string;
  frame_id?: number;
  /** Sender clock (ms since the Unix epoch) copied from the `waveform_latent`. */
  sent_at_ms?: number;
  /** Relay processing time in ms. */
  latency_ms?: number;
  /** The population whose model reconstructed it (absent: the pvc-1 array). */
  population?: Population;
}

/** The population's activity after one frame, from the simulation-service. */
export interface ResponseMessage {
  type: "response";
  session_id: string;
  frame_id?: number;
  /** Lag-major counts: `payload[l * channels + c]`. */
  payload: number[];
  /** `[lags, channels]` when present. */
  shape?: [number, number];
  /** The grayscale crop the model saw; the true movie frame's crop in recorded mode. */
  input_image?: string;
  /** Simulation processing time in ms. */
  latency_ms?: number;
  source?: Source;
  sent_at_ms?: number;
  /** In recorded mode: which movie, segment and frame this is. */
  recorded?: RecordedPosition;
  /** The population that answered, as the request named it (absent: the pvc-1 array). */
  population?: Population;
  /** `"single"` when the payload is one Poisson draw of the predicted means. */
  trial?: Trial;
}

/** Where a recorded frame sits in the dataset (0-based movie, segment, frame). */
export interface RecordedPosition {
  movie: number;
  segment: number;
  frame: number;
}

/** The relay's answer to `subscribe`; `buffered` images follow in frame order. */
export interface Subscribed {
  type: "subscribed";
  session_id: string;
  buffered: number;
}

/** An error, from either service. It never closes the connection by itself. */
export interface ErrorMessage {
  type: "error";
  /** One of `ERROR_CODES`; kept as a string so a newer code still reaches the page. */
  code: string;
  message: string;
  session_id?: string;
  frame_id?: number;
}

export interface StimulusMessage {
  type: "stimulus";
  session_id: string;
  token: string;
  frame_id: number;
  /** A JPEG or PNG data URL; absent when `source` is `"random"`. */
  image?: string;
  source?: Source;
  population?: Population;
  trial?: Trial;
}

/** A response painted by the person (Imagine mode), reconstructed like a simulated one. */
export interface ImaginedMessage {
  type: "imagined";
  session_id: string;
  token: string;
  frame_id: number;
  /** Lag-major counts, each in 0..=MAX_IMAGINED_COUNT. */
  payload: number[];
  population?: Population;
}

export interface StartStreamMessage {
  type: "start_stream";
  session_id: string;
  token: string;
  source: StreamSource;
  fps: number;
  population?: Population;
  trial?: Trial;
}

export interface StopStreamMessage {
  type: "stop_stream";
  session_id: string;
}

export interface SubscribeMessage {
  type: "subscribe";
  session_id: string;
  token: string;
}

/** What the relay sends to a browser on `/ws/subscribe`. */
export type RelayIncoming = Subscribed | ReconstructedImage | ErrorMessage;
/** What the simulation-service sends to a browser on `/ws`. */
export type SimulationIncoming = ResponseMessage | ErrorMessage;
/** What a browser sends to either service. */
export type BrowserOutgoing = StimulusMessage | ImaginedMessage | StartStreamMessage | StopStreamMessage | SubscribeMessage;

/** The relay's answer to `POST /api/sessions` and `POST /api/sessions/{id}/renew`. */
export interface SessionGrant {
  session_id: string;
  /** `<expiry>.<64 hex digits>`: valid until `expires_at`. */
  token: string;
  /** When the token expires, Unix seconds (by the relay's clock). */
  expires_at?: number;
  /** Seconds from the answer until the token expires (independent of the page's clock). */
  expires_in?: number;
}

/** One recording channel: a (file, electrode) pair placed on the 10x10 array. */
export interface ChannelInfo {
  /** The recording file the channel came from (several files can share an electrode id). */
  file: string;
  /** Electrode id on the array, 1..100. */
  electrode: number;
  /** Array row, 0..9. */
  row: number;
  /** Array column, 0..9. */
  col: number;
  /** Receptive-field centre (x, y) in the model's image pixels, when the model knows it. */
  rfCentre?: [number, number];
}

/** The wide-field population of `GET /api/info` (its `wide`), when the service has it. */
export interface WideInfo {
  /** Channels in payload order; `row`/`col` are positions on each channel's own array. */
  channels: ChannelInfo[];
  lags: number;
  /** Side of the square image the model sees (rf centres are in its pixels). */
  imageSize: number;
  /** The part of the 320x240 frame the square image stands for (the whole frame). */
  cropWindow: { x: number; y: number; width: number; height: number };
  responseMean?: number[];
}

/** The simulation-service's `GET /api/info`, as far as the page needs it. */
export interface SimulationInfo {
  channels: ChannelInfo[];
  lags: number;
  /** Side length(s) in pixels of the crop the model sees, when the service says. */
  crop?: { width: number; height: number };
  /** Stream sources this service offers. */
  sources?: string[];
  /** How many held-out segments the recorded mode can replay, when the service says. */
  recordedSegments?: number;
  /** The training split's mean response (lag-major), where Imagine mode can start. */
  responseMean?: number[];
  /** Whether Recorded mode can play, is still being prepared, or cannot be had, when the service says. */
  recorded?: RecordedStatus;
  /** The wide-field population, when the service simulates it. */
  wide?: WideInfo;
  /** Why there is no wide-field population, when the service says. */
  wideAbsent?: string;
}

/** `recorded` of `GET /api/info` (shared-protocol's `RecordedStatus`). */
export type RecordedStatus =
  | { state: "ready"; segments: number }
  | { state: "preparing"; percent: number; phase?: string }
  | { state: "unavailable"; reason: string };

/** Reads `recorded` of `/api/info`; anything unrecognisable is left out (the field is informative). */
function readRecordedStatus(v: unknown): RecordedStatus | undefined {
  if (!isObject(v)) return undefined;
  if (v.state === "ready" && typeof v.segments === "number") return { state: "ready", segments: v.segments };
  if (v.state === "preparing" && typeof v.percent === "number" && Number.isFinite(v.percent)) {
    const status: RecordedStatus = { state: "preparing", percent: Math.min(100, Math.max(0, Math.round(v.percent))) };
    if (typeof v.phase === "string") status.phase = v.phase;
    return status;
  }
  if (v.state === "unavailable" && typeof v.reason === "string") return { state: "unavailable", reason: v.reason };
  return undefined;
}

/** One channel of `GET /api/projective-fields`. */
export interface ProjectiveField {
  index: number;
  electrode: number;
  /** What the channel's activity adds to the reconstruction, as a PNG data URL (mid-grey: nothing). */
  image: string;
  /** Centres in the pixels of the model's crop, when known. */
  pfCenter: [number, number] | null;
  rfCenter: [number, number] | null;
}

export interface ProjectiveFields {
  imageSize: number;
  channels: ProjectiveField[];
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

/**
 * A message that did not match the protocol: which message, which field, what was
 * expected and what arrived, so the page can show something a person can act on.
 */
export class ProtocolError extends Error {
  readonly messageType: string;
  readonly field: string;
  readonly expected: string;
  readonly got: string;

  constructor(messageType: string, field: string, expected: string, got: string) {
    super(`${messageType}: field "${field}" should be ${expected}, got ${got}`);
    this.name = "ProtocolError";
    this.messageType = messageType;
    this.field = field;
    this.expected = expected;
    this.got = got;
  }
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: ProtocolError };

/** A short description of a value for error messages, never the whole payload. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing (field missing)";
  if (value === null) return "null";
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === "string") {
    const shown = value.length > 40 ? `${value.slice(0, 37)}...` : value;
    return `the string ${JSON.stringify(shown)}`;
  }
  if (typeof value === "number") return Number.isFinite(value) ? `the number ${value}` : `${value}`;
  return `a ${typeof value}`;
}

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Field checks used by the parsers; each throws a ProtocolError naming the field. */
class Fields {
  constructor(
    private readonly obj: Obj,
    private readonly messageType: string,
  ) {}

  private fail(field: string, expected: string): never {
    throw new ProtocolError(this.messageType, field, expected, describeValue(this.obj[field]));
  }

  string(field: string): string {
    const v = this.obj[field];
    if (typeof v !== "string") this.fail(field, "a string");
    return v;
  }

  optString(field: string): string | undefined {
    return this.obj[field] === undefined ? undefined : this.string(field);
  }

  sessionId(field: string): string {
    const v = this.string(field);
    if (!SESSION_ID_PATTERN.test(v)) this.fail(field, "1-64 characters of [A-Za-z0-9_-]");
    return v;
  }

  optSessionId(field: string): string | undefined {
    return this.obj[field] === undefined ? undefined : this.sessionId(field);
  }

  finite(field: string): number {
    const v = this.obj[field];
    if (typeof v !== "number" || !Number.isFinite(v)) this.fail(field, "a finite number");
    return v;
  }

  optFinite(field: string): number | undefined {
    return this.obj[field] === undefined ? undefined : this.finite(field);
  }

  count(field: string): number {
    const v = this.obj[field];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      this.fail(field, "a non-negative integer");
    }
    return v;
  }

  optCount(field: string): number | undefined {
    return this.obj[field] === undefined ? undefined : this.count(field);
  }

  dataUrl(field: string): string {
    const v = this.string(field);
    if (!/^data:image\/[a-z0-9.+-]+;base64,/i.test(v)) this.fail(field, "an image data URL (data:image/...;base64,...)");
    return v;
  }

  optDataUrl(field: string): string | undefined {
    return this.obj[field] === undefined ? undefined : this.dataUrl(field);
  }

  optSource(field: string): Source | undefined {
    const v = this.obj[field];
    if (v === undefined) return undefined;
    if (typeof v !== "string" || !(SOURCES as readonly string[]).includes(v)) {
      this.fail(field, `one of ${SOURCES.join(", ")}`);
    }
    return v as Source;
  }

  payload(field: string): number[] {
    const v = this.obj[field];
    if (!Array.isArray(v) || v.length === 0 || v.length > MAX_PAYLOAD_VALUES) {
      this.fail(field, `a non-empty array of at most ${MAX_PAYLOAD_VALUES} numbers`);
    }
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (typeof x !== "number" || !Number.isFinite(x)) {
        throw new ProtocolError(this.messageType, `${field}[${i}]`, "a finite number", describeValue(x));
      }
    }
    return v as number[];
  }

  optChoice<T extends string>(field: string, values: readonly T[]): T | undefined {
    const v = this.obj[field];
    if (v === undefined) return undefined;
    if (typeof v !== "string" || !(values as readonly string[]).includes(v)) this.fail(field, `one of ${values.join(", ")}`);
    return v as T;
  }

  optShape(field: string): [number, number] | undefined {
    const v = this.obj[field];
    if (v === undefined) return undefined;
    if (
      !Array.isArray(v) ||
      v.length !== 2 ||
      !v.every((n: unknown) => typeof n === "number" && Number.isSafeInteger(n) && n > 0)
    ) {
      this.fail(field, "[lags, channels], two positive integers");
    }
    return [v[0] as number, v[1] as number];
  }
}

function parseJsonObject(text: string, what: string): Obj {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ProtocolError(what, "(message)", "valid JSON", err instanceof Error ? err.message : String(err));
  }
  if (!isObject(value)) throw new ProtocolError(what, "(message)", "a JSON object", describeValue(value));
  return value;
}

function guard<T>(work: () => T): ParseResult<T> {
  try {
    return { ok: true, value: work() };
  } catch (err) {
    if (err instanceof ProtocolError) return { ok: false, error: err };
    throw err;
  }
}

function readError(obj: Obj): ErrorMessage {
  const f = new Fields(obj, "error");
  const msg: ErrorMessage = { type: "error", code: f.string("code"), message: f.string("message") };
  const session = f.optString("session_id");
  if (session !== undefined) msg.session_id = session;
  const frame = f.optCount("frame_id");
  if (frame !== undefined) msg.frame_id = frame;
  return msg;
}

function readReconstructedImage(obj: Obj): ReconstructedImage {
  const f = new Fields(obj, "reconstructed_image");
  const msg: ReconstructedImage = {
    type: "reconstructed_image",
    session_id: f.sessionId("session_id"),
    image_base64: f.dataUrl("image_base64"),
  };
  const frame = f.optCount("frame_id");
  if (frame !== undefined) msg.frame_id = frame;
  const sent = f.optFinite("sent_at_ms");
  if (sent !== undefined) msg.sent_at_ms = sent;
  const latency = f.optFinite("latency_ms");
  if (latency !== undefined) msg.latency_ms = latency;
  const population = f.optChoice("population", POPULATIONS);
  if (population !== undefined) msg.population = population;
  return msg;
}

function readSubscribed(obj: Obj): Subscribed {
  const f = new Fields(obj, "subscribed");
  return { type: "subscribed", session_id: f.sessionId("session_id"), buffered: f.count("buffered") };
}

function readResponse(obj: Obj): ResponseMessage {
  const f = new Fields(obj, "response");
  const msg: ResponseMessage = {
    type: "response",
    session_id: f.sessionId("session_id"),
    payload: f.payload("payload"),
  };
  const frame = f.optCount("frame_id");
  if (frame !== undefined) msg.frame_id = frame;
  const shape = f.optShape("shape");
  if (shape !== undefined) {
    if (shape[0] * shape[1] !== msg.payload.length) {
      throw new ProtocolError(
        "response",
        "shape",
        `lags x channels equal to the payload length ${msg.payload.length}`,
        `[${shape[0]}, ${shape[1]}] (${shape[0] * shape[1]} values)`,
      );
    }
    msg.shape = shape;
  }
  const input = f.optDataUrl("input_image");
  if (input !== undefined) msg.input_image = input;
  const latency = f.optFinite("latency_ms");
  if (latency !== undefined) msg.latency_ms = latency;
  const source = f.optSource("source");
  if (source !== undefined) msg.source = source;
  const sent = f.optFinite("sent_at_ms");
  if (sent !== undefined) msg.sent_at_ms = sent;
  const recorded = obj.recorded;
  if (recorded !== undefined) {
    if (!isObject(recorded)) throw new ProtocolError("response", "recorded", "an object {movie, segment, frame}", describeValue(recorded));
    const rf = new Fields(recorded, "response.recorded");
    msg.recorded = { movie: rf.count("movie"), segment: rf.count("segment"), frame: rf.count("frame") };
  }
  const population = f.optChoice("population", POPULATIONS);
  if (population !== undefined) msg.population = population;
  const trial = f.optChoice("trial", TRIALS);
  if (trial !== undefined) msg.trial = trial;
  return msg;
}

function dispatch<T>(text: string, side: string, readers: Record<string, (obj: Obj) => T>): T {
  const obj = parseJsonObject(text, `message from the ${side}`);
  const type = obj.type;
  if (typeof type !== "string") {
    throw new ProtocolError(`message from the ${side}`, "type", "a string", describeValue(type));
  }
  const reader = readers[type];
  if (reader === undefined) {
    throw new ProtocolError(`message from the ${side}`, "type", `one of ${Object.keys(readers).join(", ")}`, describeValue(type));
  }
  return reader(obj);
}

/** Parses one text frame received from the relay's `/ws/subscribe`. */
export function parseRelayMessage(text: string): ParseResult<RelayIncoming> {
  return guard(() =>
    dispatch<RelayIncoming>(text, "relay", {
      subscribed: readSubscribed,
      reconstructed_image: readReconstructedImage,
      error: readError,
    }),
  );
}

/** Parses one text frame received from the simulation-service's `/ws`. */
export function parseSimulationMessage(text: string): ParseResult<SimulationIncoming> {
  return guard(() =>
    dispatch<SimulationIncoming>(text, "simulation service", {
      response: readResponse,
      error: readError,
    }),
  );
}

/** Parses the relay's `POST /api/sessions` (or renewal) body. */
export function parseSessionGrant(body: unknown): ParseResult<SessionGrant> {
  return guard(() => {
    if (!isObject(body)) throw new ProtocolError("session", "(body)", "a JSON object", describeValue(body));
    const f = new Fields(body, "session");
    const session_id = f.sessionId("session_id");
    const token = f.string("token");
    // `<expiry>.<hex MAC>`; a bare hex MAC is what relays without expiring tokens send.
    if (!/^(\d{1,20}\.)?[0-9a-f]{16,}$/i.test(token)) {
      throw new ProtocolError("session", "token", "<expiry digits>.<hex digits>", describeValue(token));
    }
    const grant: SessionGrant = { session_id, token };
    const expiresAt = f.optCount("expires_at");
    if (expiresAt !== undefined) grant.expires_at = expiresAt;
    const expiresIn = f.optCount("expires_in");
    if (expiresIn !== undefined) grant.expires_in = expiresIn;
    return grant;
  });
}

function readCrop(value: unknown): { width: number; height: number } | undefined {
  const positive = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n > 0;
  if (positive(value)) return { width: value, height: value };
  if (Array.isArray(value) && value.length === 2 && positive(value[0]) && positive(value[1])) {
    // [height, width], the order of image tensors.
    return { width: value[1], height: value[0] };
  }
  if (isObject(value) && positive(value.width) && positive(value.height)) {
    return { width: value.width, height: value.height };
  }
  return undefined;
}

/**
 * Parses the simulation-service's `GET /api/info`. `channels` and `lags` are required:
 * without them the activity view cannot place a single value. The crop size, sources and
 * recorded segments are informative and read when present in a recognisable form.
 * Array positions are 0-based; a map written 1-based (rows/cols 1..10) is shifted.
 */
export function parseSimulationInfo(body: unknown): ParseResult<SimulationInfo> {
  return guard(() => {
    if (!isObject(body)) throw new ProtocolError("api/info", "(body)", "a JSON object", describeValue(body));
    const f = new Fields(body, "api/info");
    const lags = f.count("lags");
    if (lags === 0) throw new ProtocolError("api/info", "lags", "at least 1", "0");
    const rawChannels = body.channels;
    if (!Array.isArray(rawChannels) || rawChannels.length === 0) {
      throw new ProtocolError("api/info", "channels", "a non-empty array", describeValue(rawChannels));
    }
    const channels: ChannelInfo[] = rawChannels.map((raw: unknown, i: number) => {
      if (!isObject(raw)) throw new ProtocolError("api/info", `channels[${i}]`, "an object", describeValue(raw));
      const cf = new Fields(raw, `api/info channels[${i}]`);
      const fileValue = raw.file;
      const file = typeof fileValue === "number" ? String(fileValue) : cf.string("file");
      return { file, electrode: cf.count("electrode"), row: cf.count("row"), col: cf.count("col") };
    });
    const oneBased = channels.every((c) => c.row >= 1 && c.col >= 1) && channels.some((c) => c.row === 10 || c.col === 10);
    for (const [i, c] of channels.entries()) {
      if (oneBased) {
        c.row -= 1;
        c.col -= 1;
      }
      if (c.row > 9 || c.col > 9) {
        throw new ProtocolError("api/info", `channels[${i}]`, "row and col within the 10x10 array (0..9)", `row ${c.row}, col ${c.col}`);
      }
    }
    const info: SimulationInfo = { channels, lags };
    const crop = readCrop(body.crop_size ?? body.crop ?? body.image_size);
    if (crop !== undefined) info.crop = crop;
    if (Array.isArray(body.sources) && body.sources.every((s: unknown) => typeof s === "string")) {
      info.sources = body.sources as string[];
    }
    const mean = body.response_mean;
    if (Array.isArray(mean) && mean.length === lags * channels.length && mean.every((v: unknown) => typeof v === "number" && Number.isFinite(v))) {
      info.responseMean = mean as number[];
    }
    const segments = body.recorded_segments;
    if (typeof segments === "number" && Number.isSafeInteger(segments) && segments >= 0) info.recordedSegments = segments;
    else if (Array.isArray(segments)) info.recordedSegments = segments.length;
    const recorded = readRecordedStatus(body.recorded);
    if (recorded !== undefined) info.recorded = recorded;
    const wide = body.wide;
    if (isObject(wide) && wide.available === true) info.wide = readWideInfo(wide);
    else if (isObject(wide) && typeof wide.reason === "string") info.wideAbsent = wide.reason;
    return info;
  });
}

/** `wide` of `/api/info`: like the top level, with each channel's receptive-field centre. */
function readWideInfo(body: Obj): WideInfo {
  const what = "api/info wide";
  const f = new Fields(body, what);
  const lags = f.count("lags");
  const imageSize = f.count("image_size");
  const raw = body.channels;
  if (!Array.isArray(raw) || raw.length === 0) throw new ProtocolError(what, "channels", "a non-empty array", describeValue(raw));
  const channels = raw.map((ch: unknown, i: number): ChannelInfo => {
    if (!isObject(ch)) throw new ProtocolError(what, `channels[${i}]`, "an object", describeValue(ch));
    const cf = new Fields(ch, `${what} channels[${i}]`);
    const channel: ChannelInfo = { file: cf.string("file"), electrode: cf.count("electrode"), row: cf.count("row"), col: cf.count("col") };
    const centre = readPoint(ch.rf_centre);
    if (centre !== null) channel.rfCentre = centre;
    return channel;
  });
  const win = body.crop_window;
  if (!isObject(win)) throw new ProtocolError(what, "crop_window", "an object {x, y, width, height}", describeValue(win));
  const wf = new Fields(win, `${what} crop_window`);
  const cropWindow = { x: wf.count("x"), y: wf.count("y"), width: wf.count("width"), height: wf.count("height") };
  if (cropWindow.width === 0 || cropWindow.height === 0) throw new ProtocolError(what, "crop_window", "a non-empty rectangle", `${cropWindow.width}x${cropWindow.height}`);
  const info: WideInfo = { channels, lags, imageSize, cropWindow };
  const mean = body.response_mean;
  if (Array.isArray(mean) && mean.length === lags * channels.length && mean.every((v: unknown) => typeof v === "number" && Number.isFinite(v))) {
    info.responseMean = mean as number[];
  }
  return info;
}

function readPoint(v: unknown): [number, number] | null {
  return Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "number" && Number.isFinite(x)) ? [v[0] as number, v[1] as number] : null;
}

/** Parses the simulation-service's `GET /api/projective-fields`. */
export function parseProjectiveFields(body: unknown): ParseResult<ProjectiveFields> {
  return guard(() => {
    const what = "api/projective-fields";
    if (!isObject(body)) throw new ProtocolError(what, "(body)", "a JSON object", describeValue(body));
    const f = new Fields(body, what);
    const imageSize = f.count("image_size");
    const raw = body.channels;
    if (!Array.isArray(raw)) throw new ProtocolError(what, "channels", "an array", describeValue(raw));
    const channels = raw.map((ch: unknown, i: number): ProjectiveField => {
      if (!isObject(ch)) throw new ProtocolError(what, `channels[${i}]`, "an object", describeValue(ch));
      const cf = new Fields(ch, `${what} channels[${i}]`);
      return { index: cf.count("index"), electrode: cf.count("electrode"), image: cf.string("image"), pfCenter: readPoint(ch.pf_center), rfCenter: readPoint(ch.rf_center) };
    });
    return { imageSize, channels };
  });
}

// ---------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------

/** What identifies the browser to both services for one session. */
export interface Credentials {
  sessionId: string;
  token: string;
}

/** `population` and `trial` of `options`, each only when given. */
function withOptions<T extends object>(message: T, options: FrameOptions): T & FrameOptions {
  const out: T & FrameOptions = { ...message };
  if (options.population !== undefined) out.population = options.population;
  if (options.trial !== undefined) out.trial = options.trial;
  return out;
}

/** A stimulus carrying an image the browser chose (webcam frame, upload, drop). */
export function stimulusWithImage(cred: Credentials, frameId: number, image: string, source: Source = "client", options: FrameOptions = {}): StimulusMessage {
  return withOptions({ type: "stimulus", session_id: cred.sessionId, token: cred.token, frame_id: frameId, image, source }, options);
}

/** A stimulus asking the simulation-service to pick a random frame itself. */
export function randomStimulus(cred: Credentials, frameId: number, options: FrameOptions = {}): StimulusMessage {
  return withOptions({ type: "stimulus", session_id: cred.sessionId, token: cred.token, frame_id: frameId, source: "random" }, options);
}

/** An edited response of `population` (absent: the pvc-1 array), its values clamped into what the service accepts. */
export function imagined(cred: Credentials, frameId: number, payload: ArrayLike<number>, population?: Population): ImaginedMessage {
  const values = Array.from(payload, (v) => (Number.isFinite(v) ? Math.min(MAX_IMAGINED_COUNT, Math.max(0, v)) : 0));
  const message: ImaginedMessage = { type: "imagined", session_id: cred.sessionId, token: cred.token, frame_id: frameId, payload: values };
  if (population !== undefined) message.population = population;
  return message;
}

/** Clamps a requested rate into the 1–30 frames/s the services accept. */
export function clampFps(fps: number): number {
  if (!Number.isFinite(fps)) return MAX_STREAM_FPS;
  return Math.min(MAX_STREAM_FPS, Math.max(MIN_STREAM_FPS, Math.round(fps)));
}

export function startStream(cred: Credentials, source: StreamSource, fps: number, options: FrameOptions = {}): StartStreamMessage {
  return withOptions({ type: "start_stream", session_id: cred.sessionId, token: cred.token, source, fps: clampFps(fps) }, options);
}

export function stopStream(cred: Credentials): StopStreamMessage {
  return { type: "stop_stream", session_id: cred.sessionId };
}

export function subscribe(cred: Credentials): SubscribeMessage {
  return { type: "subscribe", session_id: cred.sessionId, token: cred.token };
}

/** Serialises an outgoing message into the one text frame it travels in. */
export function encode(message: BrowserOutgoing): string {
  return JSON.stringify(message);
}

/** A short sentence for an error code, for the page; the service's own message follows it. */
export function explainErrorCode(code: string): string {
  switch (code) {
    case "bad_image":
      return "The image could not be used";
    case "too_large":
      return "The image is too large (at most 4 MiB and 4096x4096 pixels)";
    case "unauthorized":
      return "The session token was not accepted";
    case "bad_session":
      return "The session is not valid";
    case "rate_limited":
      return "Too many frames; slow down";
    case "overloaded":
      return "The service is overloaded";
    case "payload_length":
      return "The response does not have the size the model expects";
    case "non_finite":
      return "A response value is not a usable number";
    case "unavailable":
      return "That source is not available on this service";
    case "internal":
      return "The service hit an internal error";
    case "renewal":
      return "The session's token could not be renewed";
    default:
      return "The service rejected a message";
  }
}
