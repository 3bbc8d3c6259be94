import { describe, expect, it } from "vitest";
import { wireFormat } from "../dev/wire-format.mjs";
import {
  type BrowserOutgoing,
  type FrameOptions,
  type ParseResult,
  type Population,
  ProtocolError,
  type Source,
  type Trial,
  type StreamSource,
  clampFps,
  encode,
  imagined,
  parseProjectiveFields,
  parseRelayMessage,
  parseSessionGrant,
  parseSimulationInfo,
  parseSimulationMessage,
  randomStimulus,
  startStream,
  stimulusWithImage,
  stopStream,
  subscribe,
} from "./protocol";
import { PNG } from "./test/fakes";

const cred = { sessionId: "xyz123", token: "ab".repeat(32) };

function expectError<T>(result: { ok: true; value: T } | { ok: false; error: ProtocolError }): ProtocolError {
  if (result.ok) throw new Error(`expected a parse error, got ${JSON.stringify(result.value)}`);
  return result.error;
}

describe("parseRelayMessage", () => {
  it("reads the protocol's reconstructed_image example", () => {
    const result = parseRelayMessage(
      '{"type":"reconstructed_image","session_id":"xyz123","image_base64":"data:image/jpeg;base64,/9j/4AAQ"}',
    );
    expect(result).toEqual({
      ok: true,
      value: { type: "reconstructed_image", session_id: "xyz123", image_base64: "data:image/jpeg;base64,/9j/4AAQ" },
    });
  });

  it("keeps the optional frame_id, sent_at_ms and latency_ms", () => {
    const result = parseRelayMessage(
      JSON.stringify({ type: "reconstructed_image", session_id: "s", image_base64: PNG, frame_id: 7, sent_at_ms: 1.7e12, latency_ms: 2.5 }),
    );
    expect(result.ok && result.value).toMatchObject({ frame_id: 7, sent_at_ms: 1.7e12, latency_ms: 2.5 });
  });

  it("reads subscribed and error", () => {
    expect(parseRelayMessage('{"type":"subscribed","session_id":"3f9c","buffered":12}')).toEqual({
      ok: true,
      value: { type: "subscribed", session_id: "3f9c", buffered: 12 },
    });
    const err = parseRelayMessage(
      '{"type":"error","code":"payload_length","message":"payload has 3 values","session_id":"xyz123","frame_id":7}',
    );
    expect(err).toEqual({
      ok: true,
      value: { type: "error", code: "payload_length", message: "payload has 3 values", session_id: "xyz123", frame_id: 7 },
    });
  });

  it("names the field, the expectation and what came", () => {
    const error = expectError(parseRelayMessage('{"type":"reconstructed_image","session_id":"s"}'));
    expect(error.messageType).toBe("reconstructed_image");
    expect(error.field).toBe("image_base64");
    expect(error.got).toBe("nothing (field missing)");
    expect(error.message).toContain('field "image_base64" should be a string');
  });

  it("rejects an image that is not a data URL", () => {
    const error = expectError(parseRelayMessage('{"type":"reconstructed_image","session_id":"s","image_base64":"http://x/y.png"}'));
    expect(error.field).toBe("image_base64");
    expect(error.expected).toContain("data URL");
  });

  it("rejects session ids outside [A-Za-z0-9_-]{1,64}", () => {
    expect(expectError(parseRelayMessage(`{"type":"subscribed","session_id":"a b","buffered":0}`)).field).toBe("session_id");
    expect(expectError(parseRelayMessage(`{"type":"subscribed","session_id":"${"a".repeat(65)}","buffered":0}`)).field).toBe("session_id");
    expect(expectError(parseRelayMessage(`{"type":"subscribed","session_id":"","buffered":0}`)).field).toBe("session_id");
  });

  it("rejects a negative or fractional frame_id and buffered count", () => {
    expect(expectError(parseRelayMessage(`{"type":"subscribed","session_id":"s","buffered":-1}`)).field).toBe("buffered");
    const msg = { type: "reconstructed_image", session_id: "s", image_base64: PNG, frame_id: 1.5 };
    expect(expectError(parseRelayMessage(JSON.stringify(msg))).field).toBe("frame_id");
  });

  it("rejects malformed JSON, non-objects and unknown types", () => {
    expect(expectError(parseRelayMessage("{not json")).expected).toBe("valid JSON");
    expect(expectError(parseRelayMessage("[1,2]")).got).toBe("an array of 2");
    const unknown = expectError(parseRelayMessage('{"type":"response","session_id":"s","payload":[1]}'));
    expect(unknown.field).toBe("type");
    expect(unknown.expected).toContain("reconstructed_image");
    expect(expectError(parseRelayMessage('{"session_id":"s"}')).field).toBe("type");
  });
});

