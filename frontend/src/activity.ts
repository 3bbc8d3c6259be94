/**
 * From a `response` payload to what the activity panel draws.
 *
 * Responsibility: the arithmetic of the V1 activity view, kept free of the DOM so it can
 * be tested exactly. A payload is lag-major (`payload[l * channels + c]`); the panel shows
 * each channel's total over the lags (the spikes one frame evoked), averaged per position
 * of the 10x10 electrode array because several recording files can share an electrode id;
 * plus a short history (time x channel raster) ordered by array position so that
 * neighbouring electrodes sit next to each other.
 */
import type { SimulationInfo, WideInfo } from "./protocol";

/** Electrodes per side of the Utah-style array. */
export const ARRAY_SIDE = 10;
export const ARRAY_CELLS = ARRAY_SIDE * ARRAY_SIDE;

/** Where each channel sits on the array and what each array cell holds. */
export interface ArrayLayout {
  channels: number;
  lags: number;
  /** Array cell (row * 10 + col) of each channel. */
  cellOfChannel: Uint8Array;
  /** Number of channels recorded at each cell; 0 marks an empty position. */
  channelsPerCell: Uint16Array;
  /** Electrode id at each cell (0 when empty), for labels. */
  electrodeOfCell: Uint16Array;
  /** Channel indices sorted by array cell, for the history raster. */
  displayOrder: Uint16Array;
}

export function buildLayout(info: SimulationInfo): ArrayLayout {
  const channels = info.channels.length;
  const cellOfChannel = new Uint8Array(channels);
  const channelsPerCell = new Uint16Array(ARRAY_CELLS);
  const electrodeOfCell = new Uint16Array(ARRAY_CELLS);
  info.channels.forEach((ch, c) => {
    const cell = ch.row * ARRAY_SIDE + ch.col;
    cellOfChannel[c] = cell;
    channelsPerCell[cell] = (channelsPerCell[cell] ?? 0) + 1;
    electrodeOfCell[cell] = ch.electrode;
  });
  const order = Array.from({ length: channels }, (_, c) => c);
  order.sort((a, b) => (cellOfChannel[a] ?? 0) - (cellOfChannel[b] ?? 0) || a - b);
  return { channels, lags: info.lags, cellOfChannel, channelsPerCell, electrodeOfCell, displayOrder: Uint16Array.from(order) };
}

/**
 * The wide-field population drawn over the movie frame: one marker per channel at its
 * receptive-field centre. The model sees the whole 4:3 frame squeezed into a square
 * image, and `rf_centre` is in that image's pixels, so a centre's fraction of the image
 * side is its fraction of the frame's width (x) and height (y).
 *
 * Channels whose model gives no centre are not dropped: the channels of one array
 * (one recording `file`) without a centre are grouped into a single marker at the mean
 * centre of that array's placed channels, drawn apart (a ring) and showing their mean.
 * An array with no placed channel at all has its group at the middle of the frame.
 */
export interface WideMarker {
  /** Position as a fraction of the frame, (0,0) top left, (1,1) bottom right. */
  x: number;
  y: number;
  /** The channels the marker shows (one, or an array's channels without a centre). */
  channels: number[];
  /** A group of channels without a centre of their own. */
  grouped: boolean;
  /** The array (recording file) of the channels. */
  file: string;
}

export interface WideLayout {
  channels: number;
  lags: number;
  /** The frame's aspect, width and height in pixels (the model's crop window). */
  frame: { width: number; height: number };
  markers: WideMarker[];
  /** Channel indices top to bottom, then left to right, for the history raster. */
  displayOrder: Uint16Array;
  /** The marker of each channel. */
  markerOfChannel: Uint32Array;
}

