/**
 * Test environment. jsdom has no canvas (drawing code treats a null context as "cannot
 * draw") and no media playback (a video preview simply does not play).
 */
import { afterEach } from "vitest";
import { cleanup } from "@testing-library/react";

Object.defineProperty(HTMLCanvasElement.prototype, "getContext", { configurable: true, value: () => null });
Object.defineProperty(HTMLMediaElement.prototype, "play", { configurable: true, value: () => Promise.resolve() });

afterEach(() => cleanup());
