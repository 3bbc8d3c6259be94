/**
 * The page's state machine, outside React.
 *
 * Responsibility: own the two clients and turn what they report into one immutable
 * `PageState` the components render; carry out what the person asks (one Thought-to-Image
 * snapshot, a live webcam stream, a recorded replay); pace frames; pair each reconstruction
 * with the frame it came from for the similarity score; keep the errors the page shows.
 * Keeping this out of the components makes every behaviour testable with fake sockets and
 * a fake clock, and keeps the components about presentation.
 */
import { ActivityHistory, type ArrayLayout, RunningScale, type WideLayout, buildLayout, buildWideLayout, decodeActivity } from "./activity";
import { type ClientError, RelayClient, type RelayImage, SimulationClient } from "./clients";
import { type ConnectionStatus } from "./lib/connection";
import { ImaginedResponse } from "./imagine";
import { type FrameStats, FrameTracker } from "./lib/frames";
import { RunningMean, imageSimilarity } from "./lib/imaging";
import {
  type Credentials,
  type FrameOptions,
  type Population,
  type Trial,
  type ProjectiveField,
  type ProjectiveFields,
  type RecordedPosition,
  type ResponseMessage,
  type SimulationInfo,
  clampFps,
  explainErrorCode,
  imagined,
  randomStimulus,
  startStream,
  stimulusWithImage,
  stopStream,
} from "./protocol";

export type Mode = "snapshot" | "live" | "recorded" | "imagine" | "dream";

/** Modes whose frames the simulation-service produces itself (a stream it runs). */
const SERVER_STREAM_MODES: ReadonlySet<Mode> = new Set(["recorded", "dream"]);

/** Where Imagine mode starts painting from. */
export type ImagineStart = "last" | "mean";

/** What Imagine mode shows besides the activity. */
export interface ImagineView {
  start: ImagineStart;
  edited: boolean;
  canUndo: boolean;
  /** Edits made since the mode began (for tests and the caption). */
  edits: number;
}

/** A long-running imagined frame no longer holds back the next edit after this long. */
const IMAGINED_STALL_MS = 1000;

/** One message in the page's error list. */
export interface PageError {
  id: number;
  service: "relay" | "simulation" | "camera" | "input" | "page";
  title: string;
  message: string;
  /** How many times the same error repeated. */
  count: number;
}

export interface Reconstruction {
  image: string;
  frameId?: number;
  /** The true frame this reconstruction belongs to (recorded mode), when known. */
  truth?: string;
  /** The population whose model reconstructed it. */
  population?: Population;
  /** Correlation of this pair, when computed. */
  similarity?: number;
}

export interface ActivityView {
  /** Per-cell mean activity (NaN = no electrode); null until `/api/info` arrived. */
  grid: Float32Array | null;
  /** Per-marker activity of the wide-field population, when it is shown. */
  markers?: Float32Array;
  /** Current top of the colour scale (spikes per frame). */
  scale: number;
  /** Incremented on every new frame, so views of the mutable history know to redraw. */
  version: number;
  frameId?: number;
}

export interface PageState {
  relay: ConnectionStatus;
  simulation: ConnectionStatus;
  sessionId: string | null;
  info: SimulationInfo | null;
  mode: Mode;
  /** The population that answers: the pvc-1 array or the wide field. */
  population: Population;
  /** Predicted mean responses, or single trials drawn from them. */
  trial: Trial;
  /** A live or recorded stream is running. */
  streaming: boolean;
  /** A snapshot was sent and its reconstruction is awaited. */
  pending: boolean;
  liveFps: number;
  /** The crop the model saw, from the latest `response`. */
  inputImage: string | null;
  /** Where the latest recorded frame sits in the dataset (recorded mode). */
  recordedPosition: RecordedPosition | null;
  reconstruction: Reconstruction | null;
  activity: ActivityView | null;
  /** Why the latest response could not be drawn, if it could not. */
  activityProblem: string | null;
  stats: FrameStats;
  similarity: { mean: number | null; count: number };
  /** Simulation and relay processing times of the latest frame, ms. */
  serviceLatency: { simulation: number | null; relay: number | null };
  errors: PageError[];
  /** Imagine mode's editing state; null in the other modes or before it could start. */
  imagine: ImagineView | null;
  /** The projective field under the pointer (Imagine mode), when known. */
  hoveredField: ProjectiveField | null;
  /** Side of the model's crop, the coordinates of the projective fields. */
  fieldSize: number | null;
}

