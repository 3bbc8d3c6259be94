/** The figures under the panels: achieved rate, latency, and what happened to the frames. */
import type { FrameStats } from "../lib/frames";
import { formatFps, formatMs } from "../lib/format";
import type { Mode } from "../session";

export interface StatsBarProps {
  mode: Mode;
  stats: FrameStats;
  targetFps: number;
  streaming: boolean;
  serviceLatency: { simulation: number | null; relay: number | null };
}

function Stat({ label, value, hint, testId }: { label: string; value: string; hint?: string; testId?: string }) {
  return (
    <div className="stat" title={hint} data-testid={testId}>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}

export function StatsBar({ mode, stats, targetFps, streaming, serviceLatency }: StatsBarProps) {
  const rate = streaming ? `${formatFps(stats.fps)} / ${targetFps}` : formatFps(stats.fps);
  return (
    <dl className="stats" aria-label="Performance">
      <Stat label="Frame rate" value={`${rate} fps`} hint="Reconstructions that arrived in the last second" testId="stat-fps" />
      <Stat
        label="Latency p50"
        value={formatMs(stats.latencyP50)}
        hint={mode === "recorded" ? "From the simulation's send to the reconstruction's arrival, median of the last second" : "From sending a frame to its reconstruction arriving, median of the last second"}
        testId="stat-latency"
      />
      <Stat label="Model" value={formatMs(serviceLatency.simulation)} hint="Simulation service processing time of the latest frame" />
      <Stat label="Decoder" value={formatMs(serviceLatency.relay)} hint="Relay processing time of the latest frame" />
      {mode === "live" && <Stat label="In flight" value={String(stats.inFlight)} hint="Frames sent and not yet reconstructed (at most 2)" />}
      {mode === "live" && <Stat label="Dropped" value={String(stats.dropped + stats.lost)} hint="Frames skipped to keep latency low, or lost" />}
      <Stat label="Reconstructions" value={String(stats.received)} hint="Reconstructions that arrived since the stream started or the mode changed" testId="stat-received" />
    </dl>
  );
}