export function buildWideLayout(wide: WideInfo): WideLayout {
  const side = wide.imageSize > 0 ? wide.imageSize : 1;
  const clamp = (v: number) => Math.min(1, Math.max(0, v / side));
  const markers: WideMarker[] = [];
  const unplaced = new Map<string, number[]>();
  const placed = new Map<string, { x: number; y: number; n: number }>();
  wide.channels.forEach((ch, c) => {
    if (ch.rfCentre !== undefined) {
      const [x, y] = [clamp(ch.rfCentre[0]), clamp(ch.rfCentre[1])];
      markers.push({ x, y, channels: [c], grouped: false, file: ch.file });
      const sum = placed.get(ch.file) ?? { x: 0, y: 0, n: 0 };
      placed.set(ch.file, { x: sum.x + x, y: sum.y + y, n: sum.n + 1 });
    } else {
      unplaced.set(ch.file, [...(unplaced.get(ch.file) ?? []), c]);
    }
  });
  for (const [file, channels] of unplaced) {
    const sum = placed.get(file);
    const [x, y] = sum !== undefined ? [sum.x / sum.n, sum.y / sum.n] : [0.5, 0.5];
    markers.push({ x, y, channels, grouped: true, file });
  }
  const markerOfChannel = new Uint32Array(wide.channels.length);
  markers.forEach((m, i) => m.channels.forEach((c) => (markerOfChannel[c] = i)));
  const at = (c: number) => markers[markerOfChannel[c] ?? 0] ?? { x: 0, y: 0 };
  const order = Array.from({ length: wide.channels.length }, (_, c) => c);
  order.sort((a, b) => at(a).y - at(b).y || at(a).x - at(b).x || a - b);
  return {
    channels: wide.channels.length,
    lags: wide.lags,
    frame: { width: wide.cropWindow.width, height: wide.cropWindow.height },
    markers,
    displayOrder: Uint16Array.from(order),
    markerOfChannel,
  };
}

/** The value of each marker: its channel's total, or the mean of its group's. */
export function wideMap(totals: ArrayLike<number>, layout: WideLayout): Float32Array {
  return Float32Array.from(layout.markers, (m) => m.channels.reduce((s, c) => s + (totals[c] ?? 0), 0) / Math.max(1, m.channels.length));
}

/** Sum over lags per channel of a lag-major payload. */
export function channelTotals(payload: ArrayLike<number>, lags: number, channels: number): Float32Array {
  const totals = new Float32Array(channels);
  for (let l = 0; l < lags; l++) {
    const base = l * channels;
    for (let c = 0; c < channels; c++) totals[c] = (totals[c] ?? 0) + (payload[base + c] ?? 0);
  }
  return totals;
}

/** The per-cell mean of channel totals; NaN where no electrode was recorded. */
export function arrayMap(totals: ArrayLike<number>, layout: ArrayLayout): Float32Array {
  const sums = new Float32Array(ARRAY_CELLS);
  for (let c = 0; c < layout.channels; c++) {
    const cell = layout.cellOfChannel[c] ?? 0;
    sums[cell] = (sums[cell] ?? 0) + (totals[c] ?? 0);
  }
  const out = new Float32Array(ARRAY_CELLS);
  for (let cell = 0; cell < ARRAY_CELLS; cell++) {
    const n = layout.channelsPerCell[cell] ?? 0;
    out[cell] = n === 0 ? Number.NaN : (sums[cell] ?? 0) / n;
  }
  return out;
}

/** Why a payload could not be drawn; shown in the panel. */
export class ActivityShapeError extends Error {
  constructor(got: number, lags: number, channels: number) {
    super(`a response has ${got} values; the channel map from /api/info expects ${lags * channels} (${lags} lags x ${channels} channels)`);
    this.name = "ActivityShapeError";
  }
}

/** One frame's activity, ready to draw. */
export interface ActivityFrame {
  /** Total per channel (over lags), in channel order. */
  totals: Float32Array;
  /** Per-cell mean (NaN = empty position), when the channel map is known. */
  grid: Float32Array | null;
  /** Per-marker value, for the wide-field population. */
  markers?: Float32Array;
}