export interface SessionControllerOptions {
  relay: RelayClient;
  simulation: SimulationClient;
  /** Correlation of two images; the browser's canvas by default, a fake in tests. */
  similarity?: (a: string, b: string) => Promise<number>;
  /** How long a snapshot may wait for its reconstruction. */
  snapshotTimeoutMs?: number;
  /** Seconds of history in the raster, at 30 frames/s. */
  historyFrames?: number;
  now?: () => number;
  wallClock?: () => number;
}

/** Most errors kept on the page at once; older ones scroll out. */
const MAX_ERRORS = 4;
/** True frames kept for pairing with reconstructions still on their way. */
const MAX_PENDING_TRUTHS = 90;

const initialStatus: ConnectionStatus = { state: "stopped", detail: "not started", attempts: 0 };

export class SessionController {
  private readonly relay: RelayClient;
  private readonly simulation: SimulationClient;
  private readonly similarity: (a: string, b: string) => Promise<number>;
  private readonly snapshotTimeoutMs: number;
  private readonly wallClock: () => number;
  private readonly tracker: FrameTracker;
  private readonly scale = new RunningScale(1);
  private readonly similarityMean = new RunningMean();
  /** Recent frames of activity, for the scrolling raster. */
  readonly history: ActivityHistory;
  private layout: ArrayLayout | null = null;
  private wideLayout: WideLayout | null = null;
  private state: PageState;
  private readonly listeners = new Set<() => void>();
  private readonly unsubscribe: (() => void)[] = [];
  private nextFrameId = 1;
  private nextErrorId = 1;
  private pendingFrame: number | null = null;
  private snapshotTimer: ReturnType<typeof setTimeout> | null = null;
  private liveTimer: ReturnType<typeof setInterval> | null = null;
  private statsTimer: ReturnType<typeof setInterval> | null = null;
  private capture: (() => string | null) | null = null;
  /** The stream the person asked for, re-requested after the simulation reconnects. */
  private wantedStream: { source: "recorded" | "dream"; fps: number } | null = null;
  /** The last response each population simulated (or recorded), where Imagine mode can start. */
  private readonly lastPayloads = new Map<Population, number[]>();
  private imagined: ImaginedResponse | null = null;
  /** The imagined frame sent and not yet reconstructed, and when it was sent. */
  private imaginedInFlight: { frameId: number; at: number } | null = null;
  /** An edit made while a frame was in flight: sent once that frame is back. */
  private imaginedDirty = false;
  /** Each population's projective fields, once fetched. */
  private readonly fields = new Map<Population, ProjectiveFields>();
  private readonly fieldsRequested = new Set<Population>();
  /** The site under the pointer (array cell or wide-field marker), shown once its fields arrive. */
  private hovered: number | null = null;
  private readonly clock: () => number;
  private readonly truths = new Map<number, string>();
  private latestTruth: string | null = null;

  constructor(options: SessionControllerOptions) {
    this.relay = options.relay;
    this.simulation = options.simulation;
    this.similarity = options.similarity ?? imageSimilarity;
    this.snapshotTimeoutMs = options.snapshotTimeoutMs ?? 8000;
    this.wallClock = options.wallClock ?? Date.now;
    this.tracker = new FrameTracker(options.now ? { now: options.now } : {});
    this.clock = options.now ?? (() => performance.now());
    this.history = new ActivityHistory(options.historyFrames ?? 90);
    this.state = {
      relay: initialStatus,
      simulation: initialStatus,
      sessionId: null,
      info: null,
      mode: "snapshot",
      population: "pvc1",
      trial: "mean",
      streaming: false,
      pending: false,
      liveFps: 30,
      inputImage: null,
      recordedPosition: null,
      reconstruction: null,
      activity: null,
      activityProblem: null,
      stats: this.tracker.stats(),
      similarity: { mean: null, count: 0 },
      serviceLatency: { simulation: null, relay: null },
      errors: [],
      imagine: null,
      hoveredField: null,
      fieldSize: null,
    };
  }

