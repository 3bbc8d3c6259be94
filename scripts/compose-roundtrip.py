#!/usr/bin/env python3
"""One real round trip through a running V1 system, as a browser would make it.

1. `GET /healthz` of both services and the frontend page at the relay's `/`; `GET /api/info` of the simulation-service until it
   reports its link to the relay (and, with --expect-dataset, until the recorded source is
   ready: the dataset is prepared beside the running service).
2. `POST /api/sessions` on the relay (`Content-Type: application/json`): a session id
   and its token, with its expiry.
3. Subscribe to the session on the relay (`/ws/subscribe`), wait for `subscribed`.
4. Send a `stimulus` with a JPEG image to the simulation-service (`/ws`), wait for its
   `response` (payload length = lags x channels of /api/info).
5. Wait for the session's `reconstructed_image` on the subscription, decode its data URL
   and check that it is a JPEG image of sensible size.
6. With --expect-dataset: a `stimulus` without an image (`source: random`) must be
   answered from the dataset.

The relay port may be a proxy in front of several relays sharing a Redis session store
(the compose profile `scale`): --expect-session-store redis checks that it is, and
--subscribers 2 subscribes twice to the session, as two tabs would, so that each image
must reach subscribers that the proxy may have put on different relays. A command after
`--` (e.g. `docker compose stop relay-a`) is then run with every socket still open, and
the round trip must go on without the lost relay:

7. Each subscription that the loss closed is opened again through the proxy with the
   same session and token, and must replay the session's earlier images in frame order
   (the buffer lives in Redis); one that stayed open must stay usable.
8. A new frame of the same session: response, and its reconstructed JPEG on every
   subscription.
9. `/healthz` through the proxy answers on every try, and a fresh session makes the whole
   round trip (steps 2 to 5).

Origin headers are those of the page served at the relay port. Prints one line per step
and exits 0 on success, 1 with the reason on failure.
Needs the PyPI packages `websockets` (>= 13) and `Pillow`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from PIL import Image
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import connect


class RoundTripError(Exception):
    """A step of the round trip did not give what the protocol promises."""


def http_json(method: str, url: str, timeout: float = 10.0) -> tuple[int, dict]:
    # The relay's POSTs need a JSON content type (so that a foreign page cannot send them
    # without a CORS preflight); their body may be an empty object.
    if method == "POST":
        req = urllib.request.Request(url, method=method, data=b"{}", headers={"Content-Type": "application/json"})
    else:
        req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace")[:300]
        raise RoundTripError(f"{method} {url}: HTTP {e.code}: {body}") from e
    except (urllib.error.URLError, OSError) as e:
        raise RoundTripError(f"{method} {url}: {e}") from e
    except json.JSONDecodeError as e:
        raise RoundTripError(f"{method} {url}: the body is not JSON ({e})") from e


def test_image() -> str:
    """A 128x128 JPEG with an oriented grating and a bright disc, as a data URL."""
    size = 128
    img = Image.new("L", (size, size))
    px = img.load()
    for y in range(size):
        for x in range(size):
            grating = 128 + 100 * (1 if ((x + y) // 8) % 2 == 0 else -1)
            disc = (x - 80) ** 2 + (y - 48) ** 2 < 20**2
            px[x, y] = 255 if disc else grating
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def recv_until(ws, want: str, frame_id: int | None, deadline: float, where: str) -> dict:
    """Next message of type `want` (and `frame_id`, when given); an `error` fails."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RoundTripError(f"{where}: no {want!r} message in time")
        try:
            text = ws.recv(timeout=left)
        except TimeoutError as e:
            raise RoundTripError(f"{where}: no {want!r} message in time") from e
        if not isinstance(text, str):
            raise RoundTripError(f"{where}: got a binary frame; the protocol uses text frames only")
        msg = json.loads(text)
        kind = msg.get("type")
        if kind == "error":
            raise RoundTripError(f"{where}: error {msg.get('code')}: {msg.get('message')}")
        if kind == want and (frame_id is None or msg.get("frame_id") == frame_id):
            return msg


