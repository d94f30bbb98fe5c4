#!/usr/bin/env python3
"""Writes the hand-made seeds of the fuzz corpora (corpus/<target>/seed-*).

The corpora also hold inputs the fuzzer found (files named by their SHA-1, as libFuzzer
names them); this script only (re)writes the seeds, so run it after changing an input
format in crates/wsgate-gateway/src/fuzzing.rs. Standard library only.
"""

import base64
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def write(target, name, data):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("latin-1"))


def frame(opcode, payload=b"", fin=True, mask=b"\x37\xfa\x21\x3d", rsv=0, length=None):
    n = len(payload) if length is None else length
    out = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if mask else 0
    if n < 126:
        out += bytes([bit | n])
    elif n < 1 << 16:
        out += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        out += bytes([bit | 127]) + struct.pack(">Q", n)
    if mask:
        out += mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    else:
        out += payload
    return out


def frames_seeds():
    client, upstream, client_ext = b"\x00", b"\x01", b"\x02"
    close = lambda code, reason=b"", **kw: frame(8, struct.pack(">H", code) + reason, **kw)
    seeds = {
        "text": client + b"\x05" + frame(1, b"hello"),
        "binary-16bit-length": client + b"\x40" + frame(2, bytes(300)),
        "binary-64bit-length-cut": client + b"\x11" + frame(2, bytes(100), length=1 << 16),
        "fragments-and-ping": client + b"\x03" + frame(1, b"a", fin=False) + frame(9, b"p") + frame(0, b"b", fin=False) + frame(0, b"c"),
        "close-with-reason": client + b"\x01" + frame(1, b"x") + close(4000, b"bye") + b"after",
        "close-empty": client + b"\x02" + frame(8),
        "close-one-byte": client + b"\x02" + frame(8, b"\x03"),
        "unmasked-client": client + b"\x07" + frame(1, b"ok") + frame(1, b"clear", mask=None),
        "reserved-opcode": client + b"\x07" + frame(3),
        "reserved-bits": client + b"\x07" + frame(1, b"z", rsv=4),
        "reserved-bits-negotiated": client_ext + b"\x07" + frame(1, b"z", rsv=4),
        "long-ping": client + b"\x09" + frame(9, bytes(126)),
        "fragmented-ping": client + b"\x09" + frame(9, b"", fin=False),
        "lone-continuation": client + b"\x09" + frame(0, b"c"),
        "new-message-inside-one": client + b"\x09" + frame(1, b"a", fin=False) + frame(2, b"b"),
        "frame-too-big": client + b"\x09" + frame(2, length=1 << 17),
        "length-top-bit": client + b"\x09" + frame(2, length=1 << 63),
        "cut-mid-frame": client + b"\x02" + frame(2, bytes(50))[:20],
        "cut-mid-header": client + b"\x02" + frame(2, bytes(300))[:3],
        "ping-flood": client + b"\x01" + frame(9) * 5,
        "upstream-text": upstream + b"\x04" + frame(1, b"hi", mask=None) + close(1000, mask=None),
        "upstream-masked": upstream + b"\x04" + frame(1, b"hi"),
        "upstream-fragments": upstream + b"\x0d" + frame(2, bytes(200), fin=False, mask=None) + frame(10, mask=None) + frame(0, bytes(10), mask=None),
    }
    for name, data in seeds.items():
        write("frame_scanner", name, data)


def request(target="/ctx/1.0", extra=(), start=None, host="gw"):
    lines = [start or f"GET {target} HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {KEY}", "Sec-WebSocket-Version: 13"]
    return ("\r\n".join(lines + list(extra)) + "\r\n\r\n").encode("latin-1")


