import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RelayClient, SimulationClient } from "./clients";
import { SessionController } from "./session";
import { INFO, PNG, SESSION, WIDE, fakeFetch, json, socketRecorder } from "./test/fakes";

const noJitter = { jitter: 0, initialMs: 100, maxMs: 800 };
const PNG2 = PNG.replace("AAAAA", "AAAAB");

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

/** `GET /api/projective-fields` for INFO's three channels. */
const FIELDS = {
  image_size: 4,
  channels: [0, 1, 2].map((c) => ({ index: c, electrode: INFO.channels[c]?.electrode, image: PNG, pf_center: [1, 2], rf_center: [1.5, 2.5] })),
};
const INFO_WITH_MEAN = { ...INFO, response_mean: [1, 1, 1, 2, 2, 2] };
/** `GET /api/projective-fields?population=wide` for WIDE's four channels. */
const WIDE_FIELDS = {
  image_size: 64,
  channels: [0, 1, 2, 3].map((c) => ({ index: c, electrode: WIDE.channels[c]?.electrode, image: PNG, pf_center: [20, 20], rf_center: WIDE.channels[c]?.rf_centre ?? null })),
};

async function setup({
  connect = true,
  similarity = async () => 0.5,
  sessionAnswer = (): Response | Error => json(SESSION, 201),
  info = INFO as Record<string, unknown>,
} = {}) {
  const relaySockets = socketRecorder();
  const simSockets = socketRecorder();
  const fetched: string[] = [];
  const relay = new RelayClient({
    origin: "http://relay.test",
    fetch: fakeFetch(() => sessionAnswer()).fetch,
    socketFactory: relaySockets.factory,
    backoff: noJitter,
  });
  const simulation = new SimulationClient({
    wsUrl: "ws://sim.test/ws",
    fetch: fakeFetch((call) => {
      fetched.push(call.url);
      return json(call.url.endsWith("/api/projective-fields") ? FIELDS : call.url.endsWith("/api/projective-fields?population=wide") ? WIDE_FIELDS : info);
    }).fetch,
    socketFactory: simSockets.factory,
    backoff: noJitter,
  });
  const score = vi.fn(similarity);
  const controller = new SessionController({
    relay,
    simulation,
    similarity: score,
    snapshotTimeoutMs: 2000,
    now: () => Date.now(),
    wallClock: () => Date.now(),
  });
  controller.start();
  await vi.advanceTimersByTimeAsync(0);
  if (connect) {
    relaySockets.last().open();
    simSockets.last().open();
    await vi.advanceTimersByTimeAsync(0);
  }
  const sim = () => simSockets.last();
  const relayWs = () => relaySockets.last();
  /** What the simulation-service answers for a frame. */
  const respond = (frameId: number, extra: Record<string, unknown> = {}) =>
    sim().receive({ type: "response", session_id: SESSION.session_id, frame_id: frameId, payload: [1, 2, 3, 3, 2, 1], shape: [2, 3], input_image: PNG, latency_ms: 3, ...extra });
  /** What the relay pushes for a frame. */
  const reconstruct = (frameId: number, image = PNG2, extra: Record<string, unknown> = {}) =>
    relayWs().receive({ type: "reconstructed_image", session_id: SESSION.session_id, frame_id: frameId, image_base64: image, latency_ms: 1.5, ...extra });
  return { controller, relaySockets, simSockets, sim, relayWs, respond, reconstruct, score, fetched };
}