def decode_jpeg_data_url(url: str) -> Image.Image:
    prefix = "data:image/jpeg;base64,"
    if not url.startswith(prefix):
        raise RoundTripError(f"image_base64 does not start with {prefix!r}: {url[:40]!r}")
    raw = base64.b64decode(url[len(prefix):], validate=True)
    if raw[:2] != b"\xff\xd8":
        raise RoundTripError("image_base64 does not hold JPEG data (no SOI marker)")
    img = Image.open(io.BytesIO(raw))
    img.load()  # decodes every scan; raises on truncated or corrupt data
    if img.format != "JPEG":
        raise RoundTripError(f"image_base64 decodes as {img.format}, not JPEG")
    return img


def expect_image(sub, frame_id: int, deadline: float, where: str) -> Image.Image:
    """The session's `reconstructed_image` of `frame_id`, decoded; checks its size."""
    rec = recv_until(sub, "reconstructed_image", frame_id, deadline, where)
    img = decode_jpeg_data_url(rec.get("image_base64", ""))
    if min(img.size) < 8:
        raise RoundTripError(f"{where}: reconstructed JPEG of frame {frame_id} is only {img.size[0]}x{img.size[1]} pixels")
    return img


class Client:
    """The browser's side: the page's origin, the relay (or proxy) and the simulation-service."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.relay = f"http://127.0.0.1:{args.relay_port}"
        self.relay_ws = f"ws://127.0.0.1:{args.relay_port}"
        self.sim = f"http://127.0.0.1:{args.sim_port}"
        self.sim_ws = f"ws://127.0.0.1:{args.sim_port}"
        self.origin = self.relay  # the page is served by the relay (or the proxy)
        self.timeout = args.timeout
        self.session_store = args.expect_session_store

    def healthz(self, name: str, base: str) -> dict:
        """`/healthz` of a service; the relay's must report the expected session store."""
        _, health = http_json("GET", f"{base}/healthz")
        if health.get("status") != "ok":
            raise RoundTripError(f"{name} /healthz: status {health.get('status')!r}, expected 'ok'")
        store = self.session_store if base == self.relay else None
        if store is not None and health.get("session_store") != store:
            raise RoundTripError(f"{name} /healthz: session_store {health.get('session_store')!r}, expected {store!r}")
        return health

    def new_session(self) -> tuple[str, str]:
        status, session = http_json("POST", f"{self.relay}/api/sessions")
        if status != 201 or not session.get("session_id") or not session.get("token") or not session.get("expires_at"):
            raise RoundTripError(f"relay POST /api/sessions: HTTP {status}, body {session!r}")
        return session["session_id"], session["token"]

    def subscribe(self, sockets: contextlib.ExitStack, sid: str, token: str):
        """A subscription to the session on a new connection (closed with `sockets`), and
        its `subscribed` message."""
        sub = sockets.enter_context(
            connect(f"{self.relay_ws}/ws/subscribe", open_timeout=self.timeout, origin=self.origin, max_size=2**24))
        sub.send(json.dumps({"type": "subscribe", "session_id": sid, "token": token}))
        subscribed = recv_until(sub, "subscribed", None, time.monotonic() + self.timeout, "relay /ws/subscribe")
        return sub, subscribed

    def sim_socket(self):
        return connect(f"{self.sim_ws}/ws", open_timeout=self.timeout, origin=self.origin, max_size=2**24)


def send_image(client: Client, simws, subs: list, sid: str, token: str, frame_id: int, shape: list[int]) -> None:
    """One image frame: the simulation-service's response, then the JPEG on every subscription."""
    started = time.monotonic()
    simws.send(json.dumps({"type": "stimulus", "session_id": sid, "token": token, "frame_id": frame_id, "image": test_image()}))
    resp = recv_until(simws, "response", frame_id, time.monotonic() + client.timeout, "simulation /ws")
    payload = resp.get("payload") or []
    if len(payload) != shape[0] * shape[1]:
        raise RoundTripError(f"response payload has {len(payload)} values, expected {shape[0]}x{shape[1]}")
    print(f"ok   simulation /ws: frame {frame_id}: response with {len(payload)} values after {1000 * (time.monotonic() - started):.0f} ms")
    for n, sub in enumerate(subs, 1):
        where = f"relay /ws/subscribe (subscription {n} of {len(subs)})"
        img = expect_image(sub, frame_id, time.monotonic() + client.timeout, where)
        print(f"ok   {where}: frame {frame_id}: reconstructed_image, JPEG {img.size[0]}x{img.size[1]} {img.mode}, "
              f"{1000 * (time.monotonic() - started):.0f} ms after the stimulus")


