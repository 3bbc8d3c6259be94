import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type ClientError, PREPARING_POLL_MS, RelayClient, SimulationClient, simulationHttpOrigin, toWebSocketUrl } from "./clients";
import { Backoff } from "./lib/backoff";
import { type ConnectionStatus, ReconnectingConnection } from "./lib/connection";
import { INFO, PNG, SESSION, fakeFetch, json, notJson, socketRecorder } from "./test/fakes";

const noJitter = { jitter: 0, initialMs: 100, maxMs: 800 };

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("Backoff", () => {
  it("doubles up to the cap and starts over after a success", () => {
    const b = new Backoff({ initialMs: 100, maxMs: 500, factor: 2, jitter: 0 });
    expect([b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 500]);
    expect(b.attempts).toBe(4);
    b.reset();
    expect(b.next()).toBe(100);
  });

  it("spreads delays by the jitter fraction", () => {
    expect(new Backoff({ initialMs: 1000, jitter: 0.2, random: () => 0 }).next()).toBe(800);
    expect(new Backoff({ initialMs: 1000, jitter: 0.2, random: () => 0.999999 }).next()).toBe(1200);
  });
});

describe("ReconnectingConnection", () => {
  function setup(prepare?: () => Promise<void>) {
    const sockets = socketRecorder();
    const statuses: ConnectionStatus[] = [];
    const conn = new ReconnectingConnection({
      name: "relay",
      url: () => "ws://relay.test/ws/subscribe",
      socketFactory: sockets.factory,
      backoff: noJitter,
      connectTimeoutMs: 1000,
      ...(prepare ? { prepare } : {}),
    });
    conn.events.on("status", (s) => statuses.push(s));
    return { conn, sockets, statuses };
  }

  it("reports connecting, then open, and passes text frames on", async () => {
    const { conn, sockets, statuses } = setup();
    const received: string[] = [];
    conn.events.on("message", (m) => received.push(m));
    conn.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(statuses.map((s) => s.state)).toEqual(["connecting"]);
    sockets.last().open();
    expect(conn.status.state).toBe("open");
    expect(conn.isOpen).toBe(true);
    sockets.last().receive("hello");
    sockets.last().onmessage?.({ data: new ArrayBuffer(2) });
    expect(received).toEqual(["hello"]);
  });

  it("retries with backoff after a drop and says why", async () => {
    const { conn, sockets } = setup();
    conn.start();
    await vi.advanceTimersByTimeAsync(0);
    sockets.last().open();
    sockets.last().drop(1006);
    expect(conn.status.state).toBe("retrying");
    expect(conn.status.detail).toBe("cannot reach the relay (ws://relay.test/ws/subscribe: connection lost or refused)");
    expect(sockets.sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(99);
    expect(sockets.sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sockets.sockets).toHaveLength(2);
    // Refused again: the wait doubles.
    sockets.last().drop(1006);
    await vi.advanceTimersByTimeAsync(199);
    expect(sockets.sockets).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(sockets.sockets).toHaveLength(3);
    sockets.last().open();
    expect(conn.status).toEqual({ state: "open", detail: "connected to ws://relay.test/ws/subscribe", attempts: 0 });
    // A success resets the backoff: the next outage starts with the short delay again.
    sockets.last().drop(1001, "restart");
    expect(conn.status.detail).toContain("the service is going away: restart");
    await vi.advanceTimersByTimeAsync(100);
    expect(sockets.sockets).toHaveLength(4);
  });

  it("gives up on an attempt that hangs in CONNECTING", async () => {
    const { conn, sockets } = setup();
    conn.start();
    await vi.advanceTimersByTimeAsync(1000);
    expect(conn.status.state).toBe("retrying");
    expect(conn.status.detail).toContain("no answer from ws://relay.test/ws/subscribe within 1 s");
    expect(sockets.sockets[0]?.closed).toBe(true);
  });

  it("counts a failed preparation as a failed attempt", async () => {
    let fail = true;
    const { conn, sockets } = setup(async () => {
      if (fail) throw new Error("POST http://relay.test/api/sessions failed: connection refused");
    });
    conn.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(conn.status.state).toBe("retrying");
    expect(conn.status.detail).toContain("POST http://relay.test/api/sessions failed");
    expect(sockets.sockets).toHaveLength(0);
    fail = false;
    await vi.advanceTimersByTimeAsync(100);
    expect(sockets.sockets).toHaveLength(1);
  });

  it("reconnects at once on request and stays down after stop", async () => {
    const { conn, sockets } = setup();
    conn.start();
    await vi.advanceTimersByTimeAsync(0);
    sockets.last().drop();
    conn.reconnectNow();
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets.sockets).toHaveLength(2);
    conn.stop();
    expect(conn.status.state).toBe("stopped");
    expect(sockets.sockets[1]?.closed).toBe(true);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sockets.sockets).toHaveLength(2);
  });

  it("refuses to send while not open instead of queueing", async () => {
    const { conn, sockets } = setup();
    expect(conn.send("x")).toBe(false);
    conn.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(conn.send("x")).toBe(false);
    sockets.last().open();
    expect(conn.send("x")).toBe(true);
    expect(sockets.last().sent).toEqual(["x"]);
  });
});

