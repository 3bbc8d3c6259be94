import { describe, expect, it } from "vitest";
import { EndpointError, resolveEndpoints } from "./config";

function at(url: string) {
  const u = new URL(url);
  return { protocol: u.protocol, hostname: u.hostname, origin: u.origin, search: u.search };
}

describe("resolveEndpoints", () => {
  it("uses the page's origin for the relay and port 8081 of the same host for the simulation", () => {
    expect(resolveEndpoints(at("http://127.0.0.1:8080/"))).toEqual({
      relayOrigin: "http://127.0.0.1:8080",
      simulationWsUrl: "ws://127.0.0.1:8081/ws",
    });
    expect(resolveEndpoints(at("https://v1.example.org/")).simulationWsUrl).toBe("wss://v1.example.org:8081/ws");
    expect(resolveEndpoints(at("http://[::1]:8080/")).simulationWsUrl).toBe("ws://[::1]:8081/ws");
  });

  it("takes ?relay= and ?sim= for development", () => {
    const e = resolveEndpoints(at("http://localhost:5173/?relay=http://127.0.0.1:9000/ignored&sim=ws://127.0.0.1:9001/ws"));
    expect(e).toEqual({ relayOrigin: "http://127.0.0.1:9000", simulationWsUrl: "ws://127.0.0.1:9001/ws" });
    expect(resolveEndpoints(at("http://localhost:5173/?sim=http://10.0.0.2:9001")).simulationWsUrl).toBe("ws://10.0.0.2:9001/ws");
  });

  it("prefers ?sim= over VITE_SIM_URL over the default", () => {
    expect(resolveEndpoints(at("http://h:8080/"), "ws://built.in:1234/ws").simulationWsUrl).toBe("ws://built.in:1234/ws");
    expect(resolveEndpoints(at("http://h:8080/?sim=ws://q:1/ws"), "ws://built.in:1234/ws").simulationWsUrl).toBe("ws://q:1/ws");
  });

  it("names the parameter that cannot be used", () => {
    expect(() => resolveEndpoints(at("http://h/?relay=nonsense"))).toThrow(EndpointError);
    expect(() => resolveEndpoints(at("http://h/?relay=nonsense"))).toThrow('relay="nonsense"');
    expect(() => resolveEndpoints(at("http://h/?relay=ftp://x"))).toThrow("http: or https:");
    expect(() => resolveEndpoints(at("http://h/?sim=file:///x"))).toThrow('sim="file:///x"');
  });
});