/**
 * Reads one response against the layout. Without a layout (no `/api/info` yet) the
 * `shape` of the message still gives the totals for the history; without either, the
 * whole payload is one lag.
 */
export function decodeActivity(
  payload: ArrayLike<number>,
  shape: [number, number] | undefined,
  layout: ArrayLayout | WideLayout | null,
): ActivityFrame {
  if (layout !== null && "markers" in layout) {
    if (payload.length !== layout.lags * layout.channels) {
      throw new ActivityShapeError(payload.length, layout.lags, layout.channels);
    }
    const totals = channelTotals(payload, layout.lags, layout.channels);
    return { totals, grid: null, markers: wideMap(totals, layout) };
  }
  if (layout !== null) {
    if (payload.length !== layout.lags * layout.channels) {
      throw new ActivityShapeError(payload.length, layout.lags, layout.channels);
    }
    const totals = channelTotals(payload, layout.lags, layout.channels);
    return { totals, grid: arrayMap(totals, layout) };
  }
  const [lags, channels] = shape ?? [1, payload.length];
  return { totals: channelTotals(payload, lags, channels), grid: null };
}

/** A fixed-size ring of recent frames for the scrolling raster. */
export class ActivityHistory {
  private readonly frames: (Float32Array | null)[];
  private head = 0;
  private filled = 0;

  constructor(readonly capacity: number) {
    this.frames = new Array<Float32Array | null>(capacity).fill(null);
  }

  push(totals: Float32Array): void {
    this.frames[this.head] = totals;
    this.head = (this.head + 1) % this.capacity;
    this.filled = Math.min(this.capacity, this.filled + 1);
  }

  clear(): void {
    this.frames.fill(null);
    this.head = 0;
    this.filled = 0;
  }

  get length(): number {
    return this.filled;
  }

  /** Frames from oldest to newest. */
  toArray(): Float32Array[] {
    const out: Float32Array[] = [];
    for (let i = 0; i < this.filled; i++) {
      const index = (this.head - this.filled + i + this.capacity) % this.capacity;
      const frame = this.frames[index];
      if (frame) out.push(frame);
    }
    return out;
  }
}

/**
 * A colour scale that follows the data: it jumps up to a new peak at once and relaxes
 * slowly, so one strong frame does not leave every later frame dark, and quiet periods
 * still show structure.
 */
export class RunningScale {
  private value: number;

  constructor(
    private readonly floor = 1e-6,
    private readonly decay = 0.97,
  ) {
    this.value = floor;
  }

  get max(): number {
    return this.value;
  }

  update(values: ArrayLike<number>): number {
    let peak = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i] ?? 0;
      if (Number.isFinite(v) && v > peak) peak = v;
    }
    this.value = Math.max(this.floor, peak, this.value * this.decay);
    return this.value;
  }

  reset(): void {
    this.value = this.floor;
  }
}

/** Stops of a dark-to-bright perceptual map (after matplotlib's "inferno"). */
const STOPS: readonly [number, number, number][] = [
  [0, 0, 4],
  [31, 12, 72],
  [85, 15, 109],
  [136, 34, 106],
  [186, 54, 85],
  [227, 89, 51],
  [249, 140, 10],
  [249, 201, 50],
  [252, 255, 164],
];

/** Colour of a value in [0, 1] (clamped) as [r, g, b] bytes. */
export function heatColour(t: number): [number, number, number] {
  const x = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
  const pos = x * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(pos));
  const f = pos - i;
  const a = STOPS[i] ?? [0, 0, 0];
  const b = STOPS[i + 1] ?? a;
  return [
    Math.round(a[0] + (b[0] - a[0]) * f),
    Math.round(a[1] + (b[1] - a[1]) * f),
    Math.round(a[2] + (b[2] - a[2]) * f),
  ];
}

export function heatCss(t: number): string {
  const [r, g, b] = heatColour(t);
  return `rgb(${r} ${g} ${b})`;
}
