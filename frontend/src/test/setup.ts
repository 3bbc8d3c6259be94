/**
 * Test environment. jsdom has no canvas (drawing code treats a null context as "cannot
 * draw"), no media playback (a video preview simply does not play) and no PointerEvent
 * (a MouseEvent stands in, so pointer events carry their position, buttons and keys).
 */
import { afterEach } from "vitest";
import { cleanup } from "@testing-library/react";

Object.defineProperty(HTMLCanvasElement.prototype, "getContext", { configurable: true, value: () => null });
Object.defineProperty(HTMLMediaElement.prototype, "play", { configurable: true, value: () => Promise.resolve() });
if (typeof window.PointerEvent === "undefined") {
  class PointerEventStandIn extends MouseEvent {}
  Object.defineProperty(window, "PointerEvent", { configurable: true, value: PointerEventStandIn });
}

afterEach(() => cleanup());