  // -- store interface (useSyncExternalStore) ---------------------------------------------

  getState = (): PageState => this.state;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  private update(patch: Partial<PageState>): void {
    this.state = { ...this.state, ...patch };
    for (const listener of [...this.listeners]) listener();
  }

  // -- lifecycle --------------------------------------------------------------------------

  start(): void {
    const r = this.relay.events;
    const s = this.simulation.events;
    this.unsubscribe.push(
      r.on("status", (status) => this.update({ relay: status })),
      r.on("session", (cred) => this.onSession(cred)),
      r.on("image", (img) => this.onImage(img)),
      r.on("error", (err) => this.onClientError(err)),
      s.on("status", (status) => this.onSimulationStatus(status)),
      s.on("info", (info) => this.onInfo(info)),
      s.on("response", (msg) => this.onResponse(msg)),
      s.on("error", (err) => this.onClientError(err)),
    );
    this.statsTimer = setInterval(() => this.update({ stats: this.tracker.stats() }), 250);
    this.relay.start();
    this.simulation.start();
  }

  dispose(): void {
    this.stopStreaming();
    for (const off of this.unsubscribe.splice(0)) off();
    if (this.statsTimer !== null) clearInterval(this.statsTimer);
    this.statsTimer = null;
    this.clearSnapshot();
    this.relay.stop();
    this.simulation.stop();
    this.listeners.clear();
  }

  reconnect(service: "relay" | "simulation"): void {
    if (service === "relay") this.relay.reconnectNow();
    else this.simulation.reconnectNow();
  }

  // -- what the person asks for ---------------------------------------------------------

  setMode(mode: Mode): void {
    if (mode === this.state.mode) return;
    this.stopStreaming();
    this.clearSnapshot();
    this.resetView();
    this.imagined = null;
    this.imaginedInFlight = null;
    this.imaginedDirty = false;
    this.hovered = null;
    this.update({ mode, pending: false, imagine: null, hoveredField: null });
    if (mode === "imagine") {
      this.loadFields();
      this.startImagine(this.lastPayloads.has(this.state.population) ? "last" : "mean");
    }
  }

  /**
   * Chooses the population that answers. What was shown belonged to the other one, so
   * the view starts afresh and a running stream stops; the wide field needs a service
   * that has its model.
   */
  setPopulation(population: Population): boolean {
    if (population === this.state.population) return true;
    if (population === "wide" && this.wideLayout === null) {
      this.addError("input", "No wide-field model", this.state.info?.wideAbsent ?? "The simulation service has no wide-field model (start it with --wide-model DIR).");
      return false;
    }
    this.stopStreaming();
    this.clearSnapshot();
    this.resetView();
    this.imagined = null;
    this.imaginedInFlight = null;
    this.hovered = null;
    this.update({ population, pending: false, imagine: null, hoveredField: null, fieldSize: this.fields.get(population)?.imageSize ?? null });
    if (this.state.mode === "imagine") {
      this.loadFields();
      this.startImagine(this.lastPayloads.has(population) ? "last" : "mean");
    }
    return true;
  }

  /** Mean responses or single trials; a running server stream is asked for again with the new choice. */
  setTrial(trial: Trial): void {
    if (trial === this.state.trial) return;
    this.update({ trial });
    const cred = this.relay.credentials;
    if (this.wantedStream !== null && cred !== null) {
      this.simulation.send(startStream(cred, this.wantedStream.source, this.wantedStream.fps, this.frameOptions(this.wantedStream.source)));
    }
  }