describe("parseSimulationMessage", () => {
  const response = {
    type: "response",
    session_id: "3f9c",
    frame_id: 7,
    payload: [0.4, 1.2, 0, 3, 1, 2],
    shape: [3, 2],
    input_image: PNG,
    latency_ms: 2.1,
    source: "recorded",
    recorded: { movie: 2, segment: 5, frame: 120 },
  };

  it("reads a full response", () => {
    const result = parseSimulationMessage(JSON.stringify(response));
    expect(result).toEqual({ ok: true, value: response });
  });

  it("reads a minimal response", () => {
    expect(parseSimulationMessage('{"type":"response","session_id":"s","payload":[1]}')).toEqual({
      ok: true,
      value: { type: "response", session_id: "s", payload: [1] },
    });
  });

  it("rejects a shape that does not match the payload", () => {
    const error = expectError(parseSimulationMessage(JSON.stringify({ ...response, shape: [3, 96] })));
    expect(error.field).toBe("shape");
    expect(error.got).toContain("288");
  });

  it("points at the first bad payload value", () => {
    const error = expectError(parseSimulationMessage(JSON.stringify({ ...response, shape: undefined, payload: [1, "2", 3] })));
    expect(error.field).toBe("payload[1]");
  });

  it("rejects a malformed recorded position", () => {
    expect(expectError(parseSimulationMessage(JSON.stringify({ ...response, recorded: { movie: 1, segment: 2 } }))).field).toBe("frame");
    expect(expectError(parseSimulationMessage(JSON.stringify({ ...response, recorded: 3 }))).field).toBe("recorded");
  });

  it("rejects an empty payload and an unknown source", () => {
    expect(expectError(parseSimulationMessage(JSON.stringify({ ...response, shape: undefined, payload: [] }))).field).toBe("payload");
    expect(expectError(parseSimulationMessage(JSON.stringify({ ...response, source: "tv" }))).field).toBe("source");
  });

  it("ignores fields it does not know, so an older page survives a newer service", () => {
    const result = parseSimulationMessage(JSON.stringify({ ...response, extra: true }));
    expect(result.ok).toBe(true);
  });
});

describe("parseSessionGrant", () => {
  it("reads the relay's answer with the token's expiry", () => {
    const body = { session_id: "3f9c2a7be0d14c55a1e2f0b9c8d7e6a5", token: `1800000000.${"9b1e".repeat(16)}`, expires_at: 1_800_000_000, expires_in: 3600 };
    expect(parseSessionGrant(body)).toEqual({ ok: true, value: body });
    // Without expiry (a relay whose tokens do not expire).
    const bare = { session_id: "3f9c2a7be0d14c55a1e2f0b9c8d7e6a5", token: "9b1e".repeat(16) };
    expect(parseSessionGrant(bare)).toEqual({ ok: true, value: bare });
  });

  it("rejects a missing or malformed token or expiry", () => {
    expect(expectError(parseSessionGrant({ session_id: "abc" })).field).toBe("token");
    expect(expectError(parseSessionGrant({ session_id: "abc", token: "not hex at all!" })).field).toBe("token");
    expect(expectError(parseSessionGrant({ session_id: "abc", token: `x.${"9b1e".repeat(16)}` })).field).toBe("token");
    expect(expectError(parseSessionGrant({ session_id: "abc", token: "9b1e".repeat(16), expires_in: -5 })).field).toBe("expires_in");
    expect(expectError(parseSessionGrant({ session_id: "abc", token: "9b1e".repeat(16), expires_at: "soon" })).field).toBe("expires_at");
    expect(expectError(parseSessionGrant("nope")).field).toBe("(body)");
  });
});

