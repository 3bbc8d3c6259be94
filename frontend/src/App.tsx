/**
 * The page: header with both services' status, the mode tabs and the Thought-to-Image
 * button, the three panels (what the model sees | V1 activity | reconstruction), and the
 * figures underneath. State lives in the `SessionController`; this component wires the
 * person's input (camera, files, keys) to it.
 */
import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import { buildLayout, buildWideLayout } from "./activity";
import { ActivityPanel } from "./components/ActivityPanel";
import { Alerts } from "./components/Alerts";
import { ConnectionBadge } from "./components/ConnectionBadge";
import { ImagineControls } from "./components/ImagineControls";
import { InputPanel } from "./components/InputPanel";
import { ModeTabs } from "./components/ModeTabs";
import { PopulationPicker } from "./components/PopulationPicker";
import { RateSelect } from "./components/RateSelect";
import { ReconstructionPanel } from "./components/ReconstructionPanel";
import { type InputSource, SourcePicker } from "./components/SourcePicker";
import { StatsBar } from "./components/StatsBar";
import { useCamera } from "./hooks/useCamera";
import { openCamera as browserOpenCamera } from "./lib/camera";
import { captureVideoFrame, prepareImageFile } from "./lib/imaging";
import type { Mode, SessionController } from "./session";

export interface AppProps {
  controller: SessionController;
  /** Opens the camera; the browser's by default, a fake in tests. */
  openCamera?: () => Promise<MediaStream>;
  /** Captures the current webcam frame; the canvas-based capture by default. */
  captureFrame?: (video: HTMLVideoElement, canvas: HTMLCanvasElement, snapshot: boolean) => string | null;
}

const SNAPSHOT_CAPTURE = { maxWidth: 640, maxHeight: 480, quality: 0.9 };
/** Spikes (summed over the lags) one click adds to an electrode (or a wide-field channel) in Imagine mode. */
const IMAGINE_STEP = 2;

function defaultCapture(video: HTMLVideoElement, canvas: HTMLCanvasElement, snapshot: boolean): string | null {
  return snapshot ? captureVideoFrame(video, canvas, SNAPSHOT_CAPTURE) : captureVideoFrame(video, canvas);
}

/** One of the three stages of the pipeline, numbered in the order data flows through them. */
function Panel({ title, subtitle, children, id, step }: { title: string; subtitle: string; children: React.ReactNode; id: string; step: number }) {
  return (
    <section className="panel" aria-labelledby={`${id}-title`}>
      <header className="panel-header">
        <h2 id={`${id}-title`}>
          <span className="step" aria-hidden="true">
            {step}
          </span>
          {title}
        </h2>
        <p>{subtitle}</p>
      </header>
      <div className="panel-body">{children}</div>
    </section>
  );
}

/** Input types where a letter key is a choice, not text, so the "T" shortcut still applies. */
const NON_TEXT_INPUTS = new Set(["radio", "checkbox", "button", "submit", "reset", "range", "color", "file"]);

/** Whether a key press on `target` is typing (where "T" must stay a letter). */
function isTyping(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
  return target instanceof HTMLInputElement && !NON_TEXT_INPUTS.has(target.type);
}

