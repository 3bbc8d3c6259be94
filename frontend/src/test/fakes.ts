/** Test doubles for the network: a scriptable WebSocket and a scriptable fetch. */
import type { SocketFactory, SocketLike } from "../lib/connection";

export class FakeSocket implements SocketLike {
  readyState = 0;
  readonly sent: string[] = [];
  closed = false;
  onopen: ((ev: unknown) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;

  constructor(readonly url: string) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.sent.push(data);
  }

  close(): void {
    this.closed = true;
    this.readyState = 3;
  }

  /** The server accepted the connection. */
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** The server sent a message (an object is sent as its JSON). */
  receive(message: unknown): void {
    this.onmessage?.({ data: typeof message === "string" ? message : JSON.stringify(message) });
  }

  /** The connection dropped. */
  drop(code = 1006, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  /** Sent messages, parsed. */
  messages(): Record<string, unknown>[] {
    return this.sent.map((s) => JSON.parse(s) as Record<string, unknown>);
  }
}

/** Records every socket it opens, newest last. */
export function socketRecorder(): { factory: SocketFactory; sockets: FakeSocket[]; last: () => FakeSocket } {
  const sockets: FakeSocket[] = [];
  return {
    sockets,
    factory: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    last: () => {
      const s = sockets[sockets.length - 1];
      if (s === undefined) throw new Error("no socket was opened");
      return s;
    },
  };
}

export interface FetchCall {
  url: string;
  method: string;
  /** The Content-Type header, when the request set one. */
  contentType?: string;
  /** The body, when the request had one. */
  body?: string;
}

export type FetchRoute = (call: FetchCall) => Response | Promise<Response> | Error;

/** A fetch that answers from `route` and records the calls. */
export function fakeFetch(route: FetchRoute): { fetch: (input: string, init?: RequestInit) => Promise<Response>; calls: FetchCall[] } {
  const calls: FetchCall[] = [];
  return {
    calls,
    fetch: async (input, init) => {
      const call: FetchCall = { url: input, method: init?.method ?? "GET" };
      const contentType = new Headers(init?.headers).get("content-type");
      if (contentType !== null) call.contentType = contentType;
      if (typeof init?.body === "string") call.body = init.body;
      calls.push(call);
      const answer = await route(call);
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
}

/** A minimal Response whose body resolves at once (a real one reads a stream). */
export function json(body: unknown, status = 200): Response {
  return {
    ok: status >= 200 && status < 300,
    status,
    statusText: status === 201 ? "Created" : status === 200 ? "OK" : "Error",
    json: async () => body,
  } as unknown as Response;
}

/** A Response whose body is not JSON. */
export function notJson(status = 200): Response {
  return {
    ok: status >= 200 && status < 300,
    status,
    statusText: "OK",
    json: async () => {
      throw new SyntaxError("Unexpected token < in JSON");
    },
  } as unknown as Response;
}

/** A relay grant: the token is `<expiry>.<64 hex digits>`, renewed at half of `expires_in`. */
export const SESSION = {
  session_id: "3f9c2a7be0d14c55a1e2f0b9c8d7e6a5",
  token: `1800000000.${"9b1e".repeat(16)}`,
  expires_at: 1_800_000_000,
  expires_in: 3600,
};

export const INFO = {
  lags: 2,
  channels: [
    { file: "a.mat", electrode: 1, row: 0, col: 0 },
    { file: "a.mat", electrode: 12, row: 1, col: 1 },
    { file: "b.mat", electrode: 12, row: 1, col: 1 },
  ],
  crop_size: 64,
  sources: ["random", "recorded"],
  recorded_segments: 3,
};

/**
 * `wide` of `/api/info` for a wide-field population of two arrays over the 320x240 frame:
 * array f1 with two placed channels and one without a centre, array f2 with one channel
 * and no centre at all. Two lags, image side 64.
 */
export const WIDE = {
  available: true,
  lags: 2,
  image_size: 64,
  crop_window: { x: 0, y: 0, width: 320, height: 240 },
  channels: [
    { file: "f1", electrode: 1, row: 0, col: 0, rf_centre: [16, 16] },
    { file: "f1", electrode: 2, row: 0, col: 1, rf_centre: [48, 32] },
    { file: "f1", electrode: 3, row: 0, col: 2 },
    { file: "f2", electrode: 1, row: 0, col: 0 },
  ],
  response_mean: [1, 1, 1, 1, 1, 1, 1, 1],
};

/** A 1x1 PNG, the smallest valid image data URL. */
export const PNG =
  "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

/** Lets pending promise callbacks (fetch, json) run. */
export async function flush(times = 5): Promise<void> {
  for (let i = 0; i < times; i++) await Promise.resolve();
}
