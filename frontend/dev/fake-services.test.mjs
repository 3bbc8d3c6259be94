// The fake services against the wire format's examples: everything they send while a
// page-like client drives every kind of message through them has the shape of a valid
// example of its type, so the page's tests and the e2e test's fake mode exercise the
// protocol the real services speak.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { startFakeServices } from "./fake-services.mjs";
import { shapeProblem, wireFormat } from "./wire-format.mjs";

const PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==";

function connect(url, received) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on("message", (data) => received.push(JSON.parse(String(data))));
    ws.on("open", () => resolve(ws));
    ws.on("error", reject);
  });
}

async function until(what, done) {
  const give_up = Date.now() + 10_000;
  while (!done()) {
    if (Date.now() > give_up) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("shapeProblem", () => {
  it("accepts every valid example of the fixture", () => {
    for (const m of wireFormat.messages) for (const example of m.valid) expect(shapeProblem(example), JSON.stringify(example)).toBeNull();
  });

  it("names a field no example has, a missing field, a field of the wrong kind and an unknown type", () => {
    expect(shapeProblem({ type: "subscribed", session_id: "s1", buffered: 0, extra: 1 })).toMatch(/field extra/);
    expect(shapeProblem({ type: "subscribed", session_id: "s1" })).toMatch(/without buffered/);
    expect(shapeProblem({ type: "subscribed", session_id: "s1", buffered: "0" })).toMatch(/buffered a string/);
    expect(shapeProblem({ type: "teleport" })).toMatch(/no examples/);
  });
});

describe("the fake services", () => {
  let services;
  beforeAll(async () => {
    services = await startFakeServices();
  });
  afterAll(async () => {
    await services?.close();
  });

  it("send only messages shaped like the fixture's valid examples", async () => {
    const answer = await fetch(`${services.relayUrl}/api/sessions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    expect(answer.status).toBe(201);
    const { session_id, token } = await answer.json();
    const fromRelay = [];
    const fromSim = [];
    const relay = await connect(`${services.relayUrl.replace(/^http/, "ws")}/ws/subscribe`, fromRelay);
    const sim = await connect(services.simUrl, fromSim);
    relay.send(JSON.stringify({ type: "subscribe", session_id, token }));
    await until("subscribed", () => fromRelay.some((m) => m.type === "subscribed"));
    relay.send(JSON.stringify({ type: "stimulus", session_id, token }));
    sim.send(JSON.stringify({ type: "stimulus", session_id, token, frame_id: 1, image: PNG, source: "client" }));
    sim.send(JSON.stringify({ type: "stimulus", session_id, token, frame_id: 2, source: "random" }));
    sim.send(JSON.stringify({ type: "stimulus", session_id, token, frame_id: 3, image: "file:///x" }));
    sim.send(JSON.stringify({ type: "imagined", session_id, token, frame_id: 4, payload: [1, 2] }));
    sim.send(JSON.stringify({ type: "stimulus", session_id, token: "wrong", frame_id: 5, source: "random" }));
    sim.send("not json");
    sim.send(JSON.stringify({ type: "stimulus", session_id, token, frame_id: 6, image: PNG, source: "client", population: "wide", trial: "single" }));
    sim.send(JSON.stringify({ type: "stimulus", session_id, token, frame_id: 7, source: "random", population: "wide" }));
    sim.send(JSON.stringify({ type: "start_stream", session_id, token, source: "dream", fps: 30 }));
    await until("a streamed response", () => fromSim.some((m) => m.source === "dream"));
    sim.send(JSON.stringify({ type: "stop_stream", session_id }));
    await until("images of the sent frames", () => fromRelay.filter((m) => m.type === "reconstructed_image").length >= 4);
    const wide = fromSim.find((m) => m.type === "response" && m.frame_id === 6);
    expect([wide?.population, wide?.trial, wide?.shape]).toEqual(["wide", "single", [3, 100]]);
    expect(wide?.payload.every((v) => Number.isInteger(v))).toBe(true);
    expect(fromRelay.find((m) => m.type === "reconstructed_image" && m.frame_id === 6)?.population).toBe("wide");
    expect(fromSim.find((m) => m.type === "error" && m.frame_id === 7)?.code).toBe("unavailable");
    relay.close();
    sim.close();

    const types = new Set([...fromRelay, ...fromSim].map((m) => m.type));
    expect([...types].sort()).toEqual(["error", "reconstructed_image", "response", "subscribed"]);
    for (const message of [...fromRelay, ...fromSim]) expect(shapeProblem(message), JSON.stringify(message).slice(0, 300)).toBeNull();
  }, 30_000);
});