def still_open(ws) -> bool:
    """Whether the socket is still open; reads (and drops) whatever is pending."""
    try:
        while True:
            ws.recv(timeout=1.0)
    except TimeoutError:
        return True
    except ConnectionClosed:
        return False


def wait_for_dataset(sim: str, wait_s: float) -> dict:
    """The service is healthy before its dataset is ready (it is prepared beside the
    running service): waits for Recorded mode, printing how far the preparation is."""
    deadline = time.monotonic() + wait_s
    said = None
    while True:
        _, info = http_json("GET", f"{sim}/api/info")
        recorded = info.get("recorded") or {}
        if "recorded" in (info.get("sources") or []):
            print(f"ok   simulation /api/info: recorded mode ready ({recorded.get('segments')} segments)")
            return info
        state = (recorded.get("state"), recorded.get("phase"), recorded.get("percent"))
        if recorded.get("state") != "preparing":
            raise RoundTripError(f"simulation /api/info: recorded mode is {recorded!r}, sources {info.get('sources')!r}; the dataset volume was not prepared")
        if state != said:
            print(f"..   recorded mode: preparing ({recorded.get('phase')}, {recorded.get('percent')}%)", flush=True)
            said = state
        if time.monotonic() > deadline:
            raise RoundTripError(f"simulation /api/info: the dataset was still being prepared after {wait_s:.0f} s ({recorded!r})")
        time.sleep(2)


def run(args: argparse.Namespace, failover: list[str]) -> None:
    client = Client(args)
    relay, sim, timeout = client.relay, client.sim, client.timeout

    for name, base in (("relay", relay), ("simulation", sim)):
        health = client.healthz(name, base)
        print(f"ok   {name} /healthz: {json.dumps(health)[:160]}")

    try:
        with urllib.request.urlopen(f"{relay}/", timeout=10) as resp:
            page = resp.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as e:
        raise RoundTripError(f"GET {relay}/: {e}") from e
    if "<html" not in page.lower() or "<script" not in page.lower():
        raise RoundTripError(f"GET {relay}/ is not the built frontend page: {page[:120]!r}")
    print(f"ok   relay GET /: the frontend page ({len(page)} bytes)")

    deadline = time.monotonic() + timeout
    while True:
        _, info = http_json("GET", f"{sim}/api/info")
        if info.get("relay_connected"):
            break
        if time.monotonic() > deadline:
            raise RoundTripError("simulation /api/info: relay_connected stays false (the simulation-service cannot reach the relay)")
        time.sleep(0.5)
    shape = info.get("shape")
    if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) and v > 0 for v in shape)):
        raise RoundTripError(f"simulation /api/info: shape {shape!r} is not [lags, channels]")
    print(f"ok   simulation /api/info: shape {shape}, sources {info.get('sources')}, relay connected")
    if args.expect_dataset:
        info = wait_for_dataset(sim, args.dataset_wait)

    sid, token = client.new_session()
    print(f"ok   relay POST /api/sessions: session {sid}")

    with contextlib.ExitStack() as sockets:
        subs = []
        for n in range(1, args.subscribers + 1):
            sub, subscribed = client.subscribe(sockets, sid, token)
            subs.append(sub)
            print(f"ok   relay /ws/subscribe: subscription {n}: subscribed, {subscribed.get('buffered')} buffered")
        simws = sockets.enter_context(client.sim_socket())
        send_image(client, simws, subs, sid, token, 1, shape)
        frames = [1]

        if args.expect_dataset:
            simws.send(json.dumps({"type": "stimulus", "session_id": sid, "token": token, "frame_id": 2, "source": "random"}))
            resp = recv_until(simws, "response", 2, time.monotonic() + timeout, "simulation /ws")
            if resp.get("source") not in ("dataset", "recorded"):
                raise RoundTripError(f"random stimulus answered from source {resp.get('source')!r}, expected the dataset")
            for sub in subs:
                expect_image(sub, 2, time.monotonic() + timeout, "relay /ws/subscribe")
            frames.append(2)
            print(f"ok   random frame from the dataset: response ({resp.get('source')}) and reconstructed JPEG on {len(subs)} subscription(s)")

        if failover:
            survive_loss(client, failover, sockets, simws, subs, sid, token, frames, shape)


