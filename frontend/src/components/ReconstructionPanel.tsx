/**
 * The third panel: what the decoder made of the activity. In recorded mode the true movie
 * frame stands beside it, with this frame's similarity and the running mean.
 */
import { formatScore } from "../lib/format";
import type { ProjectiveField } from "../protocol";
import type { Mode, Reconstruction } from "../session";

export interface ReconstructionPanelProps {
  mode: Mode;
  reconstruction: Reconstruction | null;
  pending: boolean;
  streaming: boolean;
  similarity: { mean: number | null; count: number };
  /** Imagine mode: the projective field of the electrode (or wide-field channel) under the pointer. */
  field?: ProjectiveField | null;
  /** What the field's channel is called ("Electrode 12" by default; the wide field names channel and array). */
  fieldName?: string | null;
  /** Side of the crop the field's centres are given in. */
  fieldSize?: number | null;
  /** The frame's aspect ("4 / 3") when the model's square image stands for a whole frame (the wide field). */
  frameAspect?: string | null;
}

/**
 * A channel's projective field, with its receptive-field centre (cross) and its own centre
 * (ring). `aspect` ("4 / 3") stretches the square field back to the frame it stands for
 * (the wide field), as the reconstruction beside it is; the marks stretch with it.
 */
export function FieldInset({ field, size, name = null, aspect = null }: { field: ProjectiveField; size: number; name?: string | null; aspect?: string | null }) {
  const mark = (p: [number, number] | null) => (p === null ? null : { x: (100 * p[0]) / size, y: (100 * p[1]) / size });
  const rf = mark(field.rfCenter);
  const pf = mark(field.pfCenter);
  const who = name ?? `Electrode ${field.electrode}`;
  return (
    <figure className="field-inset" data-testid="projective-field" data-electrode={field.electrode} data-channel={field.index}>
      <div className="field-stage" style={aspect !== null ? { width: "auto", aspectRatio: aspect } : undefined}>
        <img src={field.image} alt={`What ${who.charAt(0).toLowerCase()}${who.slice(1)} adds to the reconstruction`} />
        <svg viewBox="0 0 100 100" preserveAspectRatio="none" aria-hidden="true">
          {rf !== null && <path className="rf-mark" d={`M${rf.x - 6} ${rf.y}h12M${rf.x} ${rf.y - 6}v12`} />}
          {pf !== null && <circle className="pf-mark" cx={pf.x} cy={pf.y} r={4} />}
        </svg>
      </div>
      <figcaption>
        {who}: what its activity adds (white brighter, black darker){rf !== null ? "; red +: its receptive field" : ""}; blue ring: the field's centre
      </figcaption>
    </figure>
  );
}

export function ReconstructionPanel({
  mode,
  reconstruction,
  pending,
  streaming,
  similarity,
  field = null,
  fieldName = null,
  fieldSize = null,
  frameAspect = null,
}: ReconstructionPanelProps) {
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
          <img
            className={frameAspect !== null ? "recon-image frame-aspect" : "recon-image"}
            style={frameAspect !== null ? { aspectRatio: frameAspect } : undefined}
            src={image}
            alt="Reconstruction from the V1 activity"
            data-testid="reconstruction"
            data-frame-id={reconstruction?.frameId}
          />
        ) : (
          !pending && (
            <p className="placeholder">
              {mode === "live"
                ? "Start the live stream to see reconstructions."
                : mode === "dream"
                  ? "Start the dream to see what the activity looks like."
                  : "The reconstruction appears here."}
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
      {mode === "imagine" && field !== null && fieldSize !== null && <FieldInset field={field} size={fieldSize} name={fieldName} aspect={frameAspect} />}
      {!recorded && reconstruction?.frameId !== undefined && <p className="caption">Frame {reconstruction.frameId}</p>}
    </div>
  );
}
