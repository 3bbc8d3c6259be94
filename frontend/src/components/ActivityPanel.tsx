/**
 * The V1 activity view: the latest frame on the 10x10 electrode array (the pvc-1
 * population) or over the movie frame (the wide-field population, each channel at its
 * receptive field), and the last few seconds of every channel as a scrolling raster.
 */
import { type PointerEvent as ReactPointerEvent, useEffect, useRef, useState } from "react";
import { ARRAY_SIDE, type ActivityHistory, type ArrayLayout, type WideLayout, heatColour, heatCss } from "../activity";
import type { ActivityView } from "../session";

/**
 * What a person can do to the activity map in Imagine mode. A site is an array cell
 * (row * 10 + col) on the pvc-1 array, a marker index on the wide field.
 */
export interface ActivityEditing {
  /** Raise (`delta` > 0) or lower the channels at `site`. */
  onEdit: (site: number, delta: number) => void;
  /** The pointer is over `site` (null: over no site, or left the map). */
  onHover: (site: number | null) => void;
  /** Spikes (summed over the lags) one click or one site of a drag adds. */
  step: number;
  /** Lower instead of raise (Shift or the right button invert it). */
  lower: boolean;
}

/** The sign of an edit begun by a press: the brush, inverted by Shift or the right button. */
function pressSign(e: ReactPointerEvent, lower: boolean): number {
  const invert = e.shiftKey || e.button === 2;
  return lower !== invert ? -1 : 1;
}

/**
 * The pointer handlers of an editable map: a press raises (or lowers) the site `pick`
 * finds under the pointer, a drag paints every further site it passes, and `hover` hears
 * of the site under the pointer (null when it leaves the map). None when not editing.
 */
function usePaintHandlers<E extends Element>(
  editing: ActivityEditing | null,
  pick: (e: ReactPointerEvent<E>) => number | null,
  hover: (site: number | null) => void,
) {
  const dragging = useRef<{ sign: number; last: number | null } | null>(null);
  if (editing === null) return {};
  const apply = (site: number, sign: number) => editing.onEdit(site, sign * editing.step);
  return {
    onContextMenu: (e: { preventDefault: () => void }) => e.preventDefault(),
    onPointerDown: (e: ReactPointerEvent<E>) => {
      const site = pick(e);
      if (site === null) return;
      const sign = pressSign(e, editing.lower);
      dragging.current = { sign, last: site };
      apply(site, sign);
    },
    onPointerMove: (e: ReactPointerEvent<E>) => {
      const site = pick(e);
      hover(site);
      const drag = dragging.current;
      if (drag === null || site === null || site === drag.last || e.buttons === 0) return;
      drag.last = site;
      apply(site, drag.sign);
    },
    onPointerUp: () => {
      dragging.current = null;
    },
    onPointerLeave: () => {
      dragging.current = null;
      hover(null);
    },
  };
}

export interface ArrayHeatmapProps {
  grid: Float32Array | null;
  layout: ArrayLayout | null;
  scale: number;
  editing?: ActivityEditing | null;
}

/** The array cell under a pointer event, if it is on an electrode. */
function cellOf(target: EventTarget | null): number | null {
  if (!(target instanceof Element)) return null;
  const cell = target.getAttribute("data-cell");
  return cell !== null && target.getAttribute("data-electrode") !== null ? Number(cell) : null;
}