def survive_loss(client: Client, command: list[str], sockets: contextlib.ExitStack, simws, subs: list,
                 sid: str, token: str, frames: list[int], shape: list[int]) -> None:
    """Runs `command` (which takes a relay away) and checks that the round trip goes on."""
    shown = " ".join([os.path.basename(command[0]), *command[1:]])
    started = time.monotonic()
    done = subprocess.run(command, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise RoundTripError(f"`{shown}` exited with {done.returncode}")
    print(f"ok   ran `{shown}` ({time.monotonic() - started:.1f} s)")

    for n, sub in enumerate(subs, 1):
        if still_open(sub):
            print(f"ok   subscription {n}: still open (its relay is the one left)")
            continue
        # As the page does: a new connection through the proxy, the same session and token.
        reopened = time.monotonic()
        subs[n - 1], subscribed = client.subscribe(sockets, sid, token)
        where = f"relay /ws/subscribe (subscription {n}, opened again)"
        if subscribed.get("buffered") != len(frames):
            raise RoundTripError(f"{where}: {subscribed.get('buffered')} images buffered, expected the session's {len(frames)}")
        replay = []
        for _ in frames:
            rec = recv_until(subs[n - 1], "reconstructed_image", None, time.monotonic() + client.timeout, where)
            decode_jpeg_data_url(rec.get("image_base64", ""))
            replay.append(rec.get("frame_id"))
        if replay != frames:
            raise RoundTripError(f"{where}: replayed frames {replay}, expected {frames} in frame order")
        print(f"ok   subscription {n}: closed with its relay; opened again through the proxy in "
              f"{1000 * (time.monotonic() - reopened):.0f} ms, replayed frames {replay} (JPEG)")

    send_image(client, simws, subs, sid, token, frames[-1] + 1, shape)
    print(f"ok   same session after the loss: frame {frames[-1] + 1} reached {len(subs)} subscription(s) through the proxy")

    slowest = 0.0
    for _ in range(4):
        started = time.monotonic()
        health = client.healthz("relay (after the loss)", client.relay)
        slowest = max(slowest, time.monotonic() - started)
    print(f"ok   relay /healthz after the loss: 4 of 4 answered ok (session store {health.get('session_store')}), "
          f"slowest in {1000 * slowest:.0f} ms")
    sid2, token2 = client.new_session()
    with contextlib.ExitStack() as fresh:
        sub, subscribed = client.subscribe(fresh, sid2, token2)
        if subscribed.get("buffered") != 0:
            raise RoundTripError(f"fresh session {sid2}: {subscribed.get('buffered')} images buffered, expected 0")
        send_image(client, fresh.enter_context(client.sim_socket()), [sub], sid2, token2, 1, shape)
    print(f"ok   fresh session {sid2} after the loss: session, subscription, stimulus, reconstructed JPEG")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], usage="%(prog)s [options] [-- COMMAND ...]")
    p.add_argument("--relay-port", type=int, default=8080)
    p.add_argument("--sim-port", type=int, default=8081)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds each step may take")
    p.add_argument("--expect-dataset", action="store_true", help="the simulation-service must serve the dataset sources (waiting for their preparation)")
    p.add_argument("--dataset-wait", type=float, default=1800, help="seconds to wait for the dataset's preparation (default 1800)")
    p.add_argument("--expect-session-store", metavar="KIND", help="the relay's /healthz must report this session store (memory, redis)")
    p.add_argument("--subscribers", type=int, default=1, help="subscriptions to the session, each on its own connection")
    # Everything after `--` is the command that takes a relay away (argparse would read
    # its options as ours).
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args, failover = p.parse_args(argv[:cut]), argv[cut + 1:]
    if args.subscribers < 1:
        p.error("--subscribers must be at least 1")
    try:
        run(args, failover)
    except (RoundTripError, WebSocketException, OSError, ValueError) as e:
        print(f"FAIL round trip: {e}", file=sys.stderr)
        return 1
    print("ok   round trip complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