describe("URL helpers", () => {
  it("map http(s) origins to ws(s) endpoints and back", () => {
    expect(toWebSocketUrl("http://127.0.0.1:8080", "/ws/subscribe")).toBe("ws://127.0.0.1:8080/ws/subscribe");
    expect(toWebSocketUrl("https://v1.example.org", "/ws/subscribe")).toBe("wss://v1.example.org/ws/subscribe");
    expect(simulationHttpOrigin("ws://127.0.0.1:8081/ws")).toBe("http://127.0.0.1:8081");
    expect(simulationHttpOrigin("wss://sim.example.org/ws")).toBe("https://sim.example.org");
  });
});

describe("RelayClient", () => {
  function setup(route = (url: string) => (url.endsWith("/api/sessions") ? json(SESSION, 201) : json({}, 404))) {
    const sockets = socketRecorder();
    const net = fakeFetch(({ url }) => route(url));
    const relay = new RelayClient({ origin: "http://relay.test:8080", fetch: net.fetch, socketFactory: sockets.factory, backoff: noJitter });
    const errors: ClientError[] = [];
    relay.events.on("error", (e) => errors.push(e));
    return { relay, sockets, net, errors };
  }

  it("gets a session, then subscribes to it", async () => {
    const { relay, sockets, net } = setup();
    const sessions: unknown[] = [];
    relay.events.on("session", (s) => sessions.push(s));
    relay.start();
    await vi.advanceTimersByTimeAsync(0);
    // A JSON POST, which a browser preflights: a foreign page cannot send it.
    expect(net.calls).toEqual([{ url: "http://relay.test:8080/api/sessions", method: "POST", contentType: "application/json", body: "{}" }]);
    expect(sessions).toEqual([{ sessionId: SESSION.session_id, token: SESSION.token }]);
    expect(sockets.last().url).toBe("ws://relay.test:8080/ws/subscribe");
    sockets.last().open();
    expect(sockets.last().messages()).toEqual([{ type: "subscribe", session_id: SESSION.session_id, token: SESSION.token }]);
  });

  it("passes on images of its session only", async () => {
    const { relay, sockets } = setup();
    const images: unknown[] = [];
    relay.events.on("image", (i) => images.push(i));
    relay.start();
    await vi.advanceTimersByTimeAsync(0);
    sockets.last().open();
    sockets.last().receive({ type: "subscribed", session_id: SESSION.session_id, buffered: 0 });
    sockets.last().receive({ type: "reconstructed_image", session_id: SESSION.session_id, image_base64: PNG, frame_id: 3 });
    sockets.last().receive({ type: "reconstructed_image", session_id: "someone_else", image_base64: PNG, frame_id: 4 });
    expect(images).toEqual([{ image: { type: "reconstructed_image", session_id: SESSION.session_id, image_base64: PNG, frame_id: 3 }, replay: false }]);
  });

  it("marks the buffered images after subscribed as replays", async () => {
    const { relay, sockets } = setup();
    const replays: boolean[] = [];
    relay.events.on("image", (i) => replays.push(i.replay));
    relay.start();
    await vi.advanceTimersByTimeAsync(0);
    sockets.last().open();
    sockets.last().receive({ type: "subscribed", session_id: SESSION.session_id, buffered: 2 });
    for (let id = 1; id <= 3; id++) {
      sockets.last().receive({ type: "reconstructed_image", session_id: SESSION.session_id, image_base64: PNG, frame_id: id });
    }
    expect(replays).toEqual([true, true, false]);
  });

  it("keeps its session across a relay restart", async () => {
    const { relay, sockets, net } = setup();
    relay.start();
    await vi.advanceTimersByTimeAsync(0);
    sockets.last().open();
    sockets.last().drop();
    await vi.advanceTimersByTimeAsync(100);
    sockets.last().open();
    expect(net.calls).toHaveLength(1);
    expect(sockets.last().messages()[0]).toMatchObject({ type: "subscribe", session_id: SESSION.session_id });
  });

  it("asks for a new session when the relay rejects the old one", async () => {
    const { relay, sockets, net, errors } = setup();
    relay.start();
    await vi.advanceTimersByTimeAsync(0);
    sockets.last().open();
    sockets.last().receive({ type: "error", code: "unauthorized", message: "token does not match" });
    expect(errors).toEqual([{ service: "relay", code: "unauthorized", message: "token does not match" }]);
    expect(relay.credentials).toBeNull();
    await vi.advanceTimersByTimeAsync(0);
    expect(net.calls).toHaveLength(2);
  });

  const RENEW_URL = `http://relay.test:8080/api/sessions/${SESSION.session_id}/renew`;
  const RENEWED = { ...SESSION, token: `1800001800.${"c0de".repeat(16)}`, expires_at: 1_800_001_800 };

  it("renews its token at half the lifetime, keeps the session and resubscribes with the new token", async () => {
    const { relay, sockets, net } = setup((url) => (url === RENEW_URL ? json(RENEWED, 200) : json(SESSION, 201)));
    const sessions: unknown[] = [];
    const renewed: unknown[] = [];
    relay.events.on("session", (s) => sessions.push(s));
    relay.events.on("renewed", (c) => renewed.push(c));
    relay.start();
    await vi.advanceTimersByTimeAsync(0);
    sockets.last().open();
    // expires_in is 3600 s: nothing before 1800 s ...
    await vi.advanceTimersByTimeAsync(1_799_999);
    expect(net.calls).toHaveLength(1);
    // ... then one renewal, carrying the current token.
    await vi.advanceTimersByTimeAsync(1);
    expect(net.calls[1]).toEqual({ url: RENEW_URL, method: "POST", contentType: "application/json", body: JSON.stringify({ token: SESSION.token }) });
    expect(relay.credentials).toEqual({ sessionId: SESSION.session_id, token: RENEWED.token });
    expect(renewed).toEqual([{ sessionId: SESSION.session_id, token: RENEWED.token }]);
    expect(sessions).toHaveLength(1); // the same session, not a new one
    // A reconnect subscribes with the renewed token.
    sockets.last().drop();
    await vi.advanceTimersByTimeAsync(100);
    sockets.last().open();
    expect(sockets.last().messages()).toEqual([{ type: "subscribe", session_id: SESSION.session_id, token: RENEWED.token }]);
    // And the next renewal comes another half lifetime later.
    await vi.advanceTimersByTimeAsync(1_800_000);
    expect(net.calls.filter((c) => c.url === RENEW_URL)).toHaveLength(2);
    relay.stop();
  });

  it("retries a failed renewal while the token is valid, then starts over with a new session", async () => {
    let renewAnswer: Response | Error = new TypeError("Failed to fetch");
    const { relay, net, errors } = setup((url) => {
      if (url !== RENEW_URL) return json(SESSION, 201);
      if (renewAnswer instanceof Error) throw renewAnswer;
      return renewAnswer;
    });
    relay.start();
    await vi.advanceTimersByTimeAsync(1_800_000);
    expect(net.calls).toHaveLength(2);
    expect(relay.credentials?.token).toBe(SESSION.token);
    expect(errors.at(-1)).toMatchObject({ service: "relay", code: "renewal" });
    expect(errors.at(-1)?.message).toContain("Failed to fetch");
    // Retried after at most 30 s while it still has half an hour.
    await vi.advanceTimersByTimeAsync(30_000);
    expect(net.calls).toHaveLength(3);
    // The relay refuses: the token is no longer accepted, so a new session is requested.
    renewAnswer = json({ type: "error", code: "unauthorized", message: "expired" }, 401);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(errors.at(-1)).toMatchObject({ service: "relay", code: "unauthorized" });
    await vi.advanceTimersByTimeAsync(0);
    expect(net.calls.at(-1)?.url).toBe("http://relay.test:8080/api/sessions");
    expect(relay.credentials).toEqual({ sessionId: SESSION.session_id, token: SESSION.token });
    relay.stop();
  });

  it("does not renew tokens of a relay that gives no expiry, nor after stop", async () => {
    const { relay, net } = setup((url) => (url.endsWith("/api/sessions") ? json({ session_id: SESSION.session_id, token: "9b1e".repeat(16) }, 201) : json({}, 404)));
    relay.start();
    await vi.advanceTimersByTimeAsync(10 * 3600 * 1000);
    expect(net.calls).toHaveLength(1);
    const second = setup();
    second.relay.start();
    await vi.advanceTimersByTimeAsync(0);
    second.relay.stop();
    await vi.advanceTimersByTimeAsync(3600 * 1000);
    expect(second.net.calls).toHaveLength(1);
  });

  it("reports an unreachable relay and an unexpected answer by URL", async () => {
    let answer: Response | Error = new TypeError("Failed to fetch");
    const { relay } = setup(() => {
      if (answer instanceof Error) throw answer;
      return answer;
    });
    relay.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(relay.status.state).toBe("retrying");
    expect(relay.status.detail).toBe("cannot reach the relay (POST http://relay.test:8080/api/sessions failed: Failed to fetch)");
    answer = json({ error: "nope" }, 503);
    await vi.advanceTimersByTimeAsync(100);
    expect(relay.status.detail).toContain("answered 503");
    answer = json({ session_id: "ok", token: 5 }, 201);
    await vi.advanceTimersByTimeAsync(200);
    expect(relay.status.detail).toContain('field "token" should be a string');
  });

  it("turns unreadable messages into protocol errors", async () => {
    const { relay, sockets, errors } = setup();
    relay.start();
    await vi.advanceTimersByTimeAsync(0);
    sockets.last().open();
    sockets.last().receive("{oops");
    expect(errors[0]).toMatchObject({ service: "relay", code: "protocol" });
    expect(errors[0]?.message).toContain("valid JSON");
  });
});

