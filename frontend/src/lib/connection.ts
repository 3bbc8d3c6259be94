/**
 * A WebSocket that comes back by itself.
 *
 * Responsibility: open a socket (after an optional asynchronous preparation step, such as
 * asking the relay for a session), report every change of state as a `ConnectionStatus`
 * a person can read, and on any failure wait with backoff and try again, until `stop()`.
 * Both service clients are built on it, so "relay down" and "simulation down" look and
 * behave the same in the page, and neither needs a reload to recover.
 */
import { Backoff, type BackoffOptions } from "./backoff";
import { Emitter } from "./emitter";

/** The subset of the browser's WebSocket the clients use; tests pass a fake. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}

export type SocketFactory = (url: string) => SocketLike;

/** WebSocket.OPEN, spelled out so fakes need not define the constants. */
export const SOCKET_OPEN = 1;

export const browserSocketFactory: SocketFactory = (url) => new WebSocket(url) as unknown as SocketLike;

export type ConnectionState = "connecting" | "open" | "retrying" | "stopped";

export interface ConnectionStatus {
  state: ConnectionState;
  /** A sentence for the page: what is happening or what failed, and where. */
  detail: string;
  /** Failed attempts since the last successful connection. */
  attempts: number;
  /** When the next attempt starts (ms since the epoch), while retrying. */
  retryAt?: number;
}

export interface ConnectionEvents extends Record<string, unknown> {
  status: ConnectionStatus;
  /** The socket is open; the owner sends its greeting (e.g. `subscribe`). */
  open: undefined;
  /** One text frame. */
  message: string;
}

export interface ConnectionOptions {
  /** What the page calls this service ("relay", "simulation service"). */
  name: string;
  /** The WebSocket URL; a function so it can change between attempts. */
  url: () => string;
  socketFactory?: SocketFactory;
  /** Runs before each attempt; a rejection counts as a failed attempt, its message shown. */
  prepare?: () => Promise<void>;
  backoff?: Partial<BackoffOptions>;
  /** How long an attempt may stay in CONNECTING before it is abandoned. */
  connectTimeoutMs?: number;
  now?: () => number;
}

/** Close codes a person may want to see explained. */
function describeClose(code: number, reason: string): string {
  const why = reason ? `: ${reason}` : "";
  switch (code) {
    case 1000:
      return `closed normally${why}`;
    case 1001:
      return `the service is going away${why}`;
    case 1006:
      return "connection lost or refused";
    case 1009:
      return `a message was too large${why}`;
    case 1011:
      return `the service hit an internal error${why}`;
    case 1013:
      return `the service is overloaded${why}`;
    default:
      return `closed with code ${code}${why}`;
  }
}

export class ReconnectingConnection {
  readonly events = new Emitter<ConnectionEvents>();
  private readonly options: Required<Omit<ConnectionOptions, "prepare" | "backoff">> & Pick<ConnectionOptions, "prepare">;
  private readonly backoff: Backoff;
  private socket: SocketLike | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  private running = false;
  /** Increments per attempt so callbacks of an abandoned attempt are ignored. */
  private generation = 0;
  private current: ConnectionStatus = { state: "stopped", detail: "not started", attempts: 0 };

  constructor(options: ConnectionOptions) {
    this.options = {
      socketFactory: browserSocketFactory,
      connectTimeoutMs: 5000,
      now: Date.now,
      ...options,
    };
    this.backoff = new Backoff(options.backoff);
  }

  get status(): ConnectionStatus {
    return this.current;
  }

  get isOpen(): boolean {
    return this.socket !== null && this.socket.readyState === SOCKET_OPEN && this.current.state === "open";
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.attempt();
  }

  stop(): void {
    this.running = false;
    this.generation += 1;
    this.clearTimers();
    this.dropSocket();
    this.setStatus({ state: "stopped", detail: "disconnected", attempts: 0 });
  }

  /** Skips the remaining wait (a "Reconnect now" button), or forces a fresh socket. */
  reconnectNow(): void {
    if (!this.running) {
      this.start();
      return;
    }
    this.generation += 1;
    this.clearTimers();
    this.dropSocket();
    void this.attempt();
  }

  /** Sends one text frame; false when the socket is not open (the caller decides what to drop). */
  send(text: string): boolean {
    if (!this.isOpen || this.socket === null) return false;
    try {
      this.socket.send(text);
      return true;
    } catch {
      return false;
    }
  }

  private setStatus(status: ConnectionStatus): void {
    this.current = status;
    this.events.emit("status", status);
  }

  private clearTimers(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.retryTimer = null;
    this.connectTimer = null;
  }

  private dropSocket(): void {
    const socket = this.socket;
    this.socket = null;
    if (socket === null) return;
    socket.onopen = null;
    socket.onclose = null;
    socket.onerror = null;
    socket.onmessage = null;
    try {
      socket.close();
    } catch {
      // Closing a socket that never opened can throw in some browsers; it is gone either way.
    }
  }

  private async attempt(): Promise<void> {
    const generation = ++this.generation;
    const url = this.options.url();
    this.setStatus({ state: "connecting", detail: `connecting to ${url}`, attempts: this.backoff.attempts });
    if (this.options.prepare !== undefined) {
      try {
        await this.options.prepare();
      } catch (err) {
        if (generation !== this.generation) return;
        this.fail(err instanceof Error ? err.message : String(err));
        return;
      }
      if (generation !== this.generation) return;
    }
    let socket: SocketLike;
    try {
      socket = this.options.socketFactory(url);
    } catch (err) {
      this.fail(`cannot open ${url}: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    this.socket = socket;
    this.connectTimer = setTimeout(() => {
      if (generation !== this.generation) return;
      this.dropSocket();
      this.fail(`no answer from ${url} within ${this.options.connectTimeoutMs / 1000} s`);
    }, this.options.connectTimeoutMs);
    socket.onopen = () => {
      if (generation !== this.generation) return;
      if (this.connectTimer !== null) clearTimeout(this.connectTimer);
      this.connectTimer = null;
      this.backoff.reset();
      this.setStatus({ state: "open", detail: `connected to ${url}`, attempts: 0 });
      this.events.emit("open", undefined);
    };
    socket.onmessage = (ev) => {
      if (generation !== this.generation) return;
      if (typeof ev.data === "string") this.events.emit("message", ev.data);
    };
    // Browsers report errors without detail and always follow with `close`, which carries
    // the code; so the failure is handled once, on close.
    socket.onerror = () => {};
    socket.onclose = (ev) => {
      if (generation !== this.generation) return;
      this.socket = null;
      this.fail(`${url}: ${describeClose(ev.code, ev.reason)}`);
    };
  }

  private fail(reason: string): void {
    this.clearTimers();
    if (!this.running) return;
    const delay = this.backoff.next();
    const retryAt = this.options.now() + delay;
    this.setStatus({
      state: "retrying",
      detail: `cannot reach the ${this.options.name} (${reason})`,
      attempts: this.backoff.attempts,
      retryAt,
    });
    const generation = this.generation;
    this.retryTimer = setTimeout(() => {
      if (generation !== this.generation || !this.running) return;
      this.retryTimer = null;
      void this.attempt();
    }, delay);
  }
}