describe("SessionController", () => {
  it("tracks both connections and the session", async () => {
    const { controller } = await setup();
    const s = controller.getState();
    expect(s.relay.state).toBe("open");
    expect(s.simulation.state).toBe("open");
    expect(s.sessionId).toBe(SESSION.session_id);
    expect(s.info?.channels).toHaveLength(3);
    expect(controller.readiness()).toEqual({ ready: true });
  });

  it("runs a Thought-to-Image snapshot from stimulus to reconstruction", async () => {
    const { controller, sim, respond, reconstruct } = await setup();
    const seen: boolean[] = [];
    controller.subscribe(() => seen.push(controller.getState().pending));
    expect(controller.sendSnapshot(PNG)).toBe(true);
    expect(sim().messages().at(-1)).toEqual({
      type: "stimulus",
      session_id: SESSION.session_id,
      token: SESSION.token,
      frame_id: 1,
      image: PNG,
      source: "client",
    });
    expect(controller.getState().pending).toBe(true);

    respond(1);
    let s = controller.getState();
    expect(s.inputImage).toBe(PNG);
    expect(s.activity?.grid?.[0]).toBe(4); // channel 0: 1 + 3 over the two lags
    expect(s.activity?.grid?.[11]).toBe(4); // channels 1 and 2 share electrode 12: (4 + 4) / 2
    expect(s.serviceLatency.simulation).toBe(3);
    expect(controller.history.length).toBe(1);

    await vi.advanceTimersByTimeAsync(120);
    reconstruct(1);
    s = controller.getState();
    expect(s.pending).toBe(false);
    expect(s.reconstruction).toEqual({ image: PNG2, frameId: 1 });
    expect(s.stats.latencyP50).toBe(120);
    expect(s.serviceLatency.relay).toBe(1.5);
    expect(seen).toContain(true);

    // No late timeout error for a frame that arrived.
    await vi.advanceTimersByTimeAsync(5000);
    expect(controller.getState().errors).toEqual([]);
  });

  it("asks for a random stimulus without an image", async () => {
    const { controller, sim } = await setup();
    controller.sendSnapshot(null);
    expect(sim().messages().at(-1)).toEqual({ type: "stimulus", session_id: SESSION.session_id, token: SESSION.token, frame_id: 1, source: "random" });
  });

  it("says so when no reconstruction arrives in time", async () => {
    const { controller } = await setup();
    controller.sendSnapshot(PNG);
    await vi.advanceTimersByTimeAsync(2000);
    const s = controller.getState();
    expect(s.pending).toBe(false);
    expect(s.errors).toHaveLength(1);
    expect(s.errors[0]).toMatchObject({ service: "relay", title: "No reconstruction" });
    expect(s.errors[0]?.message).toContain("Frame 1 got no reconstruction within 2 s");
  });

  it("shows a service's error about the frame and stops waiting for it", async () => {
    const { controller, sim } = await setup();
    controller.sendSnapshot(PNG);
    sim().receive({ type: "error", code: "bad_image", message: "image is 5000x5000; the limit is 4096x4096", frame_id: 1 });
    const s = controller.getState();
    expect(s.pending).toBe(false);
    expect(s.errors[0]).toMatchObject({ service: "simulation", title: "The image could not be used", message: "image is 5000x5000; the limit is 4096x4096" });
    // Repeats are counted, not stacked.
    sim().receive({ type: "error", code: "bad_image", message: "image is 5000x5000; the limit is 4096x4096", frame_id: 2 });
    expect(controller.getState().errors).toHaveLength(1);
    expect(controller.getState().errors[0]?.count).toBe(2);
    const id = controller.getState().errors[0]?.id ?? -1;
    controller.dismissError(id);
    expect(controller.getState().errors).toEqual([]);
    controller.addError("input", "Bad image", "a.txt is text/plain");
    controller.addError("camera", "No camera frame", "not yet");
    controller.clearErrors("input");
    expect(controller.getState().errors.map((e) => e.service)).toEqual(["camera"]);
  });

  it("refuses to send without a session, and says why", async () => {
    const { controller, sim } = await setup({ connect: false, sessionAnswer: () => new TypeError("Failed to fetch") });
    sim().open();
    expect(controller.getState().relay.state).toBe("retrying");
    expect(controller.readiness()).toEqual({ ready: false, reason: expect.stringContaining("Waiting for a session") as unknown as string });
    expect(controller.sendSnapshot(PNG)).toBe(false);
    expect(controller.getState().errors[0]).toMatchObject({ service: "relay", title: "Not ready" });
    expect(sim().sent).toEqual([]);
  });

  it("refuses to send without a simulation socket, and says why", async () => {
    const { controller } = await setup({ connect: false });
    expect(controller.readiness()).toEqual({ ready: false, reason: "The simulation service is not connected." });
    expect(controller.sendSnapshot(PNG)).toBe(false);
    expect(controller.startRecorded(30)).toBe(false);
    expect(controller.getState().errors[0]).toMatchObject({ service: "simulation", message: "The simulation service is not connected.", count: 2 });
  });

  it("warns but still sends while the relay is down", async () => {
    const { controller, relayWs, sim } = await setup();
    relayWs().drop();
    const r = controller.readiness();
    expect(r.ready).toBe(true);
    expect(r.ready && r.warning).toContain("no reconstruction");
    expect(controller.getState().relay.state).toBe("retrying");
    expect(controller.sendSnapshot(PNG)).toBe(true);
    expect(sim().messages().at(-1)?.type).toBe("stimulus");
  });

  it("streams live frames at the chosen rate with at most two in flight", async () => {
    const { controller, sim, respond, reconstruct } = await setup();
    let captured = 0;
    controller.startLive(() => {
      captured += 1;
      return PNG;
    }, 10);
    expect(controller.getState()).toMatchObject({ streaming: true, liveFps: 10 });
    await vi.advanceTimersByTimeAsync(100);
    await vi.advanceTimersByTimeAsync(100);
    await vi.advanceTimersByTimeAsync(100); // third tick: two in flight, dropped
    const stimuli = sim().messages().filter((m) => m.type === "stimulus");
    expect(stimuli.map((m) => [m.frame_id, m.source])).toEqual([
      [1, "webcam"],
      [2, "webcam"],
    ]);
    expect(captured).toBe(2); // a dropped frame is not even captured
    respond(1);
    reconstruct(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(sim().messages().filter((m) => m.type === "stimulus")).toHaveLength(3);
    expect(controller.getState().stats.dropped).toBe(1);
    controller.stopStreaming();
    await vi.advanceTimersByTimeAsync(1000);
    expect(sim().messages().filter((m) => m.type === "stimulus")).toHaveLength(3);
    expect(controller.getState().streaming).toBe(false);
  });

  it("plays a recording, pairs each reconstruction with its true frame and scores it", async () => {
    const { controller, sim, respond, reconstruct, score } = await setup({ similarity: async () => 0.25 });
    controller.setMode("recorded");
    controller.startRecorded(30);
    expect(sim().messages().at(-1)).toEqual({ type: "start_stream", session_id: SESSION.session_id, token: SESSION.token, source: "recorded", fps: 30 });
    respond(1, { input_image: PNG, source: "recorded", recorded: { movie: 1, segment: 4, frame: 30 } });
    expect(controller.getState().recordedPosition).toEqual({ movie: 1, segment: 4, frame: 30 });
    respond(2, { input_image: PNG2, source: "recorded" });
    reconstruct(1, PNG2);
    await vi.advanceTimersByTimeAsync(0);
    expect(score).toHaveBeenCalledWith(PNG, PNG2);
    let s = controller.getState();
    expect(s.reconstruction).toMatchObject({ frameId: 1, truth: PNG, similarity: 0.25 });
    expect(s.similarity).toEqual({ mean: 0.25, count: 1 });
    reconstruct(2, PNG);
    await vi.advanceTimersByTimeAsync(0);
    s = controller.getState();
    expect(s.reconstruction?.truth).toBe(PNG2);
    expect(s.similarity.count).toBe(2);

    controller.stopStreaming();
    expect(sim().messages().at(-1)).toEqual({ type: "stop_stream", session_id: SESSION.session_id });
  });

  it("asks for the recording again after the simulation reconnects", async () => {
    const { controller, sim, simSockets } = await setup();
    controller.setMode("recorded");
    controller.startRecorded(15);
    sim().drop();
    await vi.advanceTimersByTimeAsync(100);
    expect(simSockets.sockets).toHaveLength(2);
    sim().open();
    expect(sim().messages()).toEqual([{ type: "start_stream", session_id: SESSION.session_id, token: SESSION.token, source: "recorded", fps: 15 }]);
  });

  it("times replayed frames from the simulation's send time", async () => {
    const { controller, reconstruct } = await setup();
    controller.setMode("recorded");
    controller.startRecorded(30);
    reconstruct(5, PNG2, { sent_at_ms: Date.now() - 80 });
    expect(controller.getState().stats.latencyP50).toBe(80);
  });

  it("ignores the relay's replay of frames it is not waiting for, but takes an awaited one", async () => {
    const { controller, relayWs, relaySockets, reconstruct } = await setup();
    controller.sendSnapshot(PNG); // frame 1, awaited
    relayWs().drop();
    await vi.advanceTimersByTimeAsync(100);
    expect(relaySockets.sockets).toHaveLength(2);
    relayWs().open();
    relayWs().receive({ type: "subscribed", session_id: SESSION.session_id, buffered: 2 });
    reconstruct(70); // from an earlier stream: not shown, not counted
    expect(controller.getState().reconstruction).toBeNull();
    expect(controller.getState().stats.received).toBe(0);
    reconstruct(1); // the awaited snapshot, delivered by the replay
    expect(controller.getState().reconstruction?.frameId).toBe(1);
    expect(controller.getState().pending).toBe(false);
  });

  it("does not show stragglers of an earlier mode", async () => {
    const { controller, reconstruct } = await setup();
    controller.setMode("recorded");
    controller.startRecorded(30);
    controller.setMode("snapshot");
    reconstruct(40);
    expect(controller.getState().reconstruction).toBeNull();
  });

  it("reports a payload that does not fit the channel map, and recovers", async () => {
    const { controller, respond } = await setup();
    respond(1, { payload: [1, 2, 3], shape: [1, 3] });
    expect(controller.getState().activityProblem).toContain("expects 6 (2 lags x 3 channels)");
    respond(2);
    expect(controller.getState().activityProblem).toBeNull();
  });

  it("ignores responses of other sessions", async () => {
    const { controller, respond } = await setup();
    respond(1, { session_id: "other" });
    expect(controller.getState().activity).toBeNull();
  });

  it("clears the view when the mode changes", async () => {
    const { controller, respond, reconstruct } = await setup();
    controller.sendSnapshot(PNG);
    respond(1);
    reconstruct(1);
    controller.setMode("live");
    const s = controller.getState();
    expect(s.mode).toBe("live");
    expect(s.reconstruction).toBeNull();
    expect(s.activity).toBeNull();
    expect(controller.history.length).toBe(0);
  });

  it("in Imagine mode paints from the mean, sends the newest edit once the previous one is back, undoes and resets", async () => {
    const { controller, sim, reconstruct, respond } = await setup({ info: INFO_WITH_MEAN });
    controller.setMode("imagine");
    await vi.advanceTimersByTimeAsync(0);
    const imagined = () => sim().messages().filter((m) => m.type === "imagined");
    expect(imagined()).toEqual([{ type: "imagined", session_id: SESSION.session_id, token: SESSION.token, frame_id: 1, payload: [1, 1, 1, 2, 2, 2] }]);
    expect(controller.getState().imagine).toMatchObject({ start: "mean", edited: false, canUndo: false });
    // Two edits while frame 1 is on its way: only the newest goes, after frame 1 is back.
    expect(controller.editCell(11, 4)).toBe(true);
    expect(controller.editCell(0, -2)).toBe(true);
    expect(imagined()).toHaveLength(1);
    expect(controller.getState().activity?.grid?.[11]).toBe(7); // (1 + 2) + 4 spikes over 2 lags
    reconstruct(1);
    expect(imagined()).toHaveLength(2);
    expect(imagined()[1]?.payload).toEqual([0, 3, 3, 1, 4, 4]);
    // The echo of an imagined response does not move the view back.
    respond(2, { source: "imagined", payload: [1, 1, 1, 2, 2, 2] });
    expect(controller.getState().activity?.grid?.[0]).toBe(1);
    reconstruct(2);
    expect(controller.getState().reconstruction?.frameId).toBe(2);
    expect(controller.undoEdit()).toBe(true);
    expect(imagined().at(-1)?.payload).toEqual([1, 3, 3, 2, 4, 4]);
    reconstruct(3);
    expect(controller.resetEdits()).toBe(true);
    expect(imagined().at(-1)?.payload).toEqual([1, 1, 1, 2, 2, 2]);
    expect(controller.getState().imagine).toMatchObject({ edited: false, canUndo: true });
    // Hovering an electrode shows its projective field.
    controller.hoverCell(11);
    expect(controller.getState().hoveredField).toMatchObject({ electrode: 12, rfCenter: [1.5, 2.5] });
    expect(controller.getState().fieldSize).toBe(4);
    controller.hoverCell(null);
    expect(controller.getState().hoveredField).toBeNull();
  });

  it("starts Imagine mode from the last response, and says why it cannot without one", async () => {
    const { controller, sim, respond } = await setup();
    controller.setMode("imagine");
    await vi.advanceTimersByTimeAsync(0);
    expect(controller.getState().errors.at(-1)?.message).toContain("mean response");
    controller.setMode("snapshot");
    controller.sendSnapshot(null);
    respond(1, { payload: [0, 5, 0, 1, 1, 1] });
    controller.setMode("imagine");
    expect(controller.getState().imagine?.start).toBe("last");
    expect(sim().messages().at(-1)).toMatchObject({ type: "imagined", payload: [0, 5, 0, 1, 1, 1] });
  });

  it("an imagined frame the service refuses lets the next edit go", async () => {
    const { controller, sim } = await setup({ info: INFO_WITH_MEAN });
    controller.setMode("imagine");
    controller.editCell(0, 2);
    sim().receive({ type: "error", code: "non_finite", message: "imagined: payload[0] is -1", session_id: SESSION.session_id, frame_id: 1 });
    expect(sim().messages().filter((m) => m.type === "imagined")).toHaveLength(2);
  });

  it("dreams: asks for the dream stream and shows every frame of it", async () => {
    const { controller, sim, respond, reconstruct } = await setup();
    controller.setMode("dream");
    controller.startDream(20);
    expect(sim().messages().at(-1)).toEqual({ type: "start_stream", session_id: SESSION.session_id, token: SESSION.token, source: "dream", fps: 20 });
    respond(1_700_000_000_000_000, { source: "dream", input_image: undefined });
    reconstruct(1_700_000_000_000_000);
    expect(controller.getState().reconstruction?.frameId).toBe(1_700_000_000_000_000);
    expect(controller.getState().activity).not.toBeNull();
    controller.stopStreaming();
    expect(sim().messages().at(-1)).toEqual({ type: "stop_stream", session_id: SESSION.session_id });
  });

  it("stops everything on dispose", async () => {
    const { controller, relayWs, sim } = await setup();
    controller.dispose();
    expect(relayWs().closed).toBe(true);
    expect(sim().closed).toBe(true);
  });
});

describe("SessionController with two populations", () => {
  it("sends the chosen population and trial with frames and streams, and nothing extra by default", async () => {
    const { controller, sim } = await setup({ info: { ...INFO, wide: WIDE } });
    controller.sendSnapshot(PNG);
    expect(sim().messages().at(-1)).not.toHaveProperty("population");
    expect(sim().messages().at(-1)).not.toHaveProperty("trial");
    expect(controller.setPopulation("wide")).toBe(true);
    controller.setTrial("single");
    controller.sendSnapshot(PNG);
    expect(sim().messages().at(-1)).toMatchObject({ type: "stimulus", image: PNG, population: "wide", trial: "single" });
    controller.startDream(20);
    expect(sim().messages().at(-1)).toMatchObject({ type: "start_stream", source: "dream", fps: 20, population: "wide", trial: "single" });
    // Recorded responses are single trials already: the replay goes without `trial`.
    controller.setPopulation("pvc1");
    controller.startRecorded(30);
    expect(sim().messages().at(-1)).toEqual({ type: "start_stream", session_id: SESSION.session_id, token: SESSION.token, source: "recorded", fps: 30 });
  });

  it("draws a wide response on the wide map and ignores stragglers of the other population", async () => {
    const { controller, sim, reconstruct } = await setup({ info: { ...INFO, wide: WIDE } });
    controller.setPopulation("wide");
    controller.sendSnapshot(PNG);
    sim().receive({ type: "response", session_id: SESSION.session_id, frame_id: 1, payload: [1, 2, 3, 4, 1, 0, 1, 0], shape: [2, 4], population: "wide" });
    expect(Array.from(controller.getState().activity?.markers ?? [])).toEqual([2, 2, 4, 4]);
    expect(controller.getState().activity?.grid).toBeNull();
    // A pvc-1 response (no population) would not fit the wide map: it is not drawn.
    sim().receive({ type: "response", session_id: SESSION.session_id, frame_id: 2, payload: [9, 9, 9, 9, 9, 9], shape: [2, 3] });
    expect(controller.getState().activityProblem).toBeNull();
    expect(controller.history.length).toBe(1);
    reconstruct(1, PNG2, { population: "wide" });
    expect(controller.getState().reconstruction).toEqual({ image: PNG2, frameId: 1, population: "wide" });
  });

  it("in Imagine mode paints the wide field: from its mean, marker by marker, sent under \"wide\", with each channel's projective field on hover", async () => {
    const { controller, sim, reconstruct, fetched } = await setup({ info: { ...INFO_WITH_MEAN, wide: WIDE } });
    controller.setPopulation("wide");
    controller.setMode("imagine");
    // The pointer rests on channel 0's dot before the fields arrived: its field shows once they do.
    controller.hoverMarker(0);
    expect(controller.getState().hoveredField).toBeNull();
    await vi.advanceTimersByTimeAsync(0);
    expect(controller.getState().hoveredField).toMatchObject({ index: 0, rfCenter: [16, 16] });
    const imagined = () => sim().messages().filter((m) => m.type === "imagined");
    expect(imagined()).toEqual([
      { type: "imagined", session_id: SESSION.session_id, token: SESSION.token, frame_id: 1, payload: [1, 1, 1, 1, 1, 1, 1, 1], population: "wide" },
    ]);
    expect(fetched).toContain("http://sim.test/api/projective-fields?population=wide");
    expect(controller.getState().fieldSize).toBe(64);
    // Markers: channels 0 and 1 at their centres, then array f1's channel 2 and array f2's channel 3 as rings.
    expect(controller.editMarker(0, 4)).toBe(true);
    expect(controller.editMarker(2, 2)).toBe(true);
    expect(Array.from(controller.getState().activity?.markers ?? [])).toEqual([6, 2, 4, 2]);
    // The array's editor has nothing to paint on the wide field.
    expect(controller.editCell(0, 2)).toBe(false);
    expect(imagined()).toHaveLength(1);
    reconstruct(1, PNG2, { population: "wide" });
    expect(controller.getState().reconstruction).toMatchObject({ frameId: 1, population: "wide" });
    expect(imagined().at(-1)).toMatchObject({ frame_id: 2, payload: [3, 1, 2, 1, 3, 1, 2, 1], population: "wide" });
    reconstruct(2, PNG, { population: "wide" });
    expect(controller.undoEdit()).toBe(true);
    expect(imagined().at(-1)).toMatchObject({ payload: [3, 1, 1, 1, 3, 1, 1, 1], population: "wide" });
    reconstruct(3, PNG2, { population: "wide" });
    expect(controller.resetEdits()).toBe(true);
    expect(imagined().at(-1)).toMatchObject({ payload: [1, 1, 1, 1, 1, 1, 1, 1], population: "wide" });
    // Hovering a dot shows its channel's field; a ring shows its first channel's.
    controller.hoverMarker(1);
    expect(controller.getState().hoveredField).toMatchObject({ index: 1, rfCenter: [48, 32] });
    controller.hoverMarker(3);
    expect(controller.getState().hoveredField).toMatchObject({ index: 3, rfCenter: null });
    controller.hoverCell(11);
    expect(controller.getState().hoveredField).toBeNull();
    controller.hoverMarker(1);
    controller.hoverMarker(null);
    expect(controller.getState().hoveredField).toBeNull();
  });

  it("starts the wide field's Imagine mode from its own last response, never the array's", async () => {
    const { controller, sim, respond } = await setup({ info: { ...INFO_WITH_MEAN, wide: WIDE } });
    controller.sendSnapshot(PNG);
    respond(1, { payload: [0, 5, 0, 1, 1, 1] });
    controller.setPopulation("wide");
    controller.sendSnapshot(PNG);
    sim().receive({ type: "response", session_id: SESSION.session_id, frame_id: 2, payload: [1, 2, 3, 4, 1, 0, 1, 0], shape: [2, 4], population: "wide" });
    controller.setMode("imagine");
    expect(controller.getState().imagine?.start).toBe("last");
    expect(sim().messages().at(-1)).toMatchObject({ type: "imagined", payload: [1, 2, 3, 4, 1, 0, 1, 0], population: "wide" });
    // Back on the array, Imagine mode starts from the array's last response, sent without `population`.
    controller.setPopulation("pvc1");
    expect(controller.getState().imagine?.start).toBe("last");
    const last = sim().messages().at(-1);
    expect(last).toMatchObject({ type: "imagined", payload: [0, 5, 0, 1, 1, 1] });
    expect(last).not.toHaveProperty("population");
  });

  it("says why the wide field's Imagine mode cannot start without its mean response", async () => {
    const { controller } = await setup({ info: { ...INFO_WITH_MEAN, wide: { ...WIDE, response_mean: undefined } } });
    controller.setPopulation("wide");
    expect(controller.startImagine("mean")).toBe(false);
    expect(controller.getState().errors.at(-1)).toMatchObject({ title: "Cannot start imagining" });
    expect(controller.getState().errors.at(-1)?.message).toContain('under "wide"');
  });

  it("refuses the wide field without a wide-field model, and Recorded mode on it", async () => {
    const { controller } = await setup({ info: { ...INFO, wide: { available: false, reason: "no wide model here" } } });
    expect(controller.setPopulation("wide")).toBe(false);
    expect(controller.getState().population).toBe("pvc1");
    expect(controller.getState().errors.at(-1)).toMatchObject({ title: "No wide-field model", message: "no wide model here" });
    const wide = await setup({ info: { ...INFO, wide: WIDE } });
    wide.controller.setPopulation("wide");
    // The recorded replay is the pvc-1 array's too: nothing is asked of the service.
    const before = wide.sim().messages().length;
    expect(wide.controller.startRecorded(30)).toBe(false);
    expect(wide.sim().messages()).toHaveLength(before);
    expect(wide.controller.getState().errors.at(-1)?.title).toBe("Recorded mode replays the pvc-1 array");
  });
});