  /**
   * The choices a frame carries; each only when it is not what its absence means, so that
   * the default frames are the messages they were before there was a choice. Recorded
   * responses are single trials already and take no `trial`.
   */
  private frameOptions(source?: "recorded" | "dream"): FrameOptions {
    const options: FrameOptions = {};
    if (this.state.population !== "pvc1") options.population = this.state.population;
    if (this.state.trial !== "mean" && source !== "recorded") options.trial = this.state.trial;
    return options;
  }

  // -- Imagine mode -------------------------------------------------------------------

  /**
   * Starts painting from the last simulated response or from the population's mean, and
   * sends it, so that the reconstruction shows where the painting starts.
   */
  startImagine(start: ImagineStart): boolean {
    const population = this.state.population;
    // The shown population's part of /api/info: the top level for the array, `wide` for the wide field.
    const info = population === "wide" ? (this.state.info?.wide ?? null) : this.state.info;
    const from = start === "last" ? (this.lastPayloads.get(population) ?? null) : (info?.responseMean ?? null);
    const expected = info ? info.lags * info.channels.length : null;
    if (from === null || (expected !== null && from.length !== expected)) {
      const why =
        start === "last"
          ? "There is no response to start from yet: send an image first (Snapshot), or start from the mean."
          : population === "wide"
            ? "The simulation service has not said the wide field's mean response (GET /api/info, under \"wide\"); wait for it to connect."
            : "The simulation service has not said its mean response yet (GET /api/info); wait for it to connect.";
      this.addError("input", "Cannot start imagining", why);
      return false;
    }
    this.imagined = new ImaginedResponse(from);
    this.imaginedDirty = false;
    this.imaginedInFlight = null;
    this.update({ imagine: { start, edited: false, canUndo: false, edits: 0 } });
    this.showImagined();
    this.sendImagined();
    return true;
  }

  /** Raises (delta > 0) or lowers the activity of the electrode at array cell `cell` (the pvc-1 array). */
  editCell(cell: number, delta: number): boolean {
    if (this.imagined === null || this.layout === null || this.state.population !== "pvc1") return false;
    if (!this.imagined.edit(cell, delta, this.layout)) return false;
    this.afterEdit(1);
    return true;
  }

  /** Raises (delta > 0) or lowers the activity of the channels of wide-field marker `marker`. */
  editMarker(marker: number, delta: number): boolean {
    if (this.imagined === null || this.wideLayout === null || this.state.population !== "wide") return false;
    if (!this.imagined.editMarker(marker, delta, this.wideLayout)) return false;
    this.afterEdit(1);
    return true;
  }

  undoEdit(): boolean {
    if (this.imagined === null || !this.imagined.undo()) return false;
    this.afterEdit(-1);
    return true;
  }

  resetEdits(): boolean {
    if (this.imagined === null || !this.imagined.reset()) return false;
    this.afterEdit(1);
    return true;
  }

  /** Shows the projective field of the electrode at array cell `cell` (null: none). */
  hoverCell(cell: number | null): void {
    this.hovered = cell;
    const layout = this.layout;
    const fields = this.fields.get("pvc1");
    let field: ProjectiveField | null = null;
    if (cell !== null && layout !== null && fields !== undefined && this.state.population === "pvc1") {
      // The first channel recorded at the cell stands for it.
      for (let c = 0; c < layout.channels; c++) {
        if (layout.cellOfChannel[c] === cell) {
          field = fields.channels[c] ?? null;
          break;
        }
      }
    }
    if (field !== this.state.hoveredField) this.update({ hoveredField: field });
  }

  /** Shows the projective field of the channel at wide-field marker `marker` (null: none). */
  hoverMarker(marker: number | null): void {
    this.hovered = marker;
    const fields = this.fields.get("wide");
    let field: ProjectiveField | null = null;
    if (marker !== null && this.wideLayout !== null && fields !== undefined && this.state.population === "wide") {
      // A group's first channel stands for it, as the first channel of an array cell does.
      const channel = this.wideLayout.markers[marker]?.channels[0];
      if (channel !== undefined) field = fields.channels[channel] ?? null;
    }
    if (field !== this.state.hoveredField) this.update({ hoveredField: field });
  }

