/**
 * The browser's two service clients.
 *
 * Responsibility: everything between "the page wants X" and the wire. `RelayClient` gets a
 * session from the relay and keeps a subscription to that session's reconstructions alive;
 * `SimulationClient` keeps the socket to the simulation-service alive, reads its
 * `/api/info`, and sends stimuli. Both reconnect with backoff, report their status, and
 * turn malformed messages and service errors into `ClientError`s the page can show.
 */
import { type BackoffOptions } from "./lib/backoff";
import { type ConnectionStatus, ReconnectingConnection, type SocketFactory } from "./lib/connection";
import { Emitter } from "./lib/emitter";
import {
  type BrowserOutgoing,
  type Credentials,
  type ParseResult,
  type Population,
  type ProjectiveFields,
  type ReconstructedImage,
  type ResponseMessage,
  type SessionGrant,
  type SimulationInfo,
  type Subscribed,
  encode,
  parseRelayMessage,
  parseSessionGrant,
  parseProjectiveFields,
  parseSimulationInfo,
  parseSimulationMessage,
  subscribe,
} from "./protocol";

/** A problem worth showing in the page, attributed to the service it concerns. */
export interface ClientError {
  service: "relay" | "simulation";
  /**
   * A protocol error code, `protocol` for a message the page could not read, or `renewal`
   * for a session token the page could not renew.
   */
  code: string;
  message: string;
  frameId?: number;
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

interface CommonOptions {
  socketFactory?: SocketFactory;
  fetch?: FetchLike;
  backoff?: Partial<BackoffOptions>;
  connectTimeoutMs?: number;
}

/** Turns an http(s) origin into the matching ws(s) URL for `path`. */
export function toWebSocketUrl(origin: string, path: string): string {
  const url = new URL(path, origin);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

function defaultFetch(): FetchLike {
  return (input, init) => globalThis.fetch(input, init);
}

function networkMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export interface RelayEvents extends Record<string, unknown> {
  status: ConnectionStatus;
  /** The session changed (a fresh one, or null while there is none). */
  session: Credentials | null;
  /** The session's token was renewed: same session, new token (already in `credentials`). */
  renewed: Credentials;
  subscribed: Subscribed;
  image: RelayImage;
  error: ClientError;
}

/** A reconstruction, and whether it is a replay of the relay's buffer after `subscribe`. */
export interface RelayImage {
  image: ReconstructedImage;
  /**
   * True for the `buffered` images the relay sends right after `subscribed`: frames the
   * page may already have shown, or that belong to an earlier mode. They matter only
   * when they answer a frame the page is still waiting for.
   */
  replay: boolean;
}

export interface RelayClientOptions extends CommonOptions {
  /** The relay's http(s) origin, e.g. `http://127.0.0.1:8080`. */
  origin: string;
}

/** Shortest wait before renewing a token, or retrying a failed renewal. */
const MIN_RENEW_DELAY_MS = 1000;
/** Longest wait before retrying a failed renewal. */
const MAX_RENEW_RETRY_MS = 30_000;

/** The JSON POST the relay's session endpoints require (the content type makes a browser preflight it). */
function jsonPost(body: unknown): RequestInit {
  return { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
}

/**
 * Session + subscription to the relay. The session survives reconnects (its token is an
 * HMAC the relay can check without state), so a restarted relay picks up where it left
 * off; only when the relay rejects it is a new one requested. Tokens expire: the client
 * renews its token at half its lifetime (`POST /api/sessions/{id}/renew`), retrying a
 * failed renewal while the token is still valid, and starts over with a new session
 * once it is not.
 */
export class RelayClient {
  readonly events = new Emitter<RelayEvents>();
  private readonly connection: ReconnectingConnection;
  private readonly fetch: FetchLike;
  private readonly origin: string;
  private session: Credentials | null = null;
  /** Images still to come from the replay announced by the last `subscribed`. */
  private replayRemaining = 0;
  /** The pending renewal of the token, if one is scheduled. */
  private renewTimer: ReturnType<typeof setTimeout> | null = null;
  /** When the current token expires, in `Date.now()` milliseconds (page clock). */
  private expiresAtMs: number | null = null;

  constructor(options: RelayClientOptions) {
    this.origin = options.origin;
    this.fetch = options.fetch ?? defaultFetch();
    this.connection = new ReconnectingConnection({
      name: "relay",
      url: () => toWebSocketUrl(this.origin, "/ws/subscribe"),
      prepare: () => this.ensureSession(),
      ...(options.socketFactory ? { socketFactory: options.socketFactory } : {}),
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(options.connectTimeoutMs ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
    });
    this.connection.events.on("status", (s) => this.events.emit("status", s));
    this.connection.events.on("open", () => {
      this.replayRemaining = 0;
      if (this.session !== null) this.connection.send(encode(subscribe(this.session)));
    });
    this.connection.events.on("message", (text) => this.onMessage(text));
  }

  get credentials(): Credentials | null {
    return this.session;
  }

  get status(): ConnectionStatus {
    return this.connection.status;
  }

  start(): void {
    this.connection.start();
  }

  stop(): void {
    this.cancelRenewal();
    this.connection.stop();
  }

  reconnectNow(): void {
    this.connection.reconnectNow();
  }

  private async ensureSession(): Promise<void> {
    if (this.session !== null) return;
    const url = new URL("/api/sessions", this.origin).toString();
    let response: Response;
    try {
      response = await this.fetch(url, jsonPost({}));
    } catch (err) {
      throw new Error(`POST ${url} failed: ${networkMessage(err)}`, { cause: err });
    }
    if (!response.ok) {
      throw new Error(`POST ${url} answered ${response.status} ${response.statusText}`.trim());
    }
    let body: unknown;
    try {
      body = await response.json();
    } catch (err) {
      throw new Error(`POST ${url} did not answer JSON: ${networkMessage(err)}`, { cause: err });
    }
    const grant = parseSessionGrant(body);
    if (!grant.ok) throw new Error(`POST ${url}: ${grant.error.message}`);
    this.session = { sessionId: grant.value.session_id, token: grant.value.token };
    this.scheduleRenewal(grant.value);
    this.events.emit("session", this.session);
  }

  private cancelRenewal(): void {
    if (this.renewTimer !== null) clearTimeout(this.renewTimer);
    this.renewTimer = null;
  }

  /** Plans the renewal of a token just granted: at half its lifetime. */
  private scheduleRenewal(grant: SessionGrant): void {
    this.cancelRenewal();
    // `expires_in` does not depend on the page's clock agreeing with the relay's.
    const lifetimeS = grant.expires_in ?? (grant.expires_at !== undefined ? grant.expires_at - Date.now() / 1000 : undefined);
    if (lifetimeS === undefined) {
      // A relay whose tokens do not expire.
      this.expiresAtMs = null;
      return;
    }
    this.expiresAtMs = Date.now() + lifetimeS * 1000;
    this.renewIn(Math.max(MIN_RENEW_DELAY_MS, (lifetimeS * 1000) / 2));
  }

  private renewIn(delayMs: number): void {
    this.cancelRenewal();
    this.renewTimer = setTimeout(() => void this.renew(), delayMs);
  }

  /** Exchanges the current (still valid) token for a fresh one. */
  private async renew(): Promise<void> {
    this.renewTimer = null;
    const cred = this.session;
    if (cred === null) return;
    const url = new URL(`/api/sessions/${encodeURIComponent(cred.sessionId)}/renew`, this.origin).toString();
    let problem: string;
    try {
      const response = await this.fetch(url, jsonPost({ token: cred.token }));
      if (this.session !== cred) return; // the session changed meanwhile
      if (response.status === 401) {
        // Expired or no longer accepted (e.g. the relay's secret changed): start over.
        this.dropSession({ service: "relay", code: "unauthorized", message: `the relay refused to renew the session's token (POST ${url} answered 401); getting a new session` });
        return;
      }
      if (!response.ok) {
        problem = `POST ${url} answered ${response.status} ${response.statusText}`.trim();
      } else {
        const grant = parseSessionGrant(await response.json());
        if (grant.ok && grant.value.session_id === cred.sessionId) {
          this.session = { sessionId: cred.sessionId, token: grant.value.token };
          this.scheduleRenewal(grant.value);
          this.events.emit("renewed", this.session);
          return;
        }
        problem = grant.ok ? `POST ${url} renewed another session (${grant.value.session_id})` : `POST ${url}: ${grant.error.message}`;
      }
    } catch (err) {
      if (this.session !== cred) return;
      problem = `POST ${url} failed: ${networkMessage(err)}`;
    }
    // Try again while the token still works; once it has expired, start over.
    const leftMs = this.expiresAtMs === null ? 0 : this.expiresAtMs - Date.now();
    if (leftMs > MIN_RENEW_DELAY_MS) {
      this.events.emit("error", { service: "relay", code: "renewal", message: `could not renew the session's token (${problem}); trying again` });
      this.renewIn(Math.max(MIN_RENEW_DELAY_MS, Math.min(MAX_RENEW_RETRY_MS, leftMs / 2)));
    } else {
      this.dropSession({ service: "relay", code: "renewal", message: `the session's token expired before it could be renewed (${problem}); getting a new session` });
    }
  }

  /** Forgets the session (reporting why) and reconnects, which asks for a new one. */
  private dropSession(error: ClientError): void {
    this.cancelRenewal();
    this.events.emit("error", error);
    this.session = null;
    this.expiresAtMs = null;
    this.events.emit("session", null);
    this.connection.reconnectNow();
  }

  private onMessage(text: string): void {
    const parsed = parseRelayMessage(text);
    if (!parsed.ok) {
      this.events.emit("error", { service: "relay", code: "protocol", message: parsed.error.message });
      return;
    }
    const msg = parsed.value;
    switch (msg.type) {
      case "subscribed":
        this.replayRemaining = msg.buffered;
        this.events.emit("subscribed", msg);
        break;
      case "reconstructed_image": {
        const replay = this.replayRemaining > 0;
        if (replay) this.replayRemaining -= 1;
        // A relay only pushes the subscribed session; anything else is stale.
        if (this.session !== null && msg.session_id === this.session.sessionId) this.events.emit("image", { image: msg, replay });
        break;
      }
      case "error": {
        const error: ClientError = { service: "relay", code: msg.code, message: msg.message };
        if (msg.frame_id !== undefined) error.frameId = msg.frame_id;
        this.events.emit("error", error);
        if (msg.code === "unauthorized" || msg.code === "bad_session") {
          // The relay no longer accepts this session (e.g. its secret changed): start over.
          this.cancelRenewal();
          this.session = null;
          this.expiresAtMs = null;
          this.events.emit("session", null);
          this.connection.reconnectNow();
        }
        break;
      }
    }
  }
}

export interface SimulationEvents extends Record<string, unknown> {
  status: ConnectionStatus;
  info: SimulationInfo;
  response: ResponseMessage;
  error: ClientError;
}

export interface SimulationClientOptions extends CommonOptions {
  /** The WebSocket URL of `/ws`, e.g. `ws://127.0.0.1:8081/ws`. */
  wsUrl: string;
}

/** The http(s) origin that serves `/api/info` next to a simulation-service WebSocket URL. */
export function simulationHttpOrigin(wsUrl: string): string {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  return url.origin;
}

/** How often `/api/info` is read again while the service prepares Recorded mode's dataset. */
export const PREPARING_POLL_MS = 2000;

/**
 * Socket to the simulation-service. `/api/info` is read before every (re)connect so that a
 * service restarted with another model (other channels, other lags) is picked up, and
 * every few seconds while the service says Recorded mode is being prepared, so that the
 * page shows how far and turns the mode on when it is ready.
 */
export class SimulationClient {
  readonly events = new Emitter<SimulationEvents>();
  private readonly connection: ReconnectingConnection;
  private readonly fetch: FetchLike;
  private readonly wsUrl: string;
  private currentInfo: SimulationInfo | null = null;
  private infoTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(options: SimulationClientOptions) {
    this.wsUrl = options.wsUrl;
    this.fetch = options.fetch ?? defaultFetch();
    this.connection = new ReconnectingConnection({
      name: "simulation service",
      url: () => this.wsUrl,
      ...(options.socketFactory ? { socketFactory: options.socketFactory } : {}),
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(options.connectTimeoutMs ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
    });
    this.connection.events.on("status", (s) => this.events.emit("status", s));
    this.connection.events.on("open", () => void this.loadInfo());
    this.connection.events.on("message", (text) => this.onMessage(text));
  }

  get info(): SimulationInfo | null {
    return this.currentInfo;
  }

  get status(): ConnectionStatus {
    return this.connection.status;
  }

  get isOpen(): boolean {
    return this.connection.isOpen;
  }

  start(): void {
    this.connection.start();
  }

  stop(): void {
    this.clearInfoTimer();
    this.connection.stop();
  }

  reconnectNow(): void {
    this.connection.reconnectNow();
  }

  /** Sends a message; false when the socket is down (the message is dropped, not queued). */
  send(message: BrowserOutgoing): boolean {
    return this.connection.send(encode(message));
  }

  private clearInfoTimer(): void {
    if (this.infoTimer !== null) clearTimeout(this.infoTimer);
    this.infoTimer = null;
  }

  /**
   * Reads `/api/info` once the socket is open. Failures are reported but do not close the
   * socket: stimuli and reconstructions work without the channel map, only the activity
   * heatmap needs it. (The page is served by the relay, so this is a cross-origin request
   * that the simulation-service must allow; the WebSocket itself is not subject to CORS.)
   */
  private async loadInfo(): Promise<void> {
    this.clearInfoTimer();
    const info = await this.getJson("/api/info", parseSimulationInfo, "the activity map needs the channel list");
    if (info === null) return;
    this.currentInfo = info;
    this.events.emit("info", info);
    if (info.recorded?.state === "preparing" && this.connection.isOpen) {
      this.infoTimer = setTimeout(() => void this.loadInfo(), PREPARING_POLL_MS);
    }
  }

  /**
   * Every channel's projective field of `population` (`GET /api/projective-fields`, with
   * `?population=wide` for the wide field); null after reporting a failure.
   */
  projectiveFields(population: Population = "pvc1"): Promise<ProjectiveFields | null> {
    const path = population === "pvc1" ? "/api/projective-fields" : `/api/projective-fields?population=${population}`;
    return this.getJson(path, parseProjectiveFields, "Imagine mode shows them on hover");
  }

  /** GETs a JSON document of the service and parses it; failures are reported as errors, saying what needs it. */
  private async getJson<T>(path: string, parse: (body: unknown) => ParseResult<T>, needs: string): Promise<T | null> {
    const url = `${simulationHttpOrigin(this.wsUrl)}${path}`;
    const fail = (message: string): null => {
      this.events.emit("error", { service: "simulation", code: "protocol", message });
      return null;
    };
    let response: Response;
    try {
      response = await this.fetch(url);
    } catch (err) {
      return fail(`GET ${url} failed (${networkMessage(err)}); ${needs}. If the service is up, it may not allow cross-origin requests from this page.`);
    }
    if (!response.ok) return fail(`GET ${url} answered ${response.status}; ${needs}`);
    let body: unknown;
    try {
      body = await response.json();
    } catch (err) {
      return fail(`GET ${url} is not JSON: ${networkMessage(err)}`);
    }
    const parsed = parse(body);
    return parsed.ok ? parsed.value : fail(`GET ${url}: ${parsed.error.message}`);
  }

  private onMessage(text: string): void {
    const parsed = parseSimulationMessage(text);
    if (!parsed.ok) {
      this.events.emit("error", { service: "simulation", code: "protocol", message: parsed.error.message });
      return;
    }
    const msg = parsed.value;
    if (msg.type === "response") {
      this.events.emit("response", msg);
    } else {
      const error: ClientError = { service: "simulation", code: msg.code, message: msg.message };
      if (msg.frame_id !== undefined) error.frameId = msg.frame_id;
      this.events.emit("error", error);
    }
  }
}
