/**
 * The third panel: what the decoder made of the activity. In recorded mode the true movie
 * frame stands beside it, with this frame's similarity and the running mean.
 */
import { formatScore } from "../lib/format";
import type { Mode, Reconstruction } from "../session";

export interface ReconstructionPanelProps {
  mode: Mode;
  reconstruction: Reconstruction | null;
  pending: boolean;
  streaming: boolean;
  similarity: { mean: number | null; count: number };
}

export function ReconstructionPanel({ mode, reconstruction, pending, streaming, similarity }: ReconstructionPanelProps) {
  const image = reconstruction?.image ?? null;
  const recorded = mode === "recorded";
  return (
    <div className="recon-panel" aria-busy={pending}>
      <div className={recorded ? "stage stage-pair" : "stage"}>
        {recorded && (
          <figure className="pair-item">
            {reconstruction?.truth ? (
              <img src={reconstruction.truth} alt="The true movie frame" data-testid="true-frame" />
            ) : (
              <div className="pair-empty" />
            )}
            <figcaption>True frame</figcaption>
          </figure>
        )}
        {recorded ? (
          <figure className="pair-item">
            {image !== null ? <img src={image} alt="Reconstruction from the recorded response" data-testid="reconstruction" /> : <div className="pair-empty" />}
            <figcaption>Reconstruction</figcaption>
          </figure>
        ) : image !== null ? (
          <img className="recon-image" src={image} alt="Reconstruction from the V1 activity" data-testid="reconstruction" />
        ) : (
          !pending && (
            <p className="placeholder">
              {mode === "live" ? "Start the live stream to see reconstructions." : "The reconstruction appears here."}
            </p>
          )
        )}
        {pending && (
          <div className="spinner-wrap" role="status" aria-label="Waiting for the reconstruction">
            <span className="spinner" aria-hidden="true" />
          </div>
        )}
      </div>
      {recorded && (
        <dl className="score" aria-live="polite" data-testid="similarity">
          <div>
            <dt>This frame</dt>
            <dd>{formatScore(reconstruction?.similarity)}</dd>
          </div>
          <div>
            <dt>Running mean</dt>
            <dd>{formatScore(similarity.mean)}</dd>
          </div>
          <div>
            <dt>Frames scored</dt>
            <dd>{similarity.count}</dd>
          </div>
        </dl>
      )}
      {recorded && !streaming && similarity.count === 0 && (
        <p className="caption">Similarity: pixel correlation of the two images, drawn at the same size.</p>
      )}
      {!recorded && reconstruction?.frameId !== undefined && <p className="caption">Frame {reconstruction.frameId}</p>}
    </div>
  );
}
