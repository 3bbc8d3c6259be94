import { describe, expect, it } from "vitest";
import { RunningMean, dataUrlBytes, fitWithin, pixelCorrelation } from "./imaging";

function rgba(values: number[]): Uint8ClampedArray {
  const out = new Uint8ClampedArray(values.length * 4);
  values.forEach((v, i) => {
    out.set([v, v, v, 255], i * 4);
  });
  return out;
}

describe("pixelCorrelation", () => {
  it("is 1 for the same image, whatever the brightness and contrast", () => {
    expect(pixelCorrelation(rgba([0, 50, 100, 200]), rgba([0, 50, 100, 200]))).toBeCloseTo(1, 10);
    expect(pixelCorrelation(rgba([0, 50, 100, 200]), rgba([20, 45, 70, 120]))).toBeCloseTo(1, 10);
  });

  it("is -1 for the negative and near 0 for unrelated images", () => {
    expect(pixelCorrelation(rgba([0, 50, 100, 200]), rgba([255, 205, 155, 55]))).toBeCloseTo(-1, 10);
    expect(pixelCorrelation(rgba([0, 255, 0, 255]), rgba([0, 0, 255, 255]))).toBeCloseTo(0, 10);
  });

  it("weights colour channels by luminance", () => {
    const red = new Uint8ClampedArray([255, 0, 0, 255, 0, 0, 0, 255]);
    const green = new Uint8ClampedArray([0, 255, 0, 255, 0, 0, 0, 255]);
    expect(pixelCorrelation(red, green)).toBeCloseTo(1, 10);
  });

  it("is NaN for flat images and mismatched sizes", () => {
    expect(pixelCorrelation(rgba([7, 7, 7]), rgba([1, 2, 3]))).toBeNaN();
    expect(pixelCorrelation(rgba([1, 2]), rgba([1, 2, 3]))).toBeNaN();
    expect(pixelCorrelation(new Uint8ClampedArray(0), new Uint8ClampedArray(0))).toBeNaN();
  });
});

describe("RunningMean", () => {
  it("averages finite values only", () => {
    const m = new RunningMean();
    expect(m.mean).toBeNull();
    m.add(0.5);
    m.add(Number.NaN);
    m.add(0.7);
    expect(m.mean).toBeCloseTo(0.6);
    expect(m.count).toBe(2);
    m.reset();
    expect(m.mean).toBeNull();
  });
});

describe("fitWithin", () => {
  it("scales down preserving the aspect ratio, never up", () => {
    expect(fitWithin(640, 480, 320, 240)).toEqual({ width: 320, height: 240 });
    expect(fitWithin(1920, 1080, 320, 240)).toEqual({ width: 320, height: 180 });
    expect(fitWithin(100, 50, 320, 240)).toEqual({ width: 100, height: 50 });
  });
});

describe("dataUrlBytes", () => {
  it("computes the decoded size of a base64 data URL", () => {
    expect(dataUrlBytes("data:image/png;base64,AAAA")).toBe(3);
    expect(dataUrlBytes("data:image/png;base64,AAA=")).toBe(2);
    expect(dataUrlBytes("data:image/png;base64,AA==")).toBe(1);
  });
});
