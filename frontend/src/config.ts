/**
 * Where the two services are.
 *
 * The relay serves this page, so by default its origin is the page's origin; the
 * simulation-service listens on its own port of the same host. Both can be pointed
 * elsewhere for development (the Vite dev server is neither service): `?relay=` and
 * `?sim=` in the page URL, or `VITE_SIM_URL` at build time.
 */
export interface Endpoints {
  /** The relay's http(s) origin (sessions, `/ws/subscribe`). */
  relayOrigin: string;
  /** The simulation-service's WebSocket URL (`/ws`). */
  simulationWsUrl: string;
}

export interface PageLocation {
  protocol: string;
  hostname: string;
  origin: string;
  search: string;
}

/** Port of the simulation-service next to a relay on the default layout. */
export const DEFAULT_SIMULATION_PORT = 8081;

export class EndpointError extends Error {
  constructor(parameter: string, value: string, expected: string) {
    super(`${parameter}=${JSON.stringify(value)} is not usable: expected ${expected}`);
    this.name = "EndpointError";
  }
}

function httpOrigin(value: string, parameter: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new EndpointError(parameter, value, "an absolute http(s) URL such as http://127.0.0.1:8080");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new EndpointError(parameter, value, "an http: or https: URL");
  }
  return url.origin;
}

function webSocketUrl(value: string, parameter: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new EndpointError(parameter, value, "an absolute ws(s) URL such as ws://127.0.0.1:8081/ws");
  }
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new EndpointError(parameter, value, "a ws:, wss:, http: or https: URL");
  }
  // A bare origin means the service's usual path.
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/ws";
  return url.toString();
}

/** Resolves the endpoints from the page location and the build-time environment. */
export function resolveEndpoints(location: PageLocation, buildSimUrl?: string): Endpoints {
  const params = new URLSearchParams(location.search);
  const relayParam = params.get("relay");
  const simParam = params.get("sim");
  const relayOrigin = relayParam ? httpOrigin(relayParam, "relay") : location.origin;
  let simulationWsUrl: string;
  if (simParam) simulationWsUrl = webSocketUrl(simParam, "sim");
  else if (buildSimUrl) simulationWsUrl = webSocketUrl(buildSimUrl, "VITE_SIM_URL");
  else {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const host = location.hostname.includes(":") && !location.hostname.startsWith("[") ? `[${location.hostname}]` : location.hostname;
    simulationWsUrl = `${scheme}//${host}:${DEFAULT_SIMULATION_PORT}/ws`;
  }
  return { relayOrigin, simulationWsUrl };
}
