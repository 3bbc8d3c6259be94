/**
 * Pixels in the browser: the similarity score of recorded mode, and turning uploads and
 * webcam frames into the data URLs a `stimulus` carries.
 *
 * The score is the Pearson correlation of the two images' luminance after both are drawn
 * at the same size, the usual pixel-level measure of reconstruction quality; it ignores
 * overall brightness and contrast, which a decoder trained on normalised frames does not
 * reproduce.
 */
import { MAX_IMAGE_BYTES, MAX_IMAGE_SIDE } from "../protocol";

/** Pearson correlation of the luminance of two same-sized RGBA buffers; NaN when flat. */
export function pixelCorrelation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length || a.length % 4 !== 0 || a.length === 0) return Number.NaN;
  const n = a.length / 4;
  let sa = 0;
  let sb = 0;
  let saa = 0;
  let sbb = 0;
  let sab = 0;
  for (let i = 0; i < a.length; i += 4) {
    const x = 0.299 * (a[i] ?? 0) + 0.587 * (a[i + 1] ?? 0) + 0.114 * (a[i + 2] ?? 0);
    const y = 0.299 * (b[i] ?? 0) + 0.587 * (b[i + 1] ?? 0) + 0.114 * (b[i + 2] ?? 0);
    sa += x;
    sb += y;
    saa += x * x;
    sbb += y * y;
    sab += x * y;
  }
  const cov = sab - (sa * sb) / n;
  const va = saa - (sa * sa) / n;
  const vb = sbb - (sb * sb) / n;
  if (va <= 1e-9 || vb <= 1e-9) return Number.NaN;
  return cov / Math.sqrt(va * vb);
}

/** Mean of the values seen so far, ignoring NaN (flat frames have no correlation). */
export class RunningMean {
  private sum = 0;
  private n = 0;

  add(value: number): void {
    if (!Number.isFinite(value)) return;
    this.sum += value;
    this.n += 1;
  }

  get count(): number {
    return this.n;
  }

  get mean(): number | null {
    return this.n === 0 ? null : this.sum / this.n;
  }

  reset(): void {
    this.sum = 0;
    this.n = 0;
  }
}

/** An image the page could not use, with the reason a person can act on. */
export class ImageInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImageInputError";
  }
}

export function loadImage(src: string): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new ImageInputError("the image could not be decoded"));
    img.src = src;
  });
}

function context2d(canvas: HTMLCanvasElement): CanvasRenderingContext2D {
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  if (ctx === null) throw new ImageInputError("this browser cannot draw images onto a canvas");
  return ctx;
}

/** Correlation of two images (any data URLs) drawn at `size` x `size`. */
export async function imageSimilarity(srcA: string, srcB: string, size = 64): Promise<number> {
  const [a, b] = await Promise.all([loadImage(srcA), loadImage(srcB)]);
  const canvas = document.createElement("canvas");
  canvas.width = size;
  canvas.height = size;
  const ctx = context2d(canvas);
  ctx.drawImage(a, 0, 0, size, size);
  const pa = ctx.getImageData(0, 0, size, size).data;
  ctx.clearRect(0, 0, size, size);
  ctx.drawImage(b, 0, 0, size, size);
  const pb = ctx.getImageData(0, 0, size, size).data;
  return pixelCorrelation(pa, pb);
}

/** Size that fits `width` x `height` inside `maxWidth` x `maxHeight`, never enlarging. */
export function fitWithin(width: number, height: number, maxWidth: number, maxHeight: number): { width: number; height: number } {
  const scale = Math.min(1, maxWidth / width, maxHeight / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** Approximate decoded byte size of a base64 data URL. */
export function dataUrlBytes(dataUrl: string): number {
  const comma = dataUrl.indexOf(",");
  const b64 = comma < 0 ? dataUrl : dataUrl.slice(comma + 1);
  const padding = b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0;
  return Math.floor((b64.length * 3) / 4) - padding;
}

export interface CaptureOptions {
  maxWidth: number;
  maxHeight: number;
  /** JPEG quality 0..1. */
  quality: number;
}

export const LIVE_CAPTURE: CaptureOptions = { maxWidth: 320, maxHeight: 240, quality: 0.8 };

/**
 * One webcam frame as a JPEG data URL, downscaled first (the model sees a small crop, and
 * a 320x240 JPEG is a few kB on the wire at 30 frames/s). Null while the video has no frame.
 */
export function captureVideoFrame(video: HTMLVideoElement, canvas: HTMLCanvasElement, options: CaptureOptions = LIVE_CAPTURE): string | null {
  if (video.readyState < 2 || video.videoWidth === 0 || video.videoHeight === 0) return null;
  const { width, height } = fitWithin(video.videoWidth, video.videoHeight, options.maxWidth, options.maxHeight);
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const ctx = canvas.getContext("2d");
  if (ctx === null) return null;
  ctx.drawImage(video, 0, 0, width, height);
  return canvas.toDataURL("image/jpeg", options.quality);
}

/** Largest side an uploaded image is sent at; larger ones are scaled down first. */
export const UPLOAD_MAX_SIDE = 1024;

function readAsDataUrl(file: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => (typeof reader.result === "string" ? resolve(reader.result) : reject(new ImageInputError("the file could not be read")));
    reader.onerror = () => reject(new ImageInputError("the file could not be read"));
    reader.readAsDataURL(file);
  });
}

/**
 * Turns an uploaded or dropped file into a data URL the simulation-service accepts (JPEG
 * or PNG, at most 4 MiB and 4096 px a side). The file is decoded here first, so a file
 * that is not an image is reported at once, by name, instead of as a server error later.
 */
export async function prepareImageFile(file: File): Promise<string> {
  const name = file.name || "the file";
  if (file.type !== "" && !file.type.startsWith("image/")) {
    throw new ImageInputError(`${name} is ${file.type}, not an image; choose a JPEG, PNG, WebP or GIF file`);
  }
  const original = await readAsDataUrl(file);
  let img: HTMLImageElement;
  try {
    img = await loadImage(original);
  } catch {
    throw new ImageInputError(`${name} could not be decoded as an image; is the file damaged or in an unusual format?`);
  }
  const width = img.naturalWidth;
  const height = img.naturalHeight;
  if (width === 0 || height === 0) throw new ImageInputError(`${name} has no pixels`);
  const acceptedType = /^data:image\/(jpeg|png);base64,/.test(original);
  if (acceptedType && width <= UPLOAD_MAX_SIDE && height <= UPLOAD_MAX_SIDE && dataUrlBytes(original) <= MAX_IMAGE_BYTES) {
    return original;
  }
  const size = fitWithin(width, height, Math.min(UPLOAD_MAX_SIDE, MAX_IMAGE_SIDE), Math.min(UPLOAD_MAX_SIDE, MAX_IMAGE_SIDE));
  const canvas = document.createElement("canvas");
  canvas.width = size.width;
  canvas.height = size.height;
  const ctx = context2d(canvas);
  ctx.drawImage(img, 0, 0, size.width, size.height);
  return canvas.toDataURL("image/jpeg", 0.9);
}