/** The array as 100 cells; recorded positions coloured by activity, the rest greyed. */
export function ArrayHeatmap({ grid, layout, scale, editing = null }: ArrayHeatmapProps) {
  const paint = usePaintHandlers<SVGSVGElement>(editing, (e) => cellOf(e.target), (cell) => editing?.onHover(cell));
  const cells = [];
  let recorded = 0;
  let peak = -Infinity;
  let peakElectrode = 0;
  for (let row = 0; row < ARRAY_SIDE; row++) {
    for (let col = 0; col < ARRAY_SIDE; col++) {
      const cell = row * ARRAY_SIDE + col;
      const present = layout !== null && (layout.channelsPerCell[cell] ?? 0) > 0;
      const value = grid?.[cell];
      const electrode = layout?.electrodeOfCell[cell] ?? 0;
      let fill = "var(--cell-empty)";
      let label = `row ${row + 1}, column ${col + 1}: no electrode`;
      if (present) {
        recorded += 1;
        if (value !== undefined && Number.isFinite(value)) {
          fill = heatCss(value / scale);
          label = `electrode ${electrode}: ${value.toFixed(2)} spikes`;
          if (value > peak) {
            peak = value;
            peakElectrode = electrode;
          }
        } else {
          fill = "var(--cell-waiting)";
          label = `electrode ${electrode}: no data yet`;
        }
      }
      // Positions without an electrode are drawn as small dots, so that they cannot be
      // mistaken for a silent electrode (which is a full, dark cell).
      const inset = present ? 0.06 : 0.36;
      cells.push(
        <rect
          key={cell}
          x={col + inset}
          y={row + inset}
          width={1 - 2 * inset}
          height={1 - 2 * inset}
          rx={present ? 0.12 : 0.14}
          fill={fill}
          data-cell={cell}
          data-electrode={present ? electrode : undefined}
          className={present ? "cell" : "cell cell-empty"}
        >
          <title>{label}</title>
        </rect>,
      );
    }
  }
  const summary =
    layout === null
      ? "Electrode array: waiting for the channel map"
      : peak > -Infinity
        ? `Electrode array, ${recorded} recorded positions; strongest at electrode ${peakElectrode}, ${peak.toFixed(2)} spikes`
        : `Electrode array, ${recorded} recorded positions; no activity yet`;
  if (editing === null) {
    return (
      <svg className="heatmap" viewBox={`0 0 ${ARRAY_SIDE} ${ARRAY_SIDE}`} role="img" aria-label={summary} data-testid="activity-heatmap" data-has-activity={grid !== null}>
        {cells}
      </svg>
    );
  }
  // Imagine mode: press on an electrode to raise (or lower) it, drag to paint more of them.
  return (
    <svg
      className="heatmap heatmap-editable"
      viewBox={`0 0 ${ARRAY_SIDE} ${ARRAY_SIDE}`}
      role="img"
      aria-label={`${summary}. Click or drag on electrodes to ${editing.lower ? "lower" : "raise"} their activity; Shift or the right button does the opposite.`}
      data-testid="activity-heatmap"
      data-has-activity={grid !== null}
      data-editable="true"
      {...paint}
    >
      {cells}
    </svg>
  );
}

export interface WideMapProps {
  /** Per-marker values of the latest frame, null before one arrived. */
  values: Float32Array | null;
  layout: WideLayout;
  scale: number;
  /** Imagine mode: the markers are editable. */
  editing?: ActivityEditing | null;
}

/** Radius of a single channel's dot, in frame pixels. */
function dotRadius(layout: WideLayout): number {
  return Math.max(layout.frame.width, layout.frame.height) / 90;
}

/**
 * The marker nearest to a frame position (x, y in frame pixels), if one lies within
 * `reach`. Dots are small and crowd where receptive fields overlap, so the pointer picks the
 * nearest centre rather than whichever dot happens to be drawn on top.
 */
export function nearestMarker(layout: WideLayout, x: number, y: number, reach = 3 * dotRadius(layout)): number | null {
  let best: number | null = null;
  let bestDist = reach * reach;
  layout.markers.forEach((m, i) => {
    const d = (m.x * layout.frame.width - x) ** 2 + (m.y * layout.frame.height - y) ** 2;
    if (d <= bestDist) {
      best = i;
      bestDist = d;
    }
  });
  return best;
}

/**
 * The marker under a pointer event: the nearest centre to where the pointer is on the
 * frame (the svg scales the frame to fit, centred: `preserveAspectRatio` "xMidYMid meet");
 * where the svg has no size on screen (no layout, as in jsdom), the marker the event hit.
 */
function markerAt(e: ReactPointerEvent<SVGSVGElement>, layout: WideLayout): number | null {
  const box = e.currentTarget.getBoundingClientRect();
  const { width, height } = layout.frame;
  if (box.width > 0 && box.height > 0) {
    const k = Math.min(box.width / width, box.height / height);
    const x = (e.clientX - box.left - (box.width - width * k) / 2) / k;
    const y = (e.clientY - box.top - (box.height - height * k) / 2) / k;
    return nearestMarker(layout, x, y);
  }
  const hit = e.target instanceof Element ? e.target.getAttribute("data-marker") : null;
  return hit !== null ? Number(hit) : null;
}

