/** Number formatting shared by the panels, so every figure reads the same way. */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "–";
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 10_000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

export function formatFps(fps: number): string {
  return Number.isFinite(fps) ? fps.toFixed(fps < 10 ? 1 : 0) : "–";
}

export function formatScore(r: number | null | undefined): string {
  if (r === null || r === undefined || !Number.isFinite(r)) return "–";
  return r.toFixed(2);
}

/** "in 3 s" for a retry time, from the current time. */
export function formatRetry(retryAt: number | undefined, now: number): string {
  if (retryAt === undefined) return "";
  const s = Math.max(0, Math.ceil((retryAt - now) / 1000));
  return s <= 0 ? "retrying now" : `retrying in ${s} s`;
}
