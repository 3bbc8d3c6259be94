/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** WebSocket URL of the simulation-service, baked in at build time. */
  readonly VITE_SIM_URL?: string;
}
