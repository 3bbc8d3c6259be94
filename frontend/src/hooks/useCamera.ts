/**
 * The webcam as React state: opened while `active`, released when not, with the
 * reason in plain words when it cannot be opened.
 */
import { useEffect, useState } from "react";
import { CameraError, describeCameraError, openCamera, stopCamera } from "../lib/camera";

export type CameraState =
  | { status: "off" }
  | { status: "starting" }
  | { status: "on"; stream: MediaStream }
  | { status: "error"; error: CameraError };

export function useCamera(active: boolean, open: () => Promise<MediaStream> = openCamera): { camera: CameraState; retry: () => void } {
  const [camera, setCamera] = useState<CameraState>({ status: "off" });
  const [attempt, setAttempt] = useState(0);

  // The effect only subscribes; "off" while inactive and "starting" until the camera
  // answers are derived below, so no state is set synchronously in the effect body.
  useEffect(() => {
    if (!active) return;
    let cancelled = false;
    let stream: MediaStream | null = null;
    open().then(
      (s) => {
        if (cancelled) {
          stopCamera(s);
          return;
        }
        stream = s;
        setCamera({ status: "on", stream: s });
      },
      (err: unknown) => {
        if (cancelled) return;
        const error = err instanceof CameraError ? err : describeCameraError(err);
        setCamera({ status: "error", error });
      },
    );
    return () => {
      cancelled = true;
      stopCamera(stream);
      setCamera({ status: "off" });
    };
  }, [active, attempt, open]);

  const shown: CameraState = !active ? { status: "off" } : camera.status === "off" ? { status: "starting" } : camera;
  return { camera: shown, retry: () => setAttempt((n) => n + 1) };
}