describe("parseSimulationInfo", () => {
  it("reads what the service says about Recorded mode, and leaves out what it cannot read", () => {
    const base = { lags: 1, channels: [{ file: "a.mat", electrode: 1, row: 0, col: 0 }] };
    const recorded = (value: unknown) => {
      const result = parseSimulationInfo({ ...base, recorded: value });
      if (!result.ok) throw result.error;
      return result.value.recorded;
    };
    expect(recorded({ state: "preparing", percent: 41.6, phase: "building the cache" })).toEqual({ state: "preparing", percent: 42, phase: "building the cache" });
    expect(recorded({ state: "preparing", percent: 7 })).toEqual({ state: "preparing", percent: 7 });
    expect(recorded({ state: "ready", segments: 4 })).toEqual({ state: "ready", segments: 4 });
    expect(recorded({ state: "unavailable", reason: "no --data" })).toEqual({ state: "unavailable", reason: "no --data" });
    expect(recorded({ state: "preparing" })).toBeUndefined();
    expect(recorded("ready")).toBeUndefined();
  });

  it("reads channels, lags and the optional extras", () => {
    const result = parseSimulationInfo({
      lags: 3,
      channels: [{ file: "ac1_u004_000.mat", electrode: 5, row: 0, col: 4 }],
      crop_size: [48, 64],
      sources: ["random", "recorded"],
      recorded_segments: [{ movie: 0, segment: 1 }, { movie: 2, segment: 3 }],
    });
    expect(result).toEqual({
      ok: true,
      value: {
        lags: 3,
        channels: [{ file: "ac1_u004_000.mat", electrode: 5, row: 0, col: 4 }],
        crop: { width: 64, height: 48 },
        sources: ["random", "recorded"],
        recordedSegments: 2,
      },
    });
  });

  it("shifts a 1-based array map to 0-based", () => {
    const result = parseSimulationInfo({
      lags: 1,
      channels: [
        { file: "a", electrode: 100, row: 10, col: 10 },
        { file: "a", electrode: 1, row: 1, col: 1 },
      ],
    });
    expect(result.ok && result.value.channels.map((c) => [c.row, c.col])).toEqual([
      [9, 9],
      [0, 0],
    ]);
  });

  it("rejects positions outside the array and missing channel lists", () => {
    const outside = expectError(parseSimulationInfo({ lags: 1, channels: [{ file: "a", electrode: 1, row: 0, col: 12 }] }));
    expect(outside.field).toBe("channels[0]");
    expect(expectError(parseSimulationInfo({ lags: 1, channels: [] })).field).toBe("channels");
    expect(expectError(parseSimulationInfo({ lags: 0, channels: [{ file: "a", electrode: 1, row: 0, col: 0 }] })).field).toBe("lags");
    expect(expectError(parseSimulationInfo({ lags: 1, channels: [{ file: "a", row: 0, col: 0 }] })).field).toBe("electrode");
  });
});

describe("Imagine mode's messages", () => {
  it("build an imagined response with every value a count the service accepts", () => {
    const cred = { sessionId: "s1", token: "t" };
    expect(imagined(cred, 4, [0.5, -1, 250, Number.NaN])).toEqual({ type: "imagined", session_id: "s1", token: "t", frame_id: 4, payload: [0.5, 0, 100, 0] });
  });

  it("read the mean response of /api/info when it fits the channel map", () => {
    const info = { lags: 1, channels: [{ file: "a", electrode: 1, row: 0, col: 0 }] };
    const ok = parseSimulationInfo({ ...info, response_mean: [0.25] });
    expect(ok.ok && ok.value.responseMean).toEqual([0.25]);
    const wrong = parseSimulationInfo({ ...info, response_mean: [0.25, 1] });
    expect(wrong.ok && wrong.value.responseMean).toBeUndefined();
  });

  it("read /api/projective-fields, with centres when known", () => {
    const parsed = parseProjectiveFields({
      image_size: 48,
      channels: [
        { index: 0, electrode: 3, image: "data:image/png;base64,AA", pf_center: [1, 2], rf_center: null, rf_snr: null },
        { index: 1, electrode: 4, image: "data:image/png;base64,AA", pf_center: null, rf_center: [3.5, 4] },
      ],
    });
    expect(parsed.ok && parsed.value.channels.map((c) => [c.pfCenter, c.rfCenter])).toEqual([
      [[1, 2], null],
      [null, [3.5, 4]],
    ]);
    const bad = parseProjectiveFields({ image_size: 48, channels: [{ index: 0, electrode: 3 }] });
    expect(!bad.ok && bad.error.message).toContain("image");
  });
});