/** What a marker stands for, in words. */
function markerWhat(m: WideLayout["markers"][number]): string {
  return m.grouped ? `${m.channels.length} channels of array ${m.file} without a receptive-field centre (mean)` : `channel ${(m.channels[0] ?? 0) + 1} (array ${m.file})`;
}

/**
 * The wide-field population over its 4:3 frame: a dot per channel at its receptive-field
 * centre; a ring stands for the channels of one array that have no centre (their mean).
 * In Imagine mode a press raises (or lowers) the marker nearest the pointer, a drag paints
 * every marker it passes, and the marker under the pointer is outlined.
 */
export function WideMap({ values, layout, scale, editing = null }: WideMapProps) {
  const [hovered, setHovered] = useState<number | null>(null);
  const hover = (marker: number | null) => {
    if (marker === hovered) return;
    setHovered(marker);
    editing?.onHover(marker);
  };
  const paint = usePaintHandlers<SVGSVGElement>(editing, (e) => markerAt(e, layout), hover);
  const { width, height } = layout.frame;
  const r = dotRadius(layout);
  const peak = values === null ? -Infinity : values.reduce((best, v) => (Number.isFinite(v) && v > best ? v : best), -Infinity);
  const markers = layout.markers.map((m, i) => {
    const value = values?.[i];
    const known = value !== undefined && Number.isFinite(value);
    const fill = known ? heatCss(value / scale) : "var(--cell-waiting)";
    const what = markerWhat(m);
    return (
      <circle
        key={i}
        cx={m.x * width}
        cy={m.y * height}
        r={m.grouped ? r * 1.8 : r}
        fill={m.grouped ? "none" : fill}
        stroke={m.grouped ? fill : "none"}
        strokeWidth={m.grouped ? r * 0.8 : 0}
        className={m.grouped ? "wide-group" : "wide-channel"}
        data-channels={m.channels.length}
        data-marker={i}
        data-channel={m.grouped ? undefined : m.channels[0]}
      >
        <title>{known ? `${what}: ${value.toFixed(2)} spikes` : `${what}: no data yet`}</title>
      </circle>
    );
  });
  const summary =
    peak > -Infinity
      ? `Wide-field population, ${layout.channels} channels at their receptive fields over the frame; strongest ${peak.toFixed(2)} spikes`
      : `Wide-field population, ${layout.channels} channels at their receptive fields over the frame; no activity yet`;
  if (editing === null) {
    return (
      <svg className="heatmap wide-map" viewBox={`0 0 ${width} ${height}`} role="img" aria-label={summary} data-testid="activity-wide" data-has-activity={values !== null}>
        <rect x={0} y={0} width={width} height={height} fill="var(--cell-empty)" />
        {markers}
      </svg>
    );
  }
  const outlined = hovered !== null ? layout.markers[hovered] : undefined;
  return (
    <svg
      className="heatmap wide-map heatmap-editable"
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={`${summary}. Click or drag on channels to ${editing.lower ? "lower" : "raise"} their activity; Shift or the right button does the opposite.`}
      data-testid="activity-wide"
      data-has-activity={values !== null}
      data-editable="true"
      data-hovered={hovered ?? undefined}
      {...paint}
    >
      <rect x={0} y={0} width={width} height={height} fill="var(--cell-empty)" />
      {markers}
      {outlined !== undefined && (
        <circle className="wide-hover" cx={outlined.x * width} cy={outlined.y * height} r={(outlined.grouped ? r * 1.8 : r) + r * 0.9} strokeWidth={r * 0.4} aria-hidden="true" />
      )}
    </svg>
  );
}

export interface HistoryRasterProps {
  history: ActivityHistory;
  layout: ArrayLayout | WideLayout | null;
  scale: number;
  /** Changes whenever the history gained a frame. */
  version: number;
}

