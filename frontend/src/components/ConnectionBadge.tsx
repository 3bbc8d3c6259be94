/** One service's connection state in the header: a coloured dot, a word, and a retry button when down. */
import type { ConnectionStatus } from "../lib/connection";
import { formatRetry } from "../lib/format";

export interface ConnectionBadgeProps {
  name: string;
  status: ConnectionStatus;
  now: number;
  onReconnect: () => void;
}

const WORDS: Record<ConnectionStatus["state"], string> = {
  open: "connected",
  connecting: "connecting",
  retrying: "unreachable",
  stopped: "stopped",
};

export function ConnectionBadge({ name, status, now, onReconnect }: ConnectionBadgeProps) {
  const word = WORDS[status.state];
  const retry = status.state === "retrying" ? formatRetry(status.retryAt, now) : "";
  return (
    <div className={`badge badge-${status.state}`} role="status" aria-label={`${name}: ${word}${retry ? `, ${retry}` : ""}`} title={status.detail}>
      <span className="badge-dot" aria-hidden="true" />
      <span className="badge-name">{name}</span>
      <span className="badge-word">{word}</span>
      {status.state === "retrying" && (
        <button type="button" className="badge-retry" onClick={onReconnect} aria-label={`Reconnect to the ${name.toLowerCase()} now`}>
          Reconnect
        </button>
      )}
    </div>
  );
}
