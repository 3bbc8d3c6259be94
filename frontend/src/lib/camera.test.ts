import { describe, expect, it } from "vitest";
import { CameraError, describeCameraError, openCamera } from "./camera";

function domError(name: string): Error {
  const e = new Error(`${name} happened`);
  e.name = name;
  return e;
}

describe("describeCameraError", () => {
  it("tells a denied permission apart from a missing or busy camera", () => {
    expect(describeCameraError(domError("NotAllowedError")).reason).toBe("denied");
    expect(describeCameraError(domError("NotAllowedError")).message).toContain("Camera permission was denied");
    expect(describeCameraError(domError("NotFoundError")).reason).toBe("missing");
    expect(describeCameraError(domError("NotFoundError")).message).toContain("No camera was found");
    expect(describeCameraError(domError("NotReadableError")).reason).toBe("busy");
    expect(describeCameraError(domError("Weird")).message).toContain("(Weird happened)");
  });

  it("always offers the other inputs", () => {
    for (const name of ["NotAllowedError", "NotFoundError", "NotReadableError", "Other"]) {
      expect(describeCameraError(domError(name)).message).toContain("random stimulus or an image");
    }
  });
});

describe("openCamera", () => {
  it("explains that an insecure page has no camera", async () => {
    const err = await openCamera({ isSecureContext: false, mediaDevices: undefined }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CameraError);
    expect((err as CameraError).reason).toBe("insecure");
  });

  it("reports a browser without getUserMedia", async () => {
    const err = await openCamera({ isSecureContext: true, mediaDevices: undefined }).catch((e: unknown) => e);
    expect((err as CameraError).reason).toBe("unsupported");
  });

  it("asks for video only and translates a rejection", async () => {
    const asked: MediaStreamConstraints[] = [];
    const stream = {} as MediaStream;
    const ok = await openCamera({
      isSecureContext: true,
      mediaDevices: {
        getUserMedia: async (c?: MediaStreamConstraints) => {
          asked.push(c ?? {});
          return stream;
        },
      },
    });
    expect(ok).toBe(stream);
    expect(asked[0]?.audio).toBe(false);
    expect(asked[0]?.video).toBeTruthy();
    const err = await openCamera({
      isSecureContext: true,
      mediaDevices: { getUserMedia: () => Promise.reject(domError("NotAllowedError")) },
    }).catch((e: unknown) => e);
    expect((err as CameraError).reason).toBe("denied");
  });
});
