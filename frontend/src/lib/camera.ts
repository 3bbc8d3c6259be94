/**
 * The browser webcam as an input.
 *
 * Responsibility: open the camera with `getUserMedia` and translate every way that can
 * fail into one clear sentence that says what happened and what to do instead; a camera
 * is often missing, blocked or busy, and the page has other inputs to offer.
 */
export class CameraError extends Error {
  /** A short machine-readable reason, for styling and tests. */
  readonly reason: "denied" | "missing" | "busy" | "insecure" | "unsupported" | "failed";

  constructor(reason: CameraError["reason"], message: string) {
    super(message);
    this.name = "CameraError";
    this.reason = reason;
  }
}

const ALTERNATIVES = "You can still use a random stimulus or an image of your own.";

/** The sentence for a `getUserMedia` rejection (a DOMException, by name). */
export function describeCameraError(err: unknown): CameraError {
  const name = typeof err === "object" && err !== null && "name" in err ? String((err as { name: unknown }).name) : "";
  switch (name) {
    case "NotAllowedError":
    case "PermissionDeniedError":
    case "SecurityError":
      return new CameraError(
        "denied",
        `Camera permission was denied. Allow camera access for this page in the browser's site settings, then choose Webcam again. ${ALTERNATIVES}`,
      );
    case "NotFoundError":
    case "DevicesNotFoundError":
    case "OverconstrainedError":
      return new CameraError("missing", `No camera was found on this computer. ${ALTERNATIVES}`);
    case "NotReadableError":
    case "TrackStartError":
    case "AbortError":
      return new CameraError("busy", `The camera is in use by another application or could not be started. Close it there and try again. ${ALTERNATIVES}`);
    default: {
      const detail = err instanceof Error && err.message ? ` (${err.message})` : "";
      return new CameraError("failed", `The camera could not be opened${detail}. ${ALTERNATIVES}`);
    }
  }
}

export interface CameraEnvironment {
  isSecureContext: boolean;
  mediaDevices: Pick<MediaDevices, "getUserMedia"> | undefined;
}

function browserEnvironment(): CameraEnvironment {
  return {
    isSecureContext: typeof window !== "undefined" && window.isSecureContext,
    mediaDevices: typeof navigator !== "undefined" ? navigator.mediaDevices : undefined,
  };
}

/** Opens the camera at about 640x480; rejects with a `CameraError`. */
export async function openCamera(env: CameraEnvironment = browserEnvironment()): Promise<MediaStream> {
  if (env.mediaDevices?.getUserMedia === undefined) {
    if (!env.isSecureContext) {
      throw new CameraError(
        "insecure",
        `The camera is only available on a secure page (https, or http on localhost / 127.0.0.1). ${ALTERNATIVES}`,
      );
    }
    throw new CameraError("unsupported", `This browser does not offer camera access. ${ALTERNATIVES}`);
  }
  try {
    return await env.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } },
      audio: false,
    });
  } catch (err) {
    throw describeCameraError(err);
  }
}

export function stopCamera(stream: MediaStream | null): void {
  stream?.getTracks().forEach((track) => track.stop());
}
