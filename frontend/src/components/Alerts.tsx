/**
 * Everything that is wrong, in the page: services that are down (for as long as they are)
 * and errors (until dismissed). Announced to screen readers as alerts.
 */
import type { ConnectionStatus } from "../lib/connection";
import { formatRetry } from "../lib/format";
import type { PageError } from "../session";

export interface AlertsProps {
  relay: ConnectionStatus;
  simulation: ConnectionStatus;
  errors: PageError[];
  now: number;
  onReconnect: (service: "relay" | "simulation") => void;
  onDismiss: (id: number) => void;
}

function DownAlert({ service, status, now, onReconnect }: { service: "relay" | "simulation"; status: ConnectionStatus; now: number; onReconnect: () => void }) {
  const title = service === "relay" ? "Relay is down" : "Simulation service is down";
  const consequence =
    service === "relay"
      ? "Reconstructions cannot arrive until it is back."
      : "No stimulus can be sent and no activity arrives.";
  return (
    <div className="alert alert-down" role="alert" data-testid={`${service}-down`}>
      <div className="alert-text">
        <strong>{title}.</strong> {consequence} <span className="alert-detail">{status.detail}</span>{" "}
        <span className="alert-retry">{formatRetry(status.retryAt, now)}</span>
      </div>
      <button type="button" className="button-secondary" onClick={onReconnect}>
        Reconnect now
      </button>
    </div>
  );
}

export function Alerts({ relay, simulation, errors, now, onReconnect, onDismiss }: AlertsProps) {
  const relayDown = relay.state === "retrying";
  const simDown = simulation.state === "retrying";
  if (!relayDown && !simDown && errors.length === 0) return null;
  return (
    <section className="alerts" aria-label="Problems">
      {relayDown && <DownAlert service="relay" status={relay} now={now} onReconnect={() => onReconnect("relay")} />}
      {simDown && <DownAlert service="simulation" status={simulation} now={now} onReconnect={() => onReconnect("simulation")} />}
      {errors.map((e) => (
        <div key={e.id} className={`alert alert-${e.service}`} role="alert" data-testid="page-error">
          <div className="alert-text">
            <strong>{e.title}.</strong> {e.message}
            {e.count > 1 && <span className="alert-count"> ({e.count}×)</span>}
          </div>
          <button type="button" className="alert-close" onClick={() => onDismiss(e.id)} aria-label={`Dismiss: ${e.title}`}>
            ×
          </button>
        </div>
      ))}
    </section>
  );
}