export function App({ controller, openCamera = browserOpenCamera, captureFrame = defaultCapture }: AppProps) {
  const state = useSyncExternalStore(controller.subscribe, controller.getState);
  const [source, setSource] = useState<InputSource>("random");
  const [upload, setUpload] = useState<{ image: string; name: string } | null>(null);
  const [fps, setFps] = useState(30);
  const [lower, setLower] = useState(false);
  const videoRef = useRef<HTMLVideoElement | null>(null);
  const captureCanvas = useRef<HTMLCanvasElement | null>(null);
  const fileInput = useRef<HTMLInputElement | null>(null);
  const { mode, streaming, pending } = state;
  const cameraActive = mode === "live" || (mode === "snapshot" && source === "webcam");
  const { camera, retry } = useCamera(cameraActive, openCamera);
  const layout = useMemo(() => (state.info ? buildLayout(state.info) : null), [state.info]);
  const wideLayout = useMemo(() => (state.info?.wide ? buildWideLayout(state.info.wide) : null), [state.info]);
  const wide = state.population === "wide" ? wideLayout : null;
  // The wide-field model's square images stand for the whole frame: shown at its aspect.
  const frameAspect = wide !== null ? `${wide.frame.width} / ${wide.frame.height}` : null;
  const wideUnavailable =
    state.info === null
      ? "Waiting for the simulation service to say which populations it has"
      : wideLayout === null
        ? (state.info.wideAbsent ?? "This simulation service has no wide-field model (start it with --wide-model DIR)")
        : null;
  const arrayWords = wide !== null ? "at their receptive fields on the frame" : "on the 10×10 array";

  const grab = useCallback(
    (snapshot: boolean): string | null => {
      const video = videoRef.current;
      if (video === null) return null;
      captureCanvas.current ??= document.createElement("canvas");
      return captureFrame(video, captureCanvas.current, snapshot);
    },
    [captureFrame],
  );

  const onFile = useCallback(
    async (file: File) => {
      try {
        const image = await prepareImageFile(file);
        setUpload({ image, name: file.name });
        setSource("image");
        controller.clearErrors("input");
        controller.setMode("snapshot");
      } catch (err) {
        controller.addError("input", "Bad image", err instanceof Error ? err.message : String(err));
      }
    },
    [controller],
  );

  const chooseFile = useCallback(() => fileInput.current?.click(), []);

  const primary = useCallback(() => {
    if (mode === "snapshot") {
      if (source === "random") controller.sendSnapshot(null);
      else if (source === "image") {
        if (upload === null) chooseFile();
        else controller.sendSnapshot(upload.image);
      } else {
        if (camera.status !== "on") {
          controller.addError("camera", "No camera frame", camera.status === "error" ? camera.error.message : "The camera is still starting; try again in a moment.");
          return;
        }
        const frame = grab(true);
        if (frame === null) controller.addError("camera", "No camera frame", "The camera has not delivered a frame yet; try again in a moment.");
        else controller.sendSnapshot(frame);
      }
    } else if (mode === "live") {
      if (streaming) controller.stopStreaming();
      else if (camera.status !== "on") {
        controller.addError("camera", "Live needs the camera", camera.status === "error" ? camera.error.message : "The camera is still starting; try again in a moment.");
      } else controller.startLive(() => grab(false), fps);
    } else if (mode === "imagine") {
      controller.startImagine(state.imagine?.start ?? "mean");
    } else if (mode === "dream") {
      if (streaming) controller.stopStreaming();
      else controller.startDream(fps);
    } else {
      if (streaming) controller.stopStreaming();
      else controller.startRecorded(fps);
    }
  }, [mode, source, upload, camera, streaming, fps, controller, grab, chooseFile, state.imagine?.start]);

  // The map shown is the one painted: array cells of the pvc-1 array, markers of the wide field.
  const paintsWide = state.population === "wide";
  const editing = useMemo(
    () =>
      mode === "imagine" && state.imagine !== null
        ? {
            onEdit: (site: number, delta: number) => (paintsWide ? controller.editMarker(site, delta) : controller.editCell(site, delta)),
            onHover: (site: number | null) => (paintsWide ? controller.hoverMarker(site) : controller.hoverCell(site)),
            step: IMAGINE_STEP,
            lower,
          }
        : null,
    [mode, state.imagine, controller, lower, paintsWide],
  );
  // The wide field's electrode ids repeat over its arrays: its channels go by number and array.
  const hoveredChannel = wide !== null && state.hoveredField !== null ? state.info?.wide?.channels[state.hoveredField.index] : undefined;
  const fieldName = hoveredChannel !== undefined && state.hoveredField !== null ? `Channel ${state.hoveredField.index + 1} (array ${hoveredChannel.file})` : null;

  // "T" runs the primary action from anywhere on the page except form fields.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key.toLowerCase() !== "t" || e.ctrlKey || e.metaKey || e.altKey || isTyping(e.target)) return;
      e.preventDefault();
      primary();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [primary]);

  // A live stream without a camera cannot go on.
  useEffect(() => {
    if (mode === "live" && streaming && camera.status !== "on" && camera.status !== "starting") controller.stopStreaming();
  }, [mode, streaming, camera.status, controller]);

  // Re-render once a second while a service is down, for the retry countdown.
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);

  const readiness = controller.readiness();
  let label = "Thought-to-Image";
  let sub = "Send the input, see what V1 reconstructs";
  if (mode === "snapshot" && pending) sub = "Waiting for the reconstruction…";
  if (mode === "live") {
    label = streaming ? "Stop live" : "Thought-to-Image · Live";
    sub = streaming ? "Streaming your webcam" : "Stream the webcam continuously";
  } else if (mode === "recorded") {
    label = streaming ? "Stop replay" : "Play recording";
    sub = streaming ? "Replaying held-out responses" : "Reconstruct from real recorded responses";
  } else if (mode === "imagine") {
    label = "Start over";
    sub = state.imagine?.start === "last" ? "From the last response" : "From the population's mean";
  } else if (mode === "dream") {
    label = streaming ? "Wake up" : "Dream";
    sub = streaming ? "Activity without an image, reconstructed live" : "Let the model dream up activity";
  }

  const onModeChange = (next: Mode) => controller.setMode(next);

  return (
    <div className="app">
      <header className="topbar">
        <div className="brand">
          <svg className="logo" viewBox="0 0 32 32" aria-hidden="true">
            <circle cx="16" cy="16" r="13" fill="none" stroke="currentColor" strokeWidth="2.5" />
            <circle cx="16" cy="16" r="5.5" fill="currentColor" />
            <path d="M3 16h5M24 16h5M16 3v5M16 24v5" stroke="currentColor" strokeWidth="2" strokeLinecap="round" />
          </svg>
          <div>
            <h1>V1 Thought-to-Image</h1>
            <p className="tagline">A model of macaque primary visual cortex: image → spikes → image</p>
          </div>
        </div>
        <div className="connections">
          <ConnectionBadge name="Simulation" status={state.simulation} now={now} onReconnect={() => controller.reconnect("simulation")} />
          <ConnectionBadge name="Relay" status={state.relay} now={now} onReconnect={() => controller.reconnect("relay")} />
        </div>
      </header>

      <main id="workspace" role="tabpanel" aria-labelledby={`tab-${mode}`}>
        <div className="controls">
          <ModeTabs mode={mode} onChange={onModeChange} recorded={state.info?.recorded} />
          <PopulationPicker
            population={state.population}
            trial={state.trial}
            wideUnavailable={wideUnavailable}
            onPopulation={(p) => {
              // The service's random frames are the pvc-1 array's: the wide field starts on the webcam.
              if (controller.setPopulation(p) && p === "wide" && source === "random") setSource("webcam");
            }}
            onTrial={(t) => controller.setTrial(t)}
          />
          <div className="mode-options">
            {mode === "snapshot" && (
              <SourcePicker
                source={source}
                onChange={setSource}
                randomUnavailable={state.population === "wide" ? "The wide field takes your own images (webcam, upload): the service's random frames are cut for the pvc-1 array" : null}
              />
            )}
            {mode === "imagine" && (
              <ImagineControls
                view={state.imagine}
                lower={lower}
                onLower={setLower}
                onStart={(start) => controller.startImagine(start)}
                onUndo={() => controller.undoEdit()}
                onReset={() => controller.resetEdits()}
              />
            )}
            {mode !== "snapshot" && mode !== "imagine" && <RateSelect fps={fps} onChange={setFps} disabled={streaming} />}
          </div>
          <div className="primary-wrap">
            <button
              type="button"
              className={`primary${streaming ? " primary-stop" : ""}`}
              onClick={primary}
              aria-disabled={!readiness.ready}
              aria-describedby="primary-hint"
              aria-keyshortcuts="T"
              data-testid="primary-action"
            >
              <span className="primary-label">{label}</span>
              <span className="primary-sub">{sub}</span>
            </button>
            <p id="primary-hint" className="hint">
              {!readiness.ready ? (
                readiness.reason
              ) : readiness.warning ? (
                readiness.warning
              ) : (
                <>
                  or press <kbd>T</kbd>
                </>
              )}
            </p>
          </div>
        </div>

        <Alerts
          relay={state.relay}
          simulation={state.simulation}
          errors={state.errors}
          now={now}
          onReconnect={(s) => controller.reconnect(s)}
          onDismiss={(id) => controller.dismissError(id)}
        />

        <div className="panels">
          <Panel
            id="input"
            step={1}
            title={mode === "recorded" ? "Movie frame" : "What V1 sees"}
            subtitle={
              mode === "recorded"
                ? "held-out segment, as shown to the animal"
                : mode === "imagine" || mode === "dream"
                  ? "nothing: no image in this mode"
                  : "the crop the model receives"
            }
          >
            <InputPanel
              mode={mode}
              source={source}
              camera={camera}
              videoRef={videoRef}
              upload={upload}
              modelInput={state.inputImage}
              frameAspect={frameAspect}
              onFile={(f) => void onFile(f)}
              onChooseFile={chooseFile}
              onRetryCamera={retry}
            />
            {mode === "recorded" && state.recordedPosition !== null && (
              <p className="caption" data-testid="recorded-position">
                Movie {state.recordedPosition.movie}, segment {state.recordedPosition.segment}, frame {state.recordedPosition.frame} (held out from training)
              </p>
            )}
          </Panel>
          <Panel
            id="activity"
            step={2}
            title="V1 activity"
            subtitle={
              mode === "recorded"
                ? `recorded spikes ${arrayWords}`
                : mode === "imagine"
                  ? `your spikes ${arrayWords}`
                  : mode === "dream"
                    ? `dreamt spikes ${arrayWords}`
                    : `${state.trial === "single" ? "one trial of " : "predicted "}spikes ${arrayWords}`
            }
          >
            <ActivityPanel
              activity={state.activity}
              history={controller.history}
              layout={layout}
              wide={wide}
              lags={wide?.lags ?? state.info?.lags ?? null}
              problem={state.activityProblem}
              editing={editing}
            />
          </Panel>
          <Panel id="recon" step={3} title="Reconstruction" subtitle="decoded from the activity alone">
            <ReconstructionPanel
              mode={mode}
              reconstruction={state.reconstruction}
              pending={pending}
              streaming={streaming}
              similarity={state.similarity}
              field={state.hoveredField}
              fieldName={fieldName}
              fieldSize={state.fieldSize}
              frameAspect={frameAspect}
            />
          </Panel>
        </div>

        <StatsBar mode={mode} stats={state.stats} targetFps={state.liveFps} streaming={streaming} serviceLatency={state.serviceLatency} />
      </main>

      <footer className="footer">
        <span>Session {state.sessionId ? <code>{state.sessionId.slice(0, 8)}</code> : "–"}</span>
        <span>Keys: <kbd>Tab</kbd> moves, <kbd>←</kbd>/<kbd>→</kbd> switch modes, <kbd>T</kbd> Thought-to-Image</span>
      </footer>

      <input
        ref={fileInput}
        type="file"
        accept="image/*"
        className="visually-hidden"
        tabIndex={-1}
        aria-hidden="true"
        data-testid="file-input"
        onChange={(e) => {
          const file = e.target.files?.[0];
          if (file) void onFile(file);
          e.target.value = "";
        }}
      />
    </div>
  );
}
