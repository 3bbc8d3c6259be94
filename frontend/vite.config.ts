/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Where `npm run dev` forwards the relay's endpoints, so that the dev server's page talks
// to a running relay as if the relay had served it (same origin, no CORS).
const relay = process.env.V1_RELAY_URL ?? "http://127.0.0.1:8080";

// The relay-service serves `dist/` at `/`, so asset URLs stay relative to the page.
export default defineConfig({
  plugins: [react()],
  base: "./",
  server: {
    proxy: {
      "/api/sessions": { target: relay, changeOrigin: true },
      "/ws/subscribe": { target: relay.replace(/^http/, "ws"), ws: true, changeOrigin: true },
    },
  },
  build: {
    outDir: "dist",
    sourcemap: true,
    target: "es2022",
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test/setup.ts"],
    include: ["src/**/*.test.{ts,tsx}", "dev/**/*.test.mjs"],
    restoreMocks: true,
  },
});
