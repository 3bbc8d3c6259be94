#!/usr/bin/env python3
"""One real round trip through a running V1 system, as a browser would make it.

1. `GET /healthz` of both services and the frontend page at the relay's `/`; `GET /api/info` of the simulation-service until it
   reports its link to the relay (and, with --expect-dataset, the recorded source).
2. `POST /api/sessions` on the relay: a session id and its token.
3. Subscribe to the session on the relay (`/ws/subscribe`), wait for `subscribed`.
4. Send a `stimulus` with a JPEG image to the simulation-service (`/ws`), wait for its
   `response` (payload length = lags x channels of /api/info).
5. Wait for the session's `reconstructed_image` on the subscription, decode its data URL
   and check that it is a JPEG image of sensible size.
6. With --expect-dataset: a `stimulus` without an image (`source: random`) must be
   answered from the dataset.

Prints one line per step and exits 0 on success, 1 with the reason on failure.
Needs the PyPI packages `websockets` (>= 13) and `Pillow`.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import sys
import time
import urllib.error
import urllib.request

from PIL import Image
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect


class RoundTripError(Exception):
    """A step of the round trip did not give what the protocol promises."""


def http_json(method: str, url: str, timeout: float = 10.0) -> tuple[int, dict]:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
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


def run(args: argparse.Namespace) -> None:
    relay = f"http://127.0.0.1:{args.relay_port}"
    sim = f"http://127.0.0.1:{args.sim_port}"
    timeout = args.timeout

    for name, base in (("relay", relay), ("simulation", sim)):
        _, health = http_json("GET", f"{base}/healthz")
        if health.get("status") != "ok":
            raise RoundTripError(f"{name} /healthz: status {health.get('status')!r}, expected 'ok'")
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
    if args.expect_dataset and "recorded" not in (info.get("sources") or []):
        raise RoundTripError(f"simulation /api/info: sources {info.get('sources')!r} lack 'recorded'; the dataset volume was not prepared")

    status, session = http_json("POST", f"{relay}/api/sessions")
    if status != 201 or not session.get("session_id") or not session.get("token"):
        raise RoundTripError(f"relay POST /api/sessions: HTTP {status}, body {session!r}")
    sid, token = session["session_id"], session["token"]
    print(f"ok   relay POST /api/sessions: session {sid}")

    with connect(f"ws://127.0.0.1:{args.relay_port}/ws/subscribe", open_timeout=timeout) as sub, \
         connect(f"ws://127.0.0.1:{args.sim_port}/ws", open_timeout=timeout, max_size=2**24) as simws:
        sub.send(json.dumps({"type": "subscribe", "session_id": sid, "token": token}))
        subscribed = recv_until(sub, "subscribed", None, time.monotonic() + timeout, "relay /ws/subscribe")
        print(f"ok   relay /ws/subscribe: subscribed, {subscribed.get('buffered')} buffered")

        started = time.monotonic()
        simws.send(json.dumps({"type": "stimulus", "session_id": sid, "token": token, "frame_id": 1, "image": test_image()}))
        resp = recv_until(simws, "response", 1, time.monotonic() + timeout, "simulation /ws")
        payload = resp.get("payload") or []
        if len(payload) != shape[0] * shape[1]:
            raise RoundTripError(f"response payload has {len(payload)} values, expected {shape[0]}x{shape[1]}")
        print(f"ok   simulation /ws: response with {len(payload)} values after {1000 * (time.monotonic() - started):.0f} ms")

        rec = recv_until(sub, "reconstructed_image", 1, time.monotonic() + timeout, "relay /ws/subscribe")
        img = decode_jpeg_data_url(rec.get("image_base64", ""))
        if min(img.size) < 8:
            raise RoundTripError(f"reconstructed JPEG is only {img.size[0]}x{img.size[1]} pixels")
        print(f"ok   relay /ws/subscribe: reconstructed_image, JPEG {img.size[0]}x{img.size[1]} {img.mode}, "
              f"{1000 * (time.monotonic() - started):.0f} ms after the stimulus")

        if args.expect_dataset:
            simws.send(json.dumps({"type": "stimulus", "session_id": sid, "token": token, "frame_id": 2, "source": "random"}))
            resp = recv_until(simws, "response", 2, time.monotonic() + timeout, "simulation /ws")
            if resp.get("source") not in ("dataset", "recorded"):
                raise RoundTripError(f"random stimulus answered from source {resp.get('source')!r}, expected the dataset")
            rec = recv_until(sub, "reconstructed_image", 2, time.monotonic() + timeout, "relay /ws/subscribe")
            decode_jpeg_data_url(rec.get("image_base64", ""))
            print(f"ok   random frame from the dataset: response ({resp.get('source')}) and reconstructed JPEG")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--relay-port", type=int, default=8080)
    p.add_argument("--sim-port", type=int, default=8081)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds each step may take")
    p.add_argument("--expect-dataset", action="store_true", help="the simulation-service must serve the dataset sources")
    args = p.parse_args()
    try:
        run(args)
    except (RoundTripError, WebSocketException, OSError, ValueError) as e:
        print(f"FAIL round trip: {e}", file=sys.stderr)
        return 1
    print("ok   round trip complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