describe("SimulationClient", () => {
  function setup(route: (url: string) => Response | Error = () => json(INFO)) {
    const sockets = socketRecorder();
    const net = fakeFetch(({ url }) => route(url));
    const sim = new SimulationClient({ wsUrl: "ws://sim.test:8081/ws", fetch: net.fetch, socketFactory: sockets.factory, backoff: noJitter });
    const errors: ClientError[] = [];
    sim.events.on("error", (e) => errors.push(e));
    return { sim, sockets, net, errors };
  }

  it("connects and reads the channel map from /api/info", async () => {
    const { sim, sockets, net } = setup();
    const infos: unknown[] = [];
    sim.events.on("info", (i) => infos.push(i));
    sim.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(sockets.last().url).toBe("ws://sim.test:8081/ws");
    sockets.last().open();
    await vi.advanceTimersByTimeAsync(0);
    expect(net.calls).toEqual([{ url: "http://sim.test:8081/api/info", method: "GET" }]);
    expect(infos).toHaveLength(1);
    expect(sim.info?.lags).toBe(2);
    expect(sim.info?.channels).toHaveLength(3);
  });

  it("reads /api/info again while Recorded mode is being prepared, and stops once it is ready", async () => {
    let percent = 10;
    const { sim, sockets, net } = setup(() =>
      json({ ...INFO, recorded: percent < 100 ? { state: "preparing", percent } : { state: "ready", segments: 3 } }),
    );
    const seen: unknown[] = [];
    sim.events.on("info", (i) => seen.push(i.recorded));
    sim.start();
    await vi.advanceTimersByTimeAsync(0);
    sockets.last().open();
    await vi.advanceTimersByTimeAsync(0);
    percent = 55;
    await vi.advanceTimersByTimeAsync(PREPARING_POLL_MS);
    percent = 100;
    await vi.advanceTimersByTimeAsync(PREPARING_POLL_MS);
    await vi.advanceTimersByTimeAsync(PREPARING_POLL_MS * 5);
    expect(seen).toEqual([
      { state: "preparing", percent: 10 },
      { state: "preparing", percent: 55 },
      { state: "ready", segments: 3 },
    ]);
    expect(net.calls).toHaveLength(3);
    sim.stop();
  });

  it("stays connected but says so when /api/info cannot be read", async () => {
    const cases: [Response | Error, string][] = [
      [new TypeError("Failed to fetch"), "cross-origin"],
      [json({}, 500), "answered 500"],
      [notJson(), "is not JSON"],
      [json({ lags: 2 }), 'field "channels" should be a non-empty array'],
    ];
    for (const [answer, expected] of cases) {
      const { sim, sockets, errors } = setup(() => answer);
      sim.start();
      await vi.advanceTimersByTimeAsync(0);
      sockets.last().open();
      await vi.advanceTimersByTimeAsync(0);
      expect(sim.isOpen).toBe(true);
      expect(errors).toHaveLength(1);
      expect(errors[0]?.message).toContain(expected);
      sim.stop();
    }
  });

  it("asks for each population's projective fields at its own URL", async () => {
    const field = { index: 0, electrode: 3, image: PNG, pf_center: [1, 2], rf_center: null };
    const { sim, net } = setup((url) => json({ image_size: url.endsWith("?population=wide") ? 64 : 4, channels: [field] }));
    expect((await sim.projectiveFields())?.imageSize).toBe(4);
    expect((await sim.projectiveFields("wide"))?.imageSize).toBe(64);
    expect(net.calls.map((c) => c.url)).toEqual(["http://sim.test:8081/api/projective-fields", "http://sim.test:8081/api/projective-fields?population=wide"]);
  });

  it("sends messages and passes on responses and errors", async () => {
    const { sim, sockets, errors } = setup();
    const responses: unknown[] = [];
    sim.events.on("response", (r) => responses.push(r));
    expect(sim.send({ type: "stop_stream", session_id: "s" })).toBe(false);
    sim.start();
    await vi.advanceTimersByTimeAsync(0);
    sockets.last().open();
    expect(sim.send({ type: "stop_stream", session_id: "s" })).toBe(true);
    expect(sockets.last().sent).toEqual(['{"type":"stop_stream","session_id":"s"}']);
    sockets.last().receive({ type: "response", session_id: "s", frame_id: 1, payload: [1, 2] });
    sockets.last().receive({ type: "error", code: "bad_image", message: "not a JPEG or PNG", frame_id: 2 });
    sockets.last().receive({ type: "response", session_id: "s", payload: "nope" });
    expect(responses).toEqual([{ type: "response", session_id: "s", frame_id: 1, payload: [1, 2] }]);
    expect(errors[0]).toEqual({ service: "simulation", code: "bad_image", message: "not a JPEG or PNG", frameId: 2 });
    expect(errors[1]).toMatchObject({ service: "simulation", code: "protocol" });
  });
});