describe("builders", () => {
  it("build exactly the documented messages", () => {
    expect(encode(stimulusWithImage(cred, 7, PNG))).toBe(
      `{"type":"stimulus","session_id":"xyz123","token":"${cred.token}","frame_id":7,"image":"${PNG}","source":"client"}`,
    );
    expect(randomStimulus(cred, 8)).toEqual({ type: "stimulus", session_id: "xyz123", token: cred.token, frame_id: 8, source: "random" });
    expect(startStream(cred, "recorded", 30)).toEqual({ type: "start_stream", session_id: "xyz123", token: cred.token, source: "recorded", fps: 30 });
    expect(stopStream(cred)).toEqual({ type: "stop_stream", session_id: "xyz123" });
    expect(subscribe(cred)).toEqual({ type: "subscribe", session_id: "xyz123", token: cred.token });
  });

  it("keep stream rates within 1..30 frames/s", () => {
    expect(clampFps(0)).toBe(1);
    expect(clampFps(60)).toBe(30);
    expect(clampFps(12.4)).toBe(12);
    expect(clampFps(Number.NaN)).toBe(30);
    expect(startStream(cred, "recorded", 100).fps).toBe(30);
  });
});

describe("the wire-format fixture (shared-protocol/fixtures/wire-format.json)", () => {
  const parsers: Record<string, (text: string) => ParseResult<unknown>> = {
    from_relay: parseRelayMessage,
    from_simulation: parseSimulationMessage,
  };
  const fixtureCred = (example: Record<string, unknown>) => ({ sessionId: String(example.session_id), token: String(example.token) });
  /** The page's builder for an example it sends, or null where no builder makes that shape. */
  const build = (example: Record<string, unknown>): BrowserOutgoing | null => {
    const cred = fixtureCred(example);
    const frame = example.frame_id;
    const options: FrameOptions = {};
    if (example.population !== undefined) options.population = example.population as Population;
    if (example.trial !== undefined) options.trial = example.trial as Trial;
    switch (example.type) {
      case "stimulus":
        if (typeof frame !== "number") return null;
        if (typeof example.image === "string") return stimulusWithImage(cred, frame, example.image, example.source as Source, options);
        return example.source === "random" ? randomStimulus(cred, frame, options) : null;
      case "imagined":
        return typeof frame === "number" ? imagined(cred, frame, example.payload as number[], options.population) : null;
      case "start_stream":
        return typeof example.fps === "number" ? startStream(cred, example.source as StreamSource, example.fps, options) : null;
      case "stop_stream":
        return stopStream(cred);
      case "subscribe":
        return subscribe(cred);
      default:
        return null;
    }
  };

  it("covers the message types the page reads and sends", () => {
    const roles = new Set(wireFormat.messages.flatMap((m) => m.browser));
    expect([...roles].sort()).toEqual(["from_relay", "from_simulation", "to_relay", "to_simulation"]);
  });

  for (const m of wireFormat.messages) {
    for (const role of m.browser.filter((r) => r in parsers)) {
      const parse = parsers[role]!;
      it(`${role}: reads every valid ${m.type} as it is and refuses the invalid ones`, () => {
        for (const example of m.valid) {
          const result = parse(JSON.stringify(example));
          if (!result.ok) throw new Error(`${JSON.stringify(example)}: ${result.error.message}`);
          expect(result.value).toEqual(example);
        }
        for (const bad of m.invalid.filter((b) => b.browser_tolerates === undefined)) {
          const result = parse(bad.text ?? JSON.stringify(bad.message));
          expect(result.ok, `${m.type}: ${bad.why}`).toBe(false);
        }
      });
    }
    for (const role of Object.keys(parsers).filter((r) => !m.browser.includes(r))) {
      it(`${role}: does not take ${m.type}, which the page is not sent there`, () => {
        const error = expectError(parsers[role]!(JSON.stringify(m.valid[0])));
        expect(error.field).toBe("type");
      });
    }
    if (m.browser.some((r) => r.startsWith("to_"))) {
      it(`builds ${m.type} exactly as the valid examples have it`, () => {
        let built = 0;
        for (const example of m.valid) {
          const message = build(example);
          if (message === null) continue;
          expect(JSON.parse(encode(message))).toEqual(example);
          built += 1;
        }
        expect(built, `no builder makes any valid ${m.type}`).toBeGreaterThan(0);
      });
    }
  }

  it("refuses frames without a usable type from either service", () => {
    for (const bad of wireFormat.any_type) {
      const text = bad.text ?? JSON.stringify(bad.message);
      for (const parse of Object.values(parsers)) expect(parse(text).ok, bad.why).toBe(false);
    }
  });
});

