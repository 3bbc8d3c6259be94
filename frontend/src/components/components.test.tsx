import { fireEvent, render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { createRef, useState } from "react";
import { describe, expect, it, vi } from "vitest";
import { ActivityHistory, buildLayout, buildWideLayout } from "../activity";
import { CameraError } from "../lib/camera";
import type { ConnectionStatus } from "../lib/connection";
import { parseSimulationInfo } from "../protocol";
import type { Mode, PageError } from "../session";
import { INFO, PNG, WIDE } from "../test/fakes";
import { ActivityPanel, ArrayHeatmap, WideMap, nearestMarker } from "./ActivityPanel";
import { Alerts } from "./Alerts";
import { ConnectionBadge } from "./ConnectionBadge";
import { InputPanel } from "./InputPanel";
import { ModeTabs } from "./ModeTabs";
import { PopulationPicker } from "./PopulationPicker";
import { ReconstructionPanel } from "./ReconstructionPanel";
import { StatsBar } from "./StatsBar";

const open: ConnectionStatus = { state: "open", detail: "connected to ws://x/ws", attempts: 0 };
const down: ConnectionStatus = {
  state: "retrying",
  detail: "cannot reach the relay (ws://127.0.0.1:8080/ws/subscribe: connection lost or refused)",
  attempts: 2,
  retryAt: 5_000,
};

function layout() {
  const info = parseSimulationInfo(INFO);
  if (!info.ok) throw info.error;
  return buildLayout(info.value);
}

describe("ConnectionBadge", () => {
  it("shows a connected service without a retry button", () => {
    render(<ConnectionBadge name="Relay" status={open} now={0} onReconnect={() => {}} />);
    expect(screen.getByRole("status", { name: "Relay: connected" })).toBeTruthy();
    expect(screen.queryByRole("button")).toBeNull();
  });

  it("shows an unreachable service with the countdown and a reconnect button", async () => {
    const onReconnect = vi.fn();
    render(<ConnectionBadge name="Relay" status={down} now={2_100} onReconnect={onReconnect} />);
    expect(screen.getByRole("status", { name: "Relay: unreachable, retrying in 3 s" })).toBeTruthy();
    await userEvent.click(screen.getByRole("button", { name: "Reconnect to the relay now" }));
    expect(onReconnect).toHaveBeenCalledTimes(1);
  });
});

describe("ModeTabs", () => {
  function Harness({ onChange }: { onChange: (m: Mode) => void }) {
    const [mode, setMode] = useState<Mode>("snapshot");
    return (
      <ModeTabs
        mode={mode}
        onChange={(m) => {
          setMode(m);
          onChange(m);
        }}
      />
    );
  }

  it("is a tab list with one tab in the Tab order, driven by arrow keys", async () => {
    const onChange = vi.fn();
    render(<Harness onChange={onChange} />);
    const tabs = screen.getAllByRole("tab");
    expect(tabs.map((t) => t.textContent)).toEqual(["Snapshot", "Live", "Recorded", "Imagine", "Dream"]);
    expect(tabs.map((t) => t.tabIndex)).toEqual([0, -1, -1, -1, -1]);
    await userEvent.tab();
    expect(document.activeElement).toBe(tabs[0]);
    await userEvent.keyboard("{ArrowRight}");
    expect(onChange).toHaveBeenLastCalledWith("live");
    expect(document.activeElement).toBe(tabs[1]);
    expect(tabs[1]?.getAttribute("aria-selected")).toBe("true");
    await userEvent.keyboard("{ArrowLeft}{ArrowLeft}");
    expect(onChange).toHaveBeenLastCalledWith("dream");
    await userEvent.keyboard("{Home}");
    expect(onChange).toHaveBeenLastCalledWith("snapshot");
    await userEvent.keyboard("{End}");
    expect(onChange).toHaveBeenLastCalledWith("dream");
  });

  it("says how far Recorded mode's dataset is and cannot choose it until it is ready", async () => {
    const onChange = vi.fn();
    const { rerender } = render(<ModeTabs mode="live" onChange={onChange} recorded={{ state: "preparing", percent: 42, phase: "simulating the dataset" }} />);
    const waiting = screen.getByRole("tab", { name: "Recorded mode: preparing, 42%" });
    expect(waiting.getAttribute("aria-disabled")).toBe("true");
    expect(waiting.title).toContain("simulating the dataset");
    await userEvent.click(waiting);
    expect(onChange).not.toHaveBeenCalled();
    // The arrow keys pass over it.
    screen.getByRole("tab", { name: "Live" }).focus();
    await userEvent.keyboard("{ArrowRight}");
    expect(onChange).toHaveBeenLastCalledWith("imagine");

    rerender(<ModeTabs mode="live" onChange={onChange} recorded={{ state: "ready", segments: 3 }} />);
    const ready = screen.getByRole("tab", { name: "Recorded" });
    expect(ready.getAttribute("aria-disabled")).toBe("false");
    await userEvent.click(ready);
    expect(onChange).toHaveBeenLastCalledWith("recorded");
  });
});

describe("ArrayHeatmap", () => {
  it("draws 100 positions: recorded ones coloured by activity, the rest as dots", () => {
    const l = layout();
    const grid = new Float32Array(100).fill(Number.NaN);
    grid[0] = 1;
    grid[11] = 2;
    const { container } = render(<ArrayHeatmap grid={grid} layout={l} scale={2} />);
    const rects = container.querySelectorAll("rect");
    expect(rects).toHaveLength(100);
    expect(container.querySelectorAll("rect.cell-empty")).toHaveLength(98);
    const strongest = container.querySelector('rect[data-cell="11"]');
    expect(strongest?.getAttribute("fill")).toBe("rgb(252 255 164)");
    expect(strongest?.getAttribute("data-electrode")).toBe("12");
    expect(container.querySelector('rect[data-cell="0"]')?.getAttribute("fill")).not.toBe(strongest?.getAttribute("fill"));
    expect(screen.getByRole("img", { name: /2 recorded positions; strongest at electrode 12, 2\.00 spikes/ })).toBeTruthy();
    expect(within(container).getByText("electrode 1: 1.00 spikes")).toBeTruthy();
  });

  it("in Imagine mode raises a pressed electrode, paints a drag, lowers with the lower brush and reports hovering", () => {
    const l = layout();
    const onEdit = vi.fn();
    const onHover = vi.fn();
    const { container, rerender } = render(<ArrayHeatmap grid={new Float32Array(100)} layout={l} scale={1} editing={{ onEdit, onHover, step: 2, lower: false }} />);
    const first = container.querySelector('rect[data-cell="0"]') as Element;
    const second = container.querySelector('rect[data-cell="11"]') as Element;
    const empty = container.querySelector('rect[data-cell="5"]') as Element;
    fireEvent.pointerDown(first, { buttons: 1 });
    fireEvent.pointerMove(second, { buttons: 1 });
    fireEvent.pointerMove(second, { buttons: 1 });
    fireEvent.pointerUp(second);
    expect(onEdit.mock.calls).toEqual([
      [0, 2],
      [11, 2],
    ]);
    expect(onHover).toHaveBeenLastCalledWith(11);
    rerender(<ArrayHeatmap grid={new Float32Array(100)} layout={l} scale={1} editing={{ onEdit, onHover, step: 2, lower: true }} />);
    fireEvent.pointerDown(second, { buttons: 1 });
    fireEvent.pointerUp(second);
    expect(onEdit).toHaveBeenLastCalledWith(11, -2);
    fireEvent.pointerDown(empty, { buttons: 1 });
    expect(onEdit).toHaveBeenCalledTimes(3);
    fireEvent.pointerLeave(container.querySelector("svg") as Element);
    expect(onHover).toHaveBeenLastCalledWith(null);
  });

  it("says it is waiting without a channel map", () => {
    render(<ArrayHeatmap grid={null} layout={null} scale={1} />);
    expect(screen.getByRole("img", { name: "Electrode array: waiting for the channel map" })).toBeTruthy();
  });
});

describe("ActivityPanel", () => {
  it("shows the history length and a problem with the payload", () => {
    const history = new ActivityHistory(90);
    history.push(Float32Array.of(1, 2, 3));
    render(
      <ActivityPanel
        activity={{ grid: null, scale: 1, version: 1 }}
        history={history}
        layout={layout()}
        lags={2}
        problem="a response has 3 values; the channel map from /api/info expects 6"
      />,
    );
    expect(screen.getByTestId("activity-history").getAttribute("data-frames")).toBe("1");
    expect(screen.getByRole("alert").textContent).toContain("expects 6");
    expect(screen.getByText(/summed over 2 bins of 33 ms/)).toBeTruthy();
  });
});

describe("Alerts", () => {
  const errors: PageError[] = [{ id: 7, service: "input", title: "Bad image", message: "cat.txt is text/plain, not an image", count: 3 }];

  it("shows a down service with what it means and a way to reconnect", async () => {
    const onReconnect = vi.fn();
    render(<Alerts relay={down} simulation={open} errors={[]} now={2_100} onReconnect={onReconnect} onDismiss={() => {}} />);
    const alert = screen.getByTestId("relay-down");
    expect(alert.textContent).toContain("Relay is down.");
    expect(alert.textContent).toContain("Reconstructions cannot arrive");
    expect(alert.textContent).toContain("retrying in 3 s");
    await userEvent.click(within(alert).getByRole("button", { name: "Reconnect now" }));
    expect(onReconnect).toHaveBeenCalledWith("relay");
    expect(screen.queryByTestId("simulation-down")).toBeNull();
  });

  it("lists errors with their repeat count and lets them be dismissed", async () => {
    const onDismiss = vi.fn();
    render(<Alerts relay={open} simulation={open} errors={errors} now={0} onReconnect={() => {}} onDismiss={onDismiss} />);
    expect(screen.getByRole("alert").textContent).toBe("Bad image. cat.txt is text/plain, not an image (3×)×");
    await userEvent.click(screen.getByRole("button", { name: "Dismiss: Bad image" }));
    expect(onDismiss).toHaveBeenCalledWith(7);
  });

  it("renders nothing when all is well", () => {
    const { container } = render(<Alerts relay={open} simulation={open} errors={[]} now={0} onReconnect={() => {}} onDismiss={() => {}} />);
    expect(container.innerHTML).toBe("");
  });
});

describe("ReconstructionPanel", () => {
  it("shows the reconstruction, or a spinner while waiting", () => {
    const { rerender } = render(<ReconstructionPanel mode="snapshot" reconstruction={null} pending={true} streaming={false} similarity={{ mean: null, count: 0 }} />);
    expect(screen.getByRole("status", { name: "Waiting for the reconstruction" })).toBeTruthy();
    rerender(<ReconstructionPanel mode="snapshot" reconstruction={{ image: PNG, frameId: 4 }} pending={false} streaming={false} similarity={{ mean: null, count: 0 }} />);
    expect(screen.getByRole("img", { name: "Reconstruction from the V1 activity" }).getAttribute("src")).toBe(PNG);
    expect(screen.getByText("Frame 4")).toBeTruthy();
    expect(screen.queryByTestId("similarity")).toBeNull();
  });

  it("puts the true frame beside the reconstruction in recorded mode, with the scores", () => {
    render(
      <ReconstructionPanel
        mode="recorded"
        reconstruction={{ image: PNG, truth: PNG, frameId: 9, similarity: 0.4321 }}
        pending={false}
        streaming={true}
        similarity={{ mean: 0.38, count: 12 }}
      />,
    );
    expect(screen.getByRole("img", { name: "The true movie frame" })).toBeTruthy();
    expect(screen.getByRole("img", { name: "Reconstruction from the recorded response" })).toBeTruthy();
    const score = screen.getByTestId("similarity");
    expect(score.textContent).toBe("This frame0.43Running mean0.38Frames scored12");
  });
});

describe("StatsBar", () => {
  it("shows achieved against target rate, latency, and live-only figures in live mode", () => {
    const stats = { fps: 27.4, latencyP50: 48.6, inFlight: 1, sent: 100, received: 95, dropped: 3, lost: 2 };
    const { rerender } = render(<StatsBar mode="live" stats={stats} targetFps={30} streaming={true} serviceLatency={{ simulation: 2.25, relay: 4 }} />);
    expect(screen.getByTestId("stat-fps").textContent).toBe("Frame rate27 / 30 fps");
    expect(screen.getByTestId("stat-latency").textContent).toBe("Latency p5049 ms");
    expect(screen.getByText("Dropped").nextSibling?.textContent).toBe("5");
    expect(screen.getByText("2.3 ms")).toBeTruthy();
    rerender(<StatsBar mode="snapshot" stats={stats} targetFps={30} streaming={false} serviceLatency={{ simulation: null, relay: null }} />);
    expect(screen.queryByText("Dropped")).toBeNull();
  });
});

describe("InputPanel", () => {
  const base = {
    videoRef: createRef<HTMLVideoElement | null>(),
    upload: null,
    modelInput: null,
    onChooseFile: () => {},
    onRetryCamera: () => {},
  };

  it("explains a denied camera and offers to try again", async () => {
    const onRetryCamera = vi.fn();
    render(
      <InputPanel
        {...base}
        onRetryCamera={onRetryCamera}
        onFile={() => {}}
        mode="snapshot"
        source="webcam"
        camera={{ status: "error", error: new CameraError("denied", "Camera permission was denied. Allow camera access…") }}
      />,
    );
    expect(screen.getByTestId("camera-error").textContent).toContain("Camera permission was denied");
    await userEvent.click(screen.getByRole("button", { name: "Try the camera again" }));
    expect(onRetryCamera).toHaveBeenCalled();
  });

  it("accepts a dropped image file", () => {
    const onFile = vi.fn();
    render(<InputPanel {...base} onFile={onFile} mode="snapshot" source="image" camera={{ status: "off" }} />);
    const file = new File(["x"], "cat.png", { type: "image/png" });
    const panel = screen.getByTestId("input-panel");
    fireEvent.dragOver(panel, { dataTransfer: { types: ["Files"], files: [file] } });
    expect(panel.className).toContain("dragging");
    fireEvent.drop(panel, { dataTransfer: { types: ["Files"], files: [file] } });
    expect(onFile).toHaveBeenCalledWith(file);
    expect(panel.className).not.toContain("dragging");
  });

  it("shows the crop the model saw, with the chosen image as an inset", () => {
    render(
      <InputPanel {...base} onFile={() => {}} mode="snapshot" source="image" upload={{ image: PNG, name: "cat.png" }} modelInput={PNG} camera={{ status: "off" }} />,
    );
    expect(screen.getByRole("img", { name: "The crop the model sees" })).toBeTruthy();
    expect(screen.getByRole("img", { name: "Your image: cat.png" }).parentElement?.className).toBe("inset");
    expect(screen.getByRole("button", { name: "Choose another…" })).toBeTruthy();
  });
});

describe("PopulationPicker", () => {
  it("offers both populations and both kinds of response, and reports the choices", async () => {
    const onPopulation = vi.fn();
    const onTrial = vi.fn();
    render(<PopulationPicker population="pvc1" trial="mean" wideUnavailable={null} onPopulation={onPopulation} onTrial={onTrial} />);
    expect((screen.getByRole("radio", { name: "one array (pvc-1)" }) as HTMLInputElement).checked).toBe(true);
    expect((screen.getByRole("radio", { name: "mean response" }) as HTMLInputElement).checked).toBe(true);
    await userEvent.click(screen.getByRole("radio", { name: "wide field" }));
    expect(onPopulation).toHaveBeenCalledWith("wide");
    await userEvent.click(screen.getByRole("radio", { name: "single trial" }));
    expect(onTrial).toHaveBeenCalledWith("single");
  });

  it("disables the wide field with the reason as its tooltip when the service has no wide-field model", async () => {
    const onPopulation = vi.fn();
    const why = "this service runs without the wide-field model; start it with --wide-model DIR";
    render(<PopulationPicker population="pvc1" trial="mean" wideUnavailable={why} onPopulation={onPopulation} onTrial={vi.fn()} />);
    const radio = screen.getByRole("radio", { name: "wide field" }) as HTMLInputElement;
    expect(radio.disabled).toBe(true);
    expect(radio.closest("label")?.getAttribute("title")).toBe(why);
    await userEvent.click(radio);
    expect(onPopulation).not.toHaveBeenCalled();
  });
});

describe("WideMap", () => {
  function wide() {
    const info = parseSimulationInfo({ ...INFO, wide: WIDE });
    if (!info.ok || info.value.wide === undefined) throw new Error("no wide population");
    return buildWideLayout(info.value.wide);
  }

  it("draws every channel over a 4:3 frame, the unplaced ones as rings at their array's centre", () => {
    render(<WideMap values={Float32Array.from([1, 2, 3, 4])} layout={wide()} scale={4} />);
    const map = screen.getByTestId("activity-wide");
    expect(map.getAttribute("viewBox")).toBe("0 0 320 240");
    expect(map.getAttribute("aria-label")).toContain("4 channels");
    expect(map.getAttribute("aria-label")).toContain("strongest 4.00 spikes");
    const dots = map.querySelectorAll("circle.wide-channel");
    expect([...dots].map((d) => [d.getAttribute("cx"), d.getAttribute("cy")])).toEqual([
      ["80", "60"],
      ["240", "120"],
    ]);
    const rings = map.querySelectorAll("circle.wide-group");
    expect([...rings].map((r) => [r.getAttribute("cx"), r.getAttribute("cy"), r.textContent])).toEqual([
      ["160", "90", "1 channels of array f1 without a receptive-field centre (mean): 3.00 spikes"],
      ["160", "120", "1 channels of array f2 without a receptive-field centre (mean): 4.00 spikes"],
    ]);
  });

  it("in Imagine mode raises a pressed marker, paints a drag, lowers with the lower brush or Shift, and reports hovering", () => {
    const l = wide();
    const onEdit = vi.fn();
    const onHover = vi.fn();
    const values = new Float32Array(4);
    const { container, rerender } = render(<WideMap values={values} layout={l} scale={1} editing={{ onEdit, onHover, step: 2, lower: false }} />);
    const map = screen.getByTestId("activity-wide");
    expect(map.getAttribute("data-editable")).toBe("true");
    expect(map.getAttribute("aria-label")).toContain("Click or drag on channels to raise");
    const marker = (i: number) => container.querySelector(`circle[data-marker="${i}"]`) as Element;
    expect(marker(1).getAttribute("data-channel")).toBe("1");
    expect(marker(2).getAttribute("data-channel")).toBeNull();
    fireEvent.pointerDown(marker(0), { buttons: 1 });
    fireEvent.pointerMove(marker(2), { buttons: 1 });
    fireEvent.pointerMove(marker(2), { buttons: 1 });
    fireEvent.pointerUp(marker(2));
    expect(onEdit.mock.calls).toEqual([
      [0, 2],
      [2, 2],
    ]);
    // The marker under the pointer is reported and outlined.
    expect(onHover).toHaveBeenLastCalledWith(2);
    expect(map.getAttribute("data-hovered")).toBe("2");
    expect(container.querySelectorAll("circle.wide-hover")).toHaveLength(1);
    fireEvent.pointerDown(marker(1), { buttons: 1, shiftKey: true });
    fireEvent.pointerUp(marker(1));
    expect(onEdit).toHaveBeenLastCalledWith(1, -2);
    rerender(<WideMap values={values} layout={l} scale={1} editing={{ onEdit, onHover, step: 2, lower: true }} />);
    fireEvent.pointerDown(marker(3), { buttons: 1 });
    fireEvent.pointerUp(marker(3));
    expect(onEdit).toHaveBeenLastCalledWith(3, -2);
    // Off every marker nothing is painted.
    fireEvent.pointerDown(map, { buttons: 1 });
    expect(onEdit).toHaveBeenCalledTimes(4);
    fireEvent.pointerLeave(map);
    expect(onHover).toHaveBeenLastCalledWith(null);
    expect(container.querySelectorAll("circle.wide-hover")).toHaveLength(0);
  });

  it("picks the marker nearest the pointer on the frame as drawn, within a few dot radii", () => {
    const l = wide();
    // Markers at (80, 60), (240, 120), (160, 90) and (160, 120) of the 320x240 frame; dots of radius 320/90.
    expect(nearestMarker(l, 83, 62)).toBe(0);
    expect(nearestMarker(l, 160, 100)).toBe(2);
    expect(nearestMarker(l, 160, 112)).toBe(3);
    expect(nearestMarker(l, 20, 200)).toBeNull();
    const onEdit = vi.fn();
    render(<WideMap values={null} layout={l} scale={1} editing={{ onEdit, onHover: vi.fn(), step: 2, lower: false }} />);
    const map = screen.getByTestId("activity-wide");
    // Drawn 800x480 at (10, 20): the frame fits at scale 2, centred with 80 px on either side.
    map.getBoundingClientRect = () => ({ left: 10, top: 20, width: 800, height: 480, right: 810, bottom: 500, x: 10, y: 20, toJSON: () => ({}) });
    fireEvent.pointerDown(map, { buttons: 1, clientX: 10 + 80 + 2 * 238, clientY: 20 + 2 * 121 });
    fireEvent.pointerUp(map);
    fireEvent.pointerDown(map, { buttons: 1, clientX: 10 + 80 + 2 * 30, clientY: 20 + 2 * 30 });
    expect(onEdit.mock.calls).toEqual([[1, 2]]);
  });

  it("replaces the array in the activity panel when the wide field is shown", () => {
    render(<ActivityPanel activity={null} history={new ActivityHistory(10)} layout={layout()} wide={wide()} lags={2} problem={null} />);
    expect(screen.queryByTestId("activity-wide")).not.toBeNull();
    expect(screen.queryByTestId("activity-heatmap")).toBeNull();
    expect(screen.queryByText(/at its receptive field on the frame/)).not.toBeNull();
  });
});

describe("wide-field images", () => {
  it("are stretched back to the frame's aspect", () => {
    render(
      <ReconstructionPanel
        mode="snapshot"
        reconstruction={{ image: PNG, frameId: 3, population: "wide" }}
        pending={false}
        streaming={false}
        similarity={{ mean: null, count: 0 }}
        frameAspect="320 / 240"
      />,
    );
    const img = screen.getByTestId("reconstruction");
    expect(img.classList.contains("frame-aspect")).toBe(true);
    expect(img.style.aspectRatio).toBe("320 / 240");
  });
});