  private afterEdit(step: number): void {
    const r = this.imagined;
    const view = this.state.imagine;
    if (r === null || view === null) return;
    this.update({ imagine: { ...view, edited: r.edited, canUndo: r.canUndo, edits: Math.max(0, view.edits + step) } });
    this.showImagined();
    this.sendImagined();
  }

  private showImagined(): void {
    if (this.imagined === null) return;
    this.showActivity(this.imagined.values, undefined, undefined);
  }

  /** Sends the response as it stands, unless a frame is on its way: then once it is back (latest wins). */
  private sendImagined(): void {
    const r = this.imagined;
    const cred = this.relay.credentials;
    if (r === null || cred === null) return;
    const inFlight = this.imaginedInFlight;
    if (inFlight !== null && this.clock() - inFlight.at < IMAGINED_STALL_MS) {
      this.imaginedDirty = true;
      return;
    }
    const frameId = this.nextFrameId++;
    // The pvc-1 array's edits go as they did before there was a choice: without `population`.
    const population = this.state.population === "pvc1" ? undefined : this.state.population;
    if (!this.simulation.send(imagined(cred, frameId, r.values, population))) {
      this.addError("simulation", "Not sent", "The simulation service is not connected; the page keeps trying to reconnect.");
      return;
    }
    this.tracker.markSent(frameId);
    this.imaginedInFlight = { frameId, at: this.clock() };
    this.imaginedDirty = false;
  }

  /** An imagined frame is back (or refused): the next edit may go. */
  private imaginedSettled(frameId: number | undefined): void {
    if (this.imaginedInFlight === null || frameId !== this.imaginedInFlight.frameId) return;
    this.imaginedInFlight = null;
    if (this.imaginedDirty) this.sendImagined();
  }

  /** Fetches the shown population's projective fields once (again after a failure). */
  private loadFields(): void {
    const population = this.state.population;
    if (this.fieldsRequested.has(population)) return;
    this.fieldsRequested.add(population);
    void this.simulation.projectiveFields(population).then((fields) => {
      if (fields === null) {
        this.fieldsRequested.delete(population);
        return;
      }
      this.fields.set(population, fields);
      if (this.state.population !== population) return;
      this.update({ fieldSize: fields.imageSize });
      // The pointer may have rested on a site while the fields were on their way.
      if (this.state.mode === "imagine" && this.hovered !== null) {
        if (population === "wide") this.hoverMarker(this.hovered);
        else this.hoverCell(this.hovered);
      }
    });
  }

  /**
   * Whether stimuli can be sent now, and if not, a sentence saying why. With the session
   * known but the relay down, sending still shows the V1 activity, so it is allowed with
   * a warning that no reconstruction will come.
   */
  readiness(): { ready: true; warning?: string } | { ready: false; reason: string } {
    if (this.relay.credentials === null) {
      return { ready: false, reason: "Waiting for a session from the relay; reconstructions arrive through it." };
    }
    if (!this.simulation.isOpen) {
      return { ready: false, reason: "The simulation service is not connected." };
    }
    if (this.relay.status.state !== "open") {
      return { ready: true, warning: "The relay is down: you will see the activity, but no reconstruction." };
    }
    return { ready: true };
  }

  /** Thought-to-Image for one input: a data URL, or `null` for a random stimulus. */
  sendSnapshot(image: string | null): boolean {
    const cred = this.credentialsOrReport();
    if (cred === null) return false;
    const frameId = this.nextFrameId++;
    const options = this.frameOptions();
    const message = image === null ? randomStimulus(cred, frameId, options) : stimulusWithImage(cred, frameId, image, "client", options);
    if (!this.simulation.send(message)) {
      this.addError("simulation", "Not sent", "The simulation service is not connected; the page keeps trying to reconnect.");
      return false;
    }
    this.tracker.markSent(frameId);
    this.clearSnapshot();
    this.pendingFrame = frameId;
    this.snapshotTimer = setTimeout(() => {
      if (this.pendingFrame !== frameId) return;
      this.pendingFrame = null;
      this.tracker.cancel(frameId);
      this.update({ pending: false });
      this.addError(
        "relay",
        "No reconstruction",
        `Frame ${frameId} got no reconstruction within ${this.snapshotTimeoutMs / 1000} s. Is the simulation service connected to the relay?`,
      );
    }, this.snapshotTimeoutMs);
    this.update({ pending: true });
    return true;
  }