def upgrade_request_seeds():
    seeds = {
        "valid": request(),
        "default-version": request("/ctx/chat?room=1"),
        "pipelined-frame": request() + frame(1, b"early"),
        "access-token": request("/ctx/1.0/x?a=1&access_token=abc&b=2"),
        "two-access-tokens": request("/ctx/1.0?access_token=a&access_token=b"),
        "encoded-token-names": request("/ctx/1.0?a=1&%61ccess_token=smuggled;access%5Ftoken=x",
                                       ["Authorization: Bearer a.b.c"]),
        "bearer": request(extra=["Authorization: Bearer abc.def.ghi"]),
        "two-authorizations": request(extra=["Authorization: Bearer a", "Authorization: Bearer b"]),
        "basic": request(extra=["Authorization: Basic YTpi"]),
        "api-key": request(extra=["apikey: k"]),
        "underscore-identity": request(extra=["X_Wsgate_Plan: Gold", "x_forwarded_for: 10.0.0.1", "Sec_WebSocket_Key: x"]),
        "identity-headers": request(extra=["X-Wsgate-Plan: Gold", "X-Forwarded-For: 10.0.0.1, 10.0.0.2"]),
        "non-utf8-value": request(extra=["X-Name: caf\xe9 \xff"]),
        "connection-named": request(extra=["Connection: keep-alive, X-Hop", "X-Hop: secret"]),
        "protocols-extensions": request(extra=["Sec-WebSocket-Protocol: chat, superchat",
                                               "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo"]),
        "dot-segments": request("/ctx/1.0/.%2e/%2e./..%2f..;/%5c../admin"),
        "dots-in-names": request("/ctx/1.0/a..b/.well-known/%252e%252e"),
        "http10": request(start="GET /ctx/1.0 HTTP/1.0"),
        "post": request(start="POST /ctx/1.0 HTTP/1.1"),
        "absolute-form": request(start="GET http://gw/ctx/1.0 HTTP/1.1"),
        "body": request(extra=["Content-Length: 5"]) + b"hello",
        "chunked": request(extra=["Transfer-Encoding: chunked"]),
        "two-keys": request(extra=[f"Sec-WebSocket-Key: {KEY}"]),
        "version-8": request().replace(b"Version: 13", b"Version: 8"),
        "short-key": request().replace(KEY.encode(), b"c2hvcnQ="),
        "no-host": request().replace(b"Host: gw\r\n", b""),
        "ipv6-host": request(host="[::1]:9099"),
        "many-headers": request(extra=[f"X-{i}: {i}" for i in range(70)]),
        "tls-hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        "truncated": request()[:40],
    }
    for name, data in seeds.items():
        write("upgrade_request", name, data)


def b64(value):
    raw = value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt_seeds():
    claims = {"iss": "https://localhost:9443", "sub": "c", "aud": "wsgate", "exp": 1800000000, "iat": 1799990000,
              "nbf": 1799990000, "jti": "j1", "client_id": "c", "application_id": "a", "scope": "chat read"}
    sig = b64(bytes(64))

    def token(header, body=claims, signature=sig):
        return f"{b64(header)}.{b64(body)}.{signature}"

    seeds = {
        "control-plane": token({"alg": "ES256", "typ": "at+jwt", "kid": "k"}),
        "typ-jwt": token({"alg": "ES256", "typ": "JWT", "kid": "k"}),
        "typ-media": token({"alg": "ES256", "typ": "application/at+jwt", "kid": "k"}),
        "typ-id-token": token({"alg": "ES256", "typ": "id_token+jwt", "kid": "k"}),
        "no-typ": token({"alg": "ES256", "kid": "k"}),
        "alg-none": token({"alg": "none", "kid": "k"}, signature=""),
        "aud-list": token({"alg": "ES256", "kid": "k"}, dict(claims, aud=["x", "wsgate"])),
        "external": token({"alg": "RS256", "kid": "r"}, dict(claims, iss="https://idp", azp="c", client_id=None)),
        "extreme-times": token({"alg": "ES256", "kid": "k"}, dict(claims, exp=9223372036854775807, nbf=-9223372036854775808)),
        "wrong-types": token({"alg": 1, "kid": []}, dict(claims, exp="soon", aud=7)),
        "no-exp": token({"alg": "ES256", "kid": "k"}, {k: v for k, v in claims.items() if k != "exp"}),
        "padded-base64": token({"alg": "ES256", "kid": "k"}) + "==",
        "four-parts": token({"alg": "ES256", "kid": "k"}) + ".x",
        "not-json": f"{b64(b'not json')}.{b64(b'[]')}.{sig}",
        "empty-parts": "..",
    }
    for name, data in seeds.items():
        write("jwt", name, data)


if __name__ == "__main__":
    frames_seeds()
    upgrade_request_seeds()
    jwt_seeds()
