/** Test environment: jsdom has no canvas; drawing code treats a null context as "cannot draw". */
import { afterEach } from "vitest";
import { cleanup } from "@testing-library/react";

Object.defineProperty(HTMLCanvasElement.prototype, "getContext", { configurable: true, value: () => null });

afterEach(() => cleanup());