  /** Starts sending webcam frames from `capture` at up to `fps`. */
  startLive(capture: () => string | null, fps: number): boolean {
    if (this.credentialsOrReport() === null) return false;
    this.stopStreaming();
    this.resetView();
    this.capture = capture;
    const rate = clampFps(fps);
    this.liveTimer = setInterval(() => this.liveTick(), 1000 / rate);
    this.update({ streaming: true, liveFps: rate });
    return true;
  }

  /** Starts the simulation's replay of recorded held-out responses. */
  startRecorded(fps: number): boolean {
    return this.startServerStream("recorded", fps);
  }

  /** Starts the simulation's dream: activity without an image, reconstructed live. */
  startDream(fps: number): boolean {
    return this.startServerStream("dream", fps);
  }

  private startServerStream(source: "recorded" | "dream", fps: number): boolean {
    if (source === "recorded" && this.state.population !== "pvc1") {
      this.addError(
        "input",
        "Recorded mode replays the pvc-1 array",
        'The recorded responses are those of the 10x10 array; choose "one array (pvc-1)" to replay them.',
      );
      return false;
    }
    const cred = this.credentialsOrReport();
    if (cred === null) return false;
    this.stopStreaming();
    this.resetView();
    const rate = clampFps(fps);
    if (!this.simulation.send(startStream(cred, source, rate, this.frameOptions(source)))) {
      this.addError("simulation", "Not sent", "The simulation service is not connected; the page keeps trying to reconnect.");
      return false;
    }
    this.wantedStream = { source, fps: rate };
    this.update({ streaming: true, liveFps: rate });
    return true;
  }

  stopStreaming(): void {
    if (this.liveTimer !== null) clearInterval(this.liveTimer);
    this.liveTimer = null;
    this.capture = null;
    if (this.wantedStream !== null) {
      const cred = this.relay.credentials;
      if (cred !== null) this.simulation.send(stopStream(cred));
      this.wantedStream = null;
    }
    if (this.state.streaming) this.update({ streaming: false });
  }

  dismissError(id: number): void {
    this.update({ errors: this.state.errors.filter((e) => e.id !== id) });
  }

  /** Drops the errors of one kind once their cause is gone (e.g. a good image replaced a bad one). */
  clearErrors(service: PageError["service"]): void {
    const errors = this.state.errors.filter((e) => e.service !== service);
    if (errors.length !== this.state.errors.length) this.update({ errors });
  }

  /** Reports a problem found in the page itself (camera, a bad file). */
  addError(service: PageError["service"], title: string, message: string): void {
    const errors = this.state.errors;
    const last = errors[errors.length - 1];
    if (last && last.service === service && last.title === title && last.message === message) {
      this.update({ errors: [...errors.slice(0, -1), { ...last, count: last.count + 1 }] });
      return;
    }
    const next = [...errors, { id: this.nextErrorId++, service, title, message, count: 1 }];
    this.update({ errors: next.slice(-MAX_ERRORS) });
  }

  // -- internals ----------------------------------------------------------------------

  private credentialsOrReport(): Credentials | null {
    const readiness = this.readiness();
    if (!readiness.ready) {
      this.addError(this.relay.credentials === null ? "relay" : "simulation", "Not ready", readiness.reason);
      return null;
    }
    return this.relay.credentials;
  }

