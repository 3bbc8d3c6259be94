#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into seeds/<target>/.

protocol_decode: every example message of docs/protocol.md (one file each), plus a few
near misses (NaN literal, unknown field, wrong type). data_url_image: small JPEG and PNG
images written by Pillow (so the seeds do not depend on our own encoder), as raw bytes
and as data URLs, plus a PNG header claiming 100000 x 100000 pixels.
Run: python3 make_seeds.py (needs Pillow).
"""
import base64
import io
import os
import struct
import zlib

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = "9b1e" * 16

MESSAGES = [
    '{"type":"waveform_latent","session_id":"xyz123","payload":[0.023,0.55,-0.011]}',
    '{"type":"reconstructed_image","session_id":"xyz123","image_base64":"data:image/jpeg;base64,/9j/4AAQ"}',
    '{"type":"waveform_latent","session_id":"3f9c2a7be0d14c55a1e2f0b9c8d7e6a5","payload":[0.4,1.2,0.5,0.1,0.0,2.5],"frame_id":7,"shape":[2,3],"sent_at_ms":1764140000123,"source":"client"}',
    '{"type":"reconstructed_image","session_id":"xyz123","image_base64":"data:image/jpeg;base64,/9j/4AAQ","frame_id":7,"sent_at_ms":1764140000123,"latency_ms":3.412}',
    '{"type":"ack","session_id":"3f9c","frame_id":7}',
    '{"type":"delivered","session_id":"3f9c","frame_id":7}',
    '{"type":"stimulus","session_id":"3f9c","token":"%s","frame_id":7,"image":"data:image/jpeg;base64,/9j/4AAQ"}' % TOKEN,
    '{"type":"stimulus","session_id":"3f9c","token":"%s","frame_id":8,"source":"random"}' % TOKEN,
    '{"type":"response","session_id":"3f9c","frame_id":7,"payload":[0.4,1.2],"shape":[1,2],"input_image":"data:image/png;base64,iVBO","latency_ms":2.113,"source":"recorded","sent_at_ms":1764140000123,"recorded":{"movie":0,"segment":3,"frame":17}}',
    '{"type":"start_stream","session_id":"3f9c","token":"%s","source":"recorded","fps":30}' % TOKEN,
    '{"type":"stop_stream","session_id":"3f9c"}',
    '{"type":"subscribe","session_id":"3f9c","token":"%s"}' % TOKEN,
    '{"type":"subscribed","session_id":"3f9c","buffered":12}',
    '{"type":"error","code":"payload_length","message":"payload has 3 values","session_id":"xyz123","frame_id":7}',
    '{"type":"waveform_latent","session_id":"a","payload":[1.0,NaN,1e39]}',
    '{"type":"waveform_latent","session_id":"a","payload":[1],"colour":"red"}',
    '{"type":5,"session_id":"a"}',
    'http://localhost:8080',
]


def png_header_only(w, h):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def encoded(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def main():
    out = os.path.join(HERE, "seeds", "protocol_decode")
    os.makedirs(out, exist_ok=True)
    for i, m in enumerate(MESSAGES):
        with open(os.path.join(out, "msg%02d.json" % i), "w") as f:
            f.write(m)

    out = os.path.join(HERE, "seeds", "data_url_image")
    os.makedirs(out, exist_ok=True)
    gray = Image.linear_gradient("L").resize((16, 12))
    rgb = Image.merge("RGB", (gray, gray.transpose(Image.FLIP_LEFT_RIGHT), gray))
    images = {
        "gray.png": encoded(gray, "PNG"),
        "rgb.png": encoded(rgb, "PNG"),
        "palette.png": encoded(rgb.convert("P"), "PNG"),
        "gray16.png": encoded(gray.convert("I;16"), "PNG"),
        "gray.jpg": encoded(gray, "JPEG", quality=80),
        "rgb.jpg": encoded(rgb, "JPEG", quality=80),
        "progressive.jpg": encoded(rgb, "JPEG", quality=60, progressive=True),
        "huge_header.png": png_header_only(100000, 100000),
    }
    for name, data in images.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        mime = "image/png" if name.endswith(".png") else "image/jpeg"
        with open(os.path.join(out, name + ".url"), "w") as f:
            f.write("data:%s;base64,%s" % (mime, base64.b64encode(data).decode()))


if __name__ == "__main__":
    main()
