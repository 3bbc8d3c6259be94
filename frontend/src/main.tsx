/** Entry point: find the services, start the session, render the page. */
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { RelayClient, SimulationClient } from "./clients";
import { resolveEndpoints } from "./config";
import { SessionController } from "./session";
import "./styles.css";

const root = document.getElementById("root");
if (root === null) throw new Error("index.html has no #root element");

try {
  const endpoints = resolveEndpoints(window.location, import.meta.env.VITE_SIM_URL as string | undefined);
  const controller = new SessionController({
    relay: new RelayClient({ origin: endpoints.relayOrigin }),
    simulation: new SimulationClient({ wsUrl: endpoints.simulationWsUrl }),
  });
  controller.start();
  // A page kept in the back/forward cache may come back; only a page that is really
  // going away closes its sockets here (the browser closes them anyway).
  window.addEventListener("pagehide", (event) => {
    if (!event.persisted) controller.dispose();
  });
  createRoot(root).render(
    <StrictMode>
      <App controller={controller} />
    </StrictMode>,
  );
} catch (err) {
  // Only a malformed ?relay= / ?sim= gets here; say which and how to fix it.
  const message = err instanceof Error ? err.message : String(err);
  createRoot(root).render(
    <div className="fatal" role="alert">
      <h1>The page cannot start</h1>
      <p>{message}</p>
    </div>,
  );
}