  private liveTick(): void {
    const cred = this.relay.credentials;
    if (cred === null || this.capture === null || !this.simulation.isOpen) return;
    if (!this.tracker.tryAcquire()) return;
    const image = this.capture();
    if (image === null) return;
    const frameId = this.nextFrameId++;
    if (this.simulation.send(stimulusWithImage(cred, frameId, image, "webcam", this.frameOptions()))) this.tracker.markSent(frameId);
  }

  private clearSnapshot(): void {
    if (this.snapshotTimer !== null) clearTimeout(this.snapshotTimer);
    this.snapshotTimer = null;
    this.pendingFrame = null;
  }

  private resetView(): void {
    this.tracker.reset();
    this.similarityMean.reset();
    this.truths.clear();
    this.latestTruth = null;
    this.history.clear();
    this.scale.reset();
    this.update({
      inputImage: null,
      recordedPosition: null,
      reconstruction: null,
      activity: null,
      activityProblem: null,
      stats: this.tracker.stats(),
      similarity: { mean: null, count: 0 },
      serviceLatency: { simulation: null, relay: null },
    });
  }

  private onSession(cred: Credentials | null): void {
    const streamWasWanted = this.wantedStream;
    if (cred === null) {
      this.stopStreaming();
    } else if (streamWasWanted !== null && this.simulation.isOpen) {
      this.simulation.send(startStream(cred, streamWasWanted.source, streamWasWanted.fps, this.frameOptions(streamWasWanted.source)));
    }
    this.update({ sessionId: cred?.sessionId ?? null });
  }

  private onSimulationStatus(status: ConnectionStatus): void {
    const wasOpen = this.state.simulation.state === "open";
    this.update({ simulation: status });
    // The service forgets a stream when its socket closes; ask again once it is back.
    if (!wasOpen && status.state === "open" && this.wantedStream !== null) {
      const cred = this.relay.credentials;
      if (cred !== null) this.simulation.send(startStream(cred, this.wantedStream.source, this.wantedStream.fps, this.frameOptions(this.wantedStream.source)));
    }
  }

  private onInfo(info: SimulationInfo): void {
    this.layout = buildLayout(info);
    this.wideLayout = info.wide !== undefined ? buildWideLayout(info.wide) : null;
    this.history.clear();
    // A service that lost its wide-field model answers for the pvc-1 array only.
    const population = this.state.population === "wide" && this.wideLayout === null ? "pvc1" : this.state.population;
    this.update({ info, activityProblem: null, population });
  }

  private onResponse(msg: ResponseMessage): void {
    const cred = this.relay.credentials;
    if (cred !== null && msg.session_id !== cred.sessionId) return;
    // An imagined response comes back as it was sent; the view already shows the newest edit.
    if (msg.source === "imagined") return;
    // A straggler of the population shown before would be drawn on the wrong map.
    if ((msg.population ?? "pvc1") !== this.state.population) return;
    if (msg.source !== "dream") this.lastPayloads.set(this.state.population, msg.payload);
    const patch: Partial<PageState> = {};
    if (msg.recorded !== undefined) patch.recordedPosition = msg.recorded;
    if (msg.input_image !== undefined) {
      patch.inputImage = msg.input_image;
      if (this.state.mode === "recorded") {
        this.latestTruth = msg.input_image;
        if (msg.frame_id !== undefined) {
          this.truths.set(msg.frame_id, msg.input_image);
          if (this.truths.size > MAX_PENDING_TRUTHS) {
            const oldest = this.truths.keys().next().value;
            if (oldest !== undefined) this.truths.delete(oldest);
          }
        }
      }
    }
    patch.serviceLatency = { ...this.state.serviceLatency, simulation: msg.latency_ms ?? null };
    this.update(patch);
    this.showActivity(msg.payload, msg.shape, msg.frame_id);
  }

