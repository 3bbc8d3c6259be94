import { act, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { RelayClient, SimulationClient } from "./clients";
import { SessionController } from "./session";
import { INFO, PNG, SESSION, WIDE, fakeFetch, json, socketRecorder } from "./test/fakes";

const controllers: SessionController[] = [];
/** `GET /api/projective-fields?population=wide` for WIDE's four channels. */
const WIDE_FIELDS = {
  image_size: 64,
  channels: WIDE.channels.map((ch, c) => ({ index: c, electrode: ch.electrode, image: PNG, pf_center: [40, 30], rf_center: ch.rf_centre ?? null })),
};

afterEach(() => {
  for (const c of controllers.splice(0)) c.dispose();
});

function denied(): Error {
  const e = new Error("Permission denied");
  e.name = "NotAllowedError";
  return e;
}

async function mount(options: { openCamera?: () => Promise<MediaStream>; info?: Record<string, unknown> } = {}) {
  const relaySockets = socketRecorder();
  const simSockets = socketRecorder();
  const controller = new SessionController({
    relay: new RelayClient({ origin: "http://relay.test", fetch: fakeFetch(() => json(SESSION, 201)).fetch, socketFactory: relaySockets.factory, backoff: { initialMs: 50, jitter: 0 } }),
    simulation: new SimulationClient({ wsUrl: "ws://sim.test/ws", fetch: fakeFetch((call) => json(call.url.endsWith("/api/projective-fields") ? { image_size: 4, channels: [] } : call.url.endsWith("?population=wide") ? WIDE_FIELDS : (options.info ?? INFO))).fetch, socketFactory: simSockets.factory, backoff: { initialMs: 50, jitter: 0 } }),
    similarity: async () => 0.5,
  });
  controllers.push(controller);
  controller.start();
  const capture = vi.fn(() => PNG);
  render(<App controller={controller} openCamera={options.openCamera ?? (() => Promise.reject(denied()))} captureFrame={capture} />);
  await waitFor(() => {
    expect(relaySockets.sockets).toHaveLength(1);
    expect(simSockets.sockets).toHaveLength(1);
  });
  act(() => {
    relaySockets.last().open();
    simSockets.last().open();
  });
  await waitFor(() => expect(screen.getByRole("status", { name: "Relay: connected" })).toBeTruthy());
  const stimuli = () => simSockets.last().messages().filter((m) => m.type === "stimulus");
  const answer = (frameId: number) =>
    act(() => {
      simSockets.last().receive({ type: "response", session_id: SESSION.session_id, frame_id: frameId, payload: [1, 2, 3, 3, 2, 1], shape: [2, 3], input_image: PNG });
      relaySockets.last().receive({ type: "reconstructed_image", session_id: SESSION.session_id, frame_id: frameId, image_base64: PNG });
    });
  return { controller, relaySockets, simSockets, stimuli, answer, capture };
}

describe("App", () => {
  it("in Imagine mode paints an electrode from the mean, sends the edit, and resets it", async () => {
    const { simSockets, relaySockets } = await mount({ info: { ...INFO, response_mean: [1, 1, 1, 2, 2, 2] } });
    await waitFor(() => expect(screen.getByTestId("activity-heatmap").querySelectorAll("rect[data-electrode]").length).toBe(2));
    await userEvent.click(screen.getByRole("tab", { name: "Imagine" }));
    const imagined = () => simSockets.last().messages().filter((m) => m.type === "imagined");
    expect(imagined()).toEqual([{ type: "imagined", session_id: SESSION.session_id, token: SESSION.token, frame_id: 1, payload: [1, 1, 1, 2, 2, 2] }]);
    act(() => relaySockets.last().receive({ type: "reconstructed_image", session_id: SESSION.session_id, frame_id: 1, image_base64: PNG }));
    const heatmap = screen.getByTestId("activity-heatmap");
    expect(heatmap.getAttribute("data-editable")).toBe("true");
    const cell = heatmap.querySelector('rect[data-cell="11"]') as Element;
    act(() => {
      cell.dispatchEvent(new MouseEvent("pointerdown", { bubbles: true }));
      cell.dispatchEvent(new MouseEvent("pointerup", { bubbles: true }));
    });
    expect(imagined().at(-1)?.payload).toEqual([1, 2, 2, 2, 3, 3]);
    act(() => relaySockets.last().receive({ type: "reconstructed_image", session_id: SESSION.session_id, frame_id: 2, image_base64: PNG }));
    const reset = screen.getByTestId("imagine-reset");
    expect(reset.hasAttribute("disabled")).toBe(false);
    await userEvent.click(reset);
    expect(imagined().at(-1)?.payload).toEqual([1, 1, 1, 2, 2, 2]);
    expect(screen.getByTestId("imagine-undo").hasAttribute("disabled")).toBe(false);
  });

  it("shows both services connected and a ready Thought-to-Image button", async () => {
    await mount();
    expect(screen.getByRole("heading", { level: 1 }).textContent).toBe("V1 Thought-to-Image");
    expect(screen.getByRole("status", { name: "Simulation: connected" })).toBeTruthy();
    const button = screen.getByRole("button", { name: /Thought-to-Image/ });
    expect(button.getAttribute("aria-disabled")).toBe("false");
    expect(button.getAttribute("aria-keyshortcuts")).toBe("T");
  });

  it("sends a random stimulus and shows the crop, the activity and the reconstruction", async () => {
    const { stimuli, answer } = await mount();
    await userEvent.click(screen.getByTestId("primary-action"));
    expect(stimuli()).toEqual([{ type: "stimulus", session_id: SESSION.session_id, token: SESSION.token, frame_id: 1, source: "random" }]);
    expect(screen.getByRole("status", { name: "Waiting for the reconstruction" })).toBeTruthy();
    answer(1);
    expect(screen.getByRole("img", { name: "Reconstruction from the V1 activity" }).getAttribute("src")).toBe(PNG);
    expect(screen.getByRole("img", { name: "The crop the model sees" })).toBeTruthy();
    expect(screen.getByTestId("activity-heatmap").getAttribute("data-has-activity")).toBe("true");
    expect(screen.queryByRole("status", { name: "Waiting for the reconstruction" })).toBeNull();
  });

  it("runs Thought-to-Image from the keyboard with T, also right after choosing an input", async () => {
    const { stimuli } = await mount();
    await userEvent.keyboard("t");
    expect(stimuli()).toHaveLength(1);
    await userEvent.click(screen.getByRole("radio", { name: "Random stimulus" }));
    await userEvent.keyboard("T");
    expect(stimuli()).toHaveLength(2);
    // In a list box a letter picks an option; there it is not the shortcut.
    await userEvent.click(screen.getByRole("tab", { name: "Live" }));
    screen.getByRole("combobox", { name: "Frames per second" }).focus();
    await userEvent.keyboard("t");
    // Had it fired, live mode would have complained that it has no camera.
    expect(screen.queryByTestId("page-error")).toBeNull();
    await userEvent.click(screen.getByRole("tab", { name: "Live" }));
    await userEvent.keyboard("t");
    expect(screen.getByTestId("page-error").textContent).toContain("Live needs the camera");
  });

  it("sends the current webcam frame", async () => {
    const stream = { getTracks: () => [] } as unknown as MediaStream;
    const { stimuli, capture } = await mount({ openCamera: async () => stream });
    await userEvent.click(screen.getByRole("radio", { name: "Webcam" }));
    await waitFor(() => expect(screen.getByLabelText("Webcam preview")).toBeTruthy());
    await userEvent.click(screen.getByTestId("primary-action"));
    expect(capture).toHaveBeenCalledWith(expect.anything(), expect.anything(), true);
    expect(stimuli()[0]).toMatchObject({ image: PNG, source: "client" });
  });

  it("explains a denied camera in the page", async () => {
    const { stimuli } = await mount();
    await userEvent.click(screen.getByRole("radio", { name: "Webcam" }));
    const message = await screen.findByTestId("camera-error");
    expect(message.textContent).toContain("Camera permission was denied");
    await userEvent.click(screen.getByTestId("primary-action"));
    expect(stimuli()).toEqual([]);
    expect(screen.getAllByTestId("page-error")[0]?.textContent).toContain("No camera frame");
  });

  it("rejects a file that is not an image, by name", async () => {
    await mount();
    await userEvent.click(screen.getByRole("radio", { name: "Image" }));
    const input = screen.getByTestId("file-input") as HTMLInputElement;
    await userEvent.upload(input, new File(["hello"], "notes.txt", { type: "text/plain" }), { applyAccept: false });
    const error = await screen.findByTestId("page-error");
    expect(error.textContent).toContain("Bad image. notes.txt is text/plain, not an image");
  });

  it("shows the relay going down and coming back without a reload", async () => {
    const { relaySockets } = await mount();
    act(() => relaySockets.last().drop());
    const alert = screen.getByTestId("relay-down");
    expect(alert.textContent).toContain("Relay is down.");
    expect(screen.getByRole("status", { name: /Relay: unreachable/ })).toBeTruthy();
    expect(screen.getByText(/you will see the activity, but no reconstruction/)).toBeTruthy();
    await userEvent.click(within(alert).getByRole("button", { name: "Reconnect now" }));
    await waitFor(() => expect(relaySockets.sockets).toHaveLength(2));
    act(() => relaySockets.last().open());
    expect(screen.queryByTestId("relay-down")).toBeNull();
    expect(relaySockets.last().messages()).toEqual([{ type: "subscribe", session_id: SESSION.session_id, token: SESSION.token }]);
  });

  it("switches to recorded mode and plays the recording", async () => {
    const { simSockets } = await mount();
    await userEvent.click(screen.getByRole("tab", { name: "Recorded" }));
    expect(screen.getByRole("heading", { name: "Movie frame" })).toBeTruthy();
    await userEvent.click(screen.getByRole("button", { name: /Play recording/ }));
    expect(simSockets.last().messages().at(-1)).toMatchObject({ type: "start_stream", source: "recorded", fps: 30 });
    expect(screen.getByRole("button", { name: /Stop replay/ })).toBeTruthy();
    await userEvent.click(screen.getByRole("button", { name: /Stop replay/ }));
    expect(simSockets.last().messages().at(-1)).toMatchObject({ type: "stop_stream" });
  });
});

describe("App with two populations", () => {
  it("keeps the wide field disabled, with the service's reason, when the service has no wide-field model", async () => {
    await mount({ info: { ...INFO, wide: { available: false, reason: "this service runs without the wide-field model; start it with --wide-model DIR" } } });
    await waitFor(() => expect((screen.getByRole("radio", { name: "wide field" }) as HTMLInputElement).disabled).toBe(true));
    expect(screen.getByRole("radio", { name: "wide field" }).closest("label")?.getAttribute("title")).toContain("--wide-model DIR");
    expect(screen.getByTestId("activity-heatmap")).toBeTruthy();
  });

  it("sends snapshots for the wide field as single trials and draws them over the frame", async () => {
    const { controller, simSockets, relaySockets, stimuli } = await mount({ info: { ...INFO, wide: WIDE } });
    await waitFor(() => expect((screen.getByRole("radio", { name: "wide field" }) as HTMLInputElement).disabled).toBe(false));
    await userEvent.click(screen.getByRole("radio", { name: "wide field" }));
    await userEvent.click(screen.getByRole("radio", { name: "single trial" }));
    expect(screen.getByTestId("activity-wide")).toBeTruthy();
    expect(screen.queryByTestId("activity-heatmap")).toBeNull();
    // The service's random frames are the pvc-1 array's: the wide field takes the page's own images.
    const random = screen.getByRole("radio", { name: "Random stimulus" }) as HTMLInputElement;
    expect(random.disabled).toBe(true);
    expect((screen.getByRole("radio", { name: "Webcam" }) as HTMLInputElement).checked).toBe(true);
    // A picture of one's own (what an upload sends; jsdom cannot decode one).
    act(() => void controller.sendSnapshot(PNG));
    expect(stimuli().at(-1)).toMatchObject({ source: "client", population: "wide", trial: "single" });
    act(() => {
      simSockets.last().receive({ type: "response", session_id: SESSION.session_id, frame_id: 1, payload: [1, 2, 3, 4, 1, 0, 1, 0], shape: [2, 4], population: "wide", trial: "single" });
      relaySockets.last().receive({ type: "reconstructed_image", session_id: SESSION.session_id, frame_id: 1, image_base64: PNG, population: "wide" });
    });
    await waitFor(() => expect(screen.getByTestId("activity-wide").getAttribute("data-has-activity")).toBe("true"));
    expect(screen.getByTestId("reconstruction").style.aspectRatio).toBe("320 / 240");
    expect(screen.getByText(/one trial of spikes/)).toBeTruthy();
  });

  it("in Imagine mode paints the wide field's channels and shows a hovered channel's projective field at the frame's aspect", async () => {
    const { simSockets, relaySockets } = await mount({ info: { ...INFO, wide: WIDE } });
    await waitFor(() => expect((screen.getByRole("radio", { name: "wide field" }) as HTMLInputElement).disabled).toBe(false));
    await userEvent.click(screen.getByRole("radio", { name: "wide field" }));
    await userEvent.click(screen.getByRole("tab", { name: "Imagine" }));
    const imagined = () => simSockets.last().messages().filter((m) => m.type === "imagined");
    expect(imagined()).toEqual([{ type: "imagined", session_id: SESSION.session_id, token: SESSION.token, frame_id: 1, payload: [1, 1, 1, 1, 1, 1, 1, 1], population: "wide" }]);
    act(() => relaySockets.last().receive({ type: "reconstructed_image", session_id: SESSION.session_id, frame_id: 1, image_base64: PNG, population: "wide" }));
    const map = screen.getByTestId("activity-wide");
    expect(map.getAttribute("data-editable")).toBe("true");
    expect(screen.getByText(/Click or drag on channels to raise them by 2 spikes/)).toBeTruthy();
    const dot = map.querySelector('circle[data-channel="1"]') as Element;
    act(() => {
      dot.dispatchEvent(new MouseEvent("pointerdown", { bubbles: true }));
      dot.dispatchEvent(new MouseEvent("pointerup", { bubbles: true }));
    });
    expect(imagined().at(-1)).toMatchObject({ frame_id: 2, payload: [1, 2, 1, 1, 1, 2, 1, 1], population: "wide" });
    act(() => dot.dispatchEvent(new MouseEvent("pointermove", { bubbles: true })));
    const field = await screen.findByTestId("projective-field");
    expect(field.getAttribute("data-channel")).toBe("1");
    expect(field.textContent).toContain("Channel 2 (array f1): what its activity adds");
    expect((field.querySelector(".field-stage") as HTMLElement).style.aspectRatio).toBe("320 / 240");
    act(() => relaySockets.last().receive({ type: "reconstructed_image", session_id: SESSION.session_id, frame_id: 2, image_base64: PNG, population: "wide" }));
    await userEvent.click(screen.getByTestId("imagine-reset"));
    expect(imagined().at(-1)).toMatchObject({ payload: [1, 1, 1, 1, 1, 1, 1, 1], population: "wide" });
  });
});
