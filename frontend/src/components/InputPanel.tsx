/**
 * The first panel: what goes into the model. The crop the model saw is shown as soon as
 * the simulation answers; until then, and as an inset afterwards, the source itself
 * (the webcam preview or the chosen image). The panel is also the drop target for images.
 */
import { type DragEvent, type RefObject, useEffect, useRef, useState } from "react";
import type { CameraState } from "../hooks/useCamera";
import type { Mode } from "../session";
import type { InputSource } from "./SourcePicker";

export interface InputPanelProps {
  mode: Mode;
  source: InputSource;
  camera: CameraState;
  videoRef: RefObject<HTMLVideoElement | null>;
  upload: { image: string; name: string } | null;
  /** The crop the model saw, from the latest response. */
  modelInput: string | null;
  /** The frame's aspect ("4 / 3") when the model's square image stands for a whole frame (the wide field). */
  frameAspect?: string | null;
  onFile: (file: File) => void;
  onChooseFile: () => void;
  onRetryCamera: () => void;
}

function CameraMessage({ camera, onRetry }: { camera: CameraState; onRetry: () => void }) {
  if (camera.status === "starting") return <p className="placeholder">Starting the camera…</p>;
  if (camera.status === "error") {
    return (
      <div className="placeholder placeholder-error" role="alert" data-testid="camera-error">
        <p>{camera.error.message}</p>
        <button type="button" className="button-secondary" onClick={onRetry}>
          Try the camera again
        </button>
      </div>
    );
  }
  return null;
}

export function InputPanel({ mode, source, camera, videoRef, upload, modelInput, onFile, onChooseFile, onRetryCamera, frameAspect = null }: InputPanelProps) {
  const [dragging, setDragging] = useState(false);
  const usesCamera = mode === "live" || (mode === "snapshot" && source === "webcam");
  const stream = camera.status === "on" ? camera.stream : null;
  const localVideo = useRef<HTMLVideoElement | null>(null);

  useEffect(() => {
    const video = localVideo.current;
    if (video === null) return;
    if (video.srcObject !== stream) video.srcObject = stream;
    if (stream === null) return;
    // Autoplay of a muted video is allowed everywhere; a refusal only delays the preview.
    try {
      void Promise.resolve(video.play()).catch(() => undefined);
    } catch {
      // Environments without media playback: the preview stays still.
    }
  }, [stream]);

  const onDragOver = (e: DragEvent) => {
    if (!Array.from(e.dataTransfer.types).includes("Files")) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
    setDragging(true);
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    const file = e.dataTransfer.files[0];
    if (file) onFile(file);
  };

  const sourceView = usesCamera ? (
    <video
      ref={(el) => {
        localVideo.current = el;
        videoRef.current = el;
      }}
      className={stream ? "source-video" : "source-video hidden"}
      muted
      playsInline
      autoPlay
      aria-label="Webcam preview"
    />
  ) : mode === "snapshot" && source === "image" && upload !== null ? (
    <img className="source-image" src={upload.image} alt={`Your image: ${upload.name}`} />
  ) : null;

  const showCrop = modelInput !== null;
  return (
    <div
      className={`input-panel${dragging ? " dragging" : ""}`}
      onDragOver={onDragOver}
      onDragLeave={() => setDragging(false)}
      onDrop={onDrop}
      data-testid="input-panel"
    >
      <div className={showCrop ? "stage stage-with-inset" : "stage"}>
        {showCrop && (
          <img
            className={frameAspect !== null ? "model-input frame-aspect" : "model-input"}
            style={frameAspect !== null ? { aspectRatio: frameAspect } : undefined}
            src={modelInput}
            alt="The crop the model sees"
            data-testid="model-input"
          />
        )}
        {sourceView !== null && <div className={showCrop ? "inset" : "source"}>{sourceView}</div>}
        {usesCamera && <CameraMessage camera={camera} onRetry={onRetryCamera} />}
        {!showCrop && mode === "snapshot" && source === "random" && (
          <div className="placeholder">
            <p>The simulation service picks a random movie frame.</p>
            <p>
              Press <kbd>Thought-to-Image</kbd> to see what V1 makes of it.
            </p>
          </div>
        )}
        {!showCrop && mode === "snapshot" && source === "image" && upload === null && (
          <div className="placeholder dropzone">
            <p>Drop an image here</p>
            <button type="button" className="button-secondary" onClick={onChooseFile}>
              Choose an image…
            </button>
          </div>
        )}
        {!showCrop && mode === "recorded" && <p className="placeholder">Held-out movie frames appear here while the recording plays.</p>}
        {!showCrop && mode === "imagine" && <p className="placeholder">No image: the activity is yours. Paint it on the activity map.</p>}
        {!showCrop && mode === "dream" && <p className="placeholder">No image: the model dreams the activity up.</p>}
      </div>
      {mode === "snapshot" && source === "image" && upload !== null && (
        <div className="input-actions">
          <span className="file-name" title={upload.name}>
            {upload.name}
          </span>
          <button type="button" className="button-secondary" onClick={onChooseFile}>
            Choose another…
          </button>
        </div>
      )}
    </div>
  );
}