describe("populations and single trials", () => {
  it("are sent only when chosen, on stimuli, streams and edits", () => {
    expect(stimulusWithImage(cred, 1, PNG)).not.toHaveProperty("population");
    expect(stimulusWithImage(cred, 1, PNG, "webcam", { population: "wide", trial: "single" })).toMatchObject({ source: "webcam", population: "wide", trial: "single" });
    expect(randomStimulus(cred, 2, { trial: "mean" })).toEqual({ type: "stimulus", session_id: "xyz123", token: cred.token, frame_id: 2, source: "random", trial: "mean" });
    expect(startStream(cred, "dream", 20, { population: "wide" })).toEqual({ type: "start_stream", session_id: "xyz123", token: cred.token, source: "dream", fps: 20, population: "wide" });
    expect(imagined(cred, 3, [1, 2], "wide").population).toBe("wide");
    expect(imagined(cred, 3, [1, 2])).not.toHaveProperty("population");
  });

  it("are read from responses and reconstructions, and unknown values refused by name", () => {
    const r = parseSimulationMessage('{"type":"response","session_id":"s1","payload":[0,3],"population":"wide","trial":"single"}');
    expect(r.ok && r.value.type === "response" && [r.value.population, r.value.trial]).toEqual(["wide", "single"]);
    const img = parseRelayMessage('{"type":"reconstructed_image","session_id":"s1","image_base64":"data:image/jpeg;base64,/9j/","population":"wide"}');
    expect(img.ok && img.value.type === "reconstructed_image" && img.value.population).toBe("wide");
    const bad = expectError(parseSimulationMessage('{"type":"response","session_id":"s1","payload":[0],"population":"v4"}'));
    expect(bad.field).toBe("population");
    expect(bad.message).toContain("one of pvc1, wide");
    expect(expectError(parseSimulationMessage('{"type":"response","session_id":"s1","payload":[0],"trial":"some"}')).field).toBe("trial");
  });

  it("reads the wide-field population of /api/info, or why there is none", () => {
    const base = { lags: 1, channels: [{ file: "a", electrode: 1, row: 0, col: 0 }] };
    const wide = {
      available: true,
      lags: 2,
      image_size: 64,
      crop_window: { x: 0, y: 0, width: 320, height: 240 },
      channels: [
        { file: "f1", electrode: 1, row: 11, col: 3, rf_centre: [10, 20] },
        { file: "f2", electrode: 2, row: 0, col: 0 },
      ],
      response_mean: [1, 2, 3, 4],
    };
    const info = parseSimulationInfo({ ...base, wide });
    if (!info.ok) throw info.error;
    expect(info.value.wide).toEqual({
      lags: 2,
      imageSize: 64,
      cropWindow: { x: 0, y: 0, width: 320, height: 240 },
      channels: [
        { file: "f1", electrode: 1, row: 11, col: 3, rfCentre: [10, 20] },
        { file: "f2", electrode: 2, row: 0, col: 0 },
      ],
      responseMean: [1, 2, 3, 4],
    });
    const without = parseSimulationInfo({ ...base, wide: { available: false, reason: "start it with --wide-model DIR" } });
    expect(without.ok && [without.value.wide, without.value.wideAbsent]).toEqual([undefined, "start it with --wide-model DIR"]);
    const broken = expectError(parseSimulationInfo({ ...base, wide: { ...wide, crop_window: null } }));
    expect(broken.field).toBe("crop_window");
  });
});