  /** Draws one response on the array and adds it to the history. */
  private showActivity(payload: ArrayLike<number>, shape: [number, number] | undefined, frameId: number | undefined): void {
    const patch: Partial<PageState> = {};
    try {
      const frame = decodeActivity(payload, shape, this.state.population === "wide" ? this.wideLayout : this.layout);
      this.history.push(frame.totals);
      const scale = this.scale.update(frame.markers ?? frame.grid ?? frame.totals);
      const activity: ActivityView = { grid: frame.grid, scale, version: (this.state.activity?.version ?? 0) + 1 };
      if (frame.markers !== undefined) activity.markers = frame.markers;
      if (frameId !== undefined) activity.frameId = frameId;
      patch.activity = activity;
      patch.activityProblem = null;
    } catch (err) {
      patch.activityProblem = err instanceof Error ? err.message : String(err);
    }
    this.update(patch);
  }

  private onImage({ image: img, replay }: RelayImage): void {
    // After a reconnect the relay replays its buffer; only frames still awaited matter
    // (the rest were shown already, or belong to an earlier mode).
    const awaited = this.tracker.isAwaiting(img.frame_id) || (this.pendingFrame !== null && img.frame_id === this.pendingFrame);
    if (replay && !awaited) return;
    if ((img.population ?? "pvc1") !== this.state.population) return;
    // Outside the recorded replay every frame of this session was sent by this page; an
    // image for a frame it no longer awaits is a straggler from an earlier mode or a frame
    // given up on, and would only make the view jump back.
    if (!SERVER_STREAM_MODES.has(this.state.mode) && img.frame_id !== undefined && !awaited) return;
    // Frames this page did not send (the recorded replay) are timed from the simulation's
    // send time, which is on the same clock when both run on one machine; implausible
    // values (clocks of different machines) are ignored.
    let measured: number | null = null;
    if (img.sent_at_ms !== undefined) {
      const age = this.wallClock() - img.sent_at_ms;
      if (age >= 0 && age < 60_000) measured = age;
    }
    const latency = this.tracker.markArrived(img.frame_id, measured);
    const reconstruction: Reconstruction = { image: img.image_base64 };
    if (img.population !== undefined) reconstruction.population = img.population;
    if (img.frame_id !== undefined) reconstruction.frameId = img.frame_id;
    const patch: Partial<PageState> = {
      reconstruction,
      serviceLatency: { ...this.state.serviceLatency, relay: img.latency_ms ?? null },
    };
    if (this.pendingFrame !== null && (img.frame_id === undefined || img.frame_id >= this.pendingFrame)) {
      this.clearSnapshot();
      patch.pending = false;
    }
    if (this.state.mode === "recorded") {
      const truth = img.frame_id !== undefined ? (this.truths.get(img.frame_id) ?? null) : this.latestTruth;
      if (truth !== null) {
        reconstruction.truth = truth;
        if (img.frame_id !== undefined) this.truths.delete(img.frame_id);
        void this.scorePair(truth, img.image_base64, reconstruction);
      }
    }
    if (latency !== null) patch.stats = this.tracker.stats();
    this.update(patch);
    this.imaginedSettled(img.frame_id);
  }

  private async scorePair(truth: string, image: string, reconstruction: Reconstruction): Promise<void> {
    let r: number;
    try {
      r = await this.similarity(truth, image);
    } catch {
      return; // an undecodable pair only misses its score; the images still show
    }
    this.similarityMean.add(r);
    const current = this.state.reconstruction;
    const patch: Partial<PageState> = { similarity: { mean: this.similarityMean.mean, count: this.similarityMean.count } };
    if (current === reconstruction && Number.isFinite(r)) patch.reconstruction = { ...current, similarity: r };
    this.update(patch);
  }

  private onClientError(err: ClientError): void {
    const title = err.code === "protocol" ? "Unreadable message" : explainErrorCode(err.code);
    if (err.frameId !== undefined && err.frameId === this.pendingFrame) {
      this.clearSnapshot();
      this.tracker.cancel(err.frameId);
      this.update({ pending: false });
    } else if (err.frameId !== undefined) {
      this.tracker.cancel(err.frameId);
    }
    this.imaginedSettled(err.frameId);
    this.addError(err.service, title, err.message);
  }
}
