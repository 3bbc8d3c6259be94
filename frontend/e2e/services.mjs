/**
 * Starting and stopping the two services for the end-to-end test.
 *
 * The real binaries are named by `RELAY_BIN` and `SIM_BIN` (with `V1_MODEL_DIR` and
 * `V1_DATA_DIR` for their model and data). Their command lines come from templates with
 * `{placeholders}`, overridable by `RELAY_ARGS` / `SIM_ARGS`, and every `--flag` of a
 * template is checked against the binary's `--help` first, so a renamed flag fails with a
 * sentence saying which, instead of as a service that never comes up.
 *
 * `E2E_SERVICES=fake` runs dev/fake-services.mjs in-process instead: protocol-faithful
 * stand-ins, for checking the page and this test without trained models.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import net from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** relay-service's flags (see `relay-service --help`); the secret goes by V1_SHARED_SECRET. */
export const DEFAULT_RELAY_ARGS = "--bind 127.0.0.1:{relay_port} --static-dir {static_dir} --model {model_dir}";
/** simulation-service's flags, named like the relay's; override with SIM_ARGS if they differ. */
export const DEFAULT_SIM_ARGS = "--bind 127.0.0.1:{sim_port} --relay ws://127.0.0.1:{relay_port}/ws/ingest --model {model_dir} --data {data_dir}";

/** A free TCP port on the loopback interface (asked of the OS, then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function fill(template, values) {
  return template
    .trim()
    .split(/\s+/)
    .map((word) =>
      word.replace(/\{(\w+)\}/g, (_, key) => {
        if (values[key] === undefined || values[key] === "") {
          throw new Error(`the argument template uses {${key}}, which is not set (${key === "model_dir" ? "V1_MODEL_DIR" : key === "data_dir" ? "V1_DATA_DIR" : key})`);
        }
        return String(values[key]);
      }),
    );
}

/** Fails with a clear sentence when `--help` of `bin` does not list a flag of `args`. */
function checkFlags(bin, args, envName) {
  const help = spawnSync(bin, ["--help"], { encoding: "utf8", timeout: 20_000 });
  if (help.error) throw new Error(`cannot run ${bin} --help: ${help.error.message}`);
  const text = `${help.stdout}\n${help.stderr}`;
  const missing = args.filter((a) => a.startsWith("--")).map((a) => a.split("=")[0]).filter((flag) => !text.includes(flag));
  if (missing.length > 0) {
    throw new Error(`${path.basename(bin)} --help does not list ${missing.join(", ")}; set ${envName} to a matching template. Its help says:\n${text}`);
  }
}

/** Polls `url` until it answers 2xx, or fails with what the process printed. */
async function waitHealthy(url, proc, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (proc && proc.exitCode !== null) throw new Error(`${proc.name} exited with ${proc.exitCode} before ${url} answered:\n${proc.output()}`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err.cause?.code ?? err.message;
    }
    await sleep(200);
  }
  throw new Error(`${url} did not become healthy within ${timeoutMs / 1000} s (${last})${proc ? `:\n${proc.output()}` : ""}`);
}

function startProcess(name, bin, args, env) {
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const lines = [];
  const keep = (chunk) => {
    lines.push(...String(chunk).split("\n").filter(Boolean));
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  child.name = name;
  child.output = () => lines.slice(-40).join("\n");
  return child;
}

async function stopProcess(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts relay and simulation; resolves to handles with the URLs and a way to stop and
 * restart the relay (on the same port) for the outage check.
 */
export async function startServices({ staticDir }) {
  if (process.env.E2E_SERVICES === "fake") {
    const { startFakeServices } = await import("../dev/fake-services.mjs");
    const fake = await startFakeServices({ staticDir });
    return {
      kind: "fake",
      relayUrl: fake.relayUrl,
      simUrl: fake.simUrl,
      simHttp: fake.simUrl.replace(/^ws/, "http").replace(/\/ws$/, ""),
      stopRelay: () => fake.stopRelay(),
      startRelay: () => fake.startRelay(),
      logs: () => "(fake services)",
      close: () => fake.close(),
    };
  }

  const relayBin = process.env.RELAY_BIN;
  const simBin = process.env.SIM_BIN;
  if (!relayBin || !simBin) {
    throw new Error(
      "set RELAY_BIN and SIM_BIN to the relay-service and simulation-service binaries (and V1_MODEL_DIR, V1_DATA_DIR), " +
        "or E2E_SERVICES=fake to run against the protocol stand-ins in dev/",
    );
  }
  const relayPort = await freePort();
  const simPort = await freePort();
  const values = {
    relay_port: relayPort,
    sim_port: simPort,
    static_dir: staticDir,
    model_dir: process.env.V1_MODEL_DIR,
    data_dir: process.env.V1_DATA_DIR,
  };
  const relayArgs = fill(process.env.RELAY_ARGS ?? DEFAULT_RELAY_ARGS, values);
  const simArgs = fill(process.env.SIM_ARGS ?? DEFAULT_SIM_ARGS, values);
  checkFlags(relayBin, relayArgs, "RELAY_ARGS");
  checkFlags(simBin, simArgs, "SIM_ARGS");
  const env = { V1_SHARED_SECRET: process.env.V1_SHARED_SECRET ?? randomBytes(32).toString("hex"), RUST_LOG: process.env.RUST_LOG ?? "info" };
  const relayUrl = `http://127.0.0.1:${relayPort}`;
  const simHttp = `http://127.0.0.1:${simPort}`;
  const startupMs = Number(process.env.E2E_STARTUP_MS ?? 60_000);

  let relay = startProcess("relay-service", relayBin, relayArgs, env);
  await waitHealthy(`${relayUrl}/healthz`, relay, startupMs);
  const sim = startProcess("simulation-service", simBin, simArgs, env);
  await waitHealthy(`${simHttp}/healthz`, sim, startupMs);

  return {
    kind: "real",
    relayUrl,
    simUrl: `ws://127.0.0.1:${simPort}/ws`,
    simHttp,
    stopRelay: () => stopProcess(relay),
    async startRelay() {
      relay = startProcess("relay-service", relayBin, relayArgs, env);
      await waitHealthy(`${relayUrl}/healthz`, relay, startupMs);
    },
    logs: () => `--- relay-service ---\n${relay.output()}\n--- simulation-service ---\n${sim.output()}`,
    async close() {
      await stopProcess(sim);
      await stopProcess(relay);
    },
  };
}