/** Time (left to right, newest at the right edge) by channel (ordered by array position). */
export function HistoryRaster({ history, layout, scale, version }: HistoryRasterProps) {
  const canvasRef = useRef<HTMLCanvasElement | null>(null);
  useEffect(() => {
    const canvas = canvasRef.current;
    if (canvas === null) return;
    const frames = history.toArray();
    const channels = layout?.channels ?? frames[frames.length - 1]?.length ?? 0;
    if (channels === 0) return;
    const width = history.capacity;
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== channels) canvas.height = channels;
    const ctx = canvas.getContext("2d");
    if (ctx === null) return;
    const image = ctx.createImageData(width, channels);
    const data = image.data;
    // Background: the colour of zero, so an empty history reads as silence.
    const [r0, g0, b0] = heatColour(0);
    for (let i = 0; i < data.length; i += 4) {
      data[i] = r0;
      data[i + 1] = g0;
      data[i + 2] = b0;
      data[i + 3] = 255;
    }
    const offset = width - frames.length;
    frames.forEach((totals, t) => {
      for (let row = 0; row < channels; row++) {
        const c = layout?.displayOrder[row] ?? row;
        const [r, g, b] = heatColour((totals[c] ?? 0) / scale);
        const i = (row * width + offset + t) * 4;
        data[i] = r;
        data[i + 1] = g;
        data[i + 2] = b;
      }
    });
    ctx.putImageData(image, 0, 0);
  }, [history, layout, scale, version]);
  const seconds = (history.capacity / 30).toFixed(0);
  return (
    <canvas
      ref={canvasRef}
      className="raster"
      role="img"
      aria-label={`Activity of every channel over the last ${seconds} seconds, newest on the right`}
      data-testid="activity-history"
      data-frames={history.length}
    />
  );
}

export interface ActivityPanelProps {
  activity: ActivityView | null;
  history: ActivityHistory;
  layout: ArrayLayout | null;
  /** The wide-field population's layout, when that population is shown (instead of the array). */
  wide?: WideLayout | null;
  lags: number | null;
  problem: string | null;
  /** Imagine mode: the map shown (the array or the wide field) is editable. */
  editing?: ActivityEditing | null;
}

export function ActivityPanel({ activity, history, layout, wide = null, lags, problem, editing = null }: ActivityPanelProps) {
  const scale = activity?.scale ?? 1;
  return (
    <div className="activity">
      <div className="heatmap-wrap">
        {wide !== null ? (
          <WideMap values={activity?.markers ?? null} layout={wide} scale={scale} editing={editing} />
        ) : (
          <ArrayHeatmap grid={activity?.grid ?? null} layout={layout} scale={scale} editing={editing} />
        )}
        <div className="legend" aria-hidden="true">
          <span className="legend-bar" />
          <span className="legend-labels">
            <span>0</span>
            <span>{scale.toFixed(scale < 10 ? 1 : 0)}</span>
          </span>
        </div>
      </div>
      <p className="caption">
        {wide !== null
          ? editing !== null
            ? `Click or drag on channels to ${editing.lower ? "lower" : "raise"} them by ${editing.step} spikes (Shift: the opposite; a ring: every channel of its array without a known centre); hover to see what each one means.`
            : `Spikes per channel at its receptive field on the frame${lags ? `, summed over ${lags} bins of 33 ms` : ""}; rings: an array's channels without a known centre.`
          : layout === null
          ? "The channel map comes from the simulation service."
          : editing !== null
            ? `Click or drag on electrodes to ${editing.lower ? "lower" : "raise"} them by ${editing.step} spikes (Shift: the opposite); hover to see what each one means.`
            : `Spikes per electrode after each frame${lags ? `, summed over ${lags} bins of 33 ms` : ""}; dots: no electrode.`}
      </p>
      <div className="raster-wrap">
        <span className="raster-axis">channels</span>
        <HistoryRaster history={history} layout={wide ?? layout} scale={scale} version={activity?.version ?? 0} />
      </div>
      <p className="caption">Last 3 s, newest on the right</p>
      {problem !== null && (
        <p className="panel-problem" role="alert">
          {problem}
        </p>
      )}
    </div>
  );
}
