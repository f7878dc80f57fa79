"""Checks testdata/lease-vectors.json with Python's cryptography package: a
second, independent implementation of the certificate, response-signature
and lease formats that the README specifies (run by servercert's tests
when python3 and cryptography are installed)."""
import base64
import datetime
import hashlib
import json
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


v = json.load(open(sys.argv[1]))
cert = b64url(v["certificate"]["encoded"])
assert len(cert) == 121 and cert[0] == 1
license_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(v["license_public_key_base64"]))
license_key.verify(cert[57:], b"CAIO-server-cert-v1\x00" + cert[:57])
server_key = Ed25519PublicKey.from_public_bytes(cert[9:41])
assert cert[9:41].hex() == v["server_public_key_hex"]

r = v["response"]
# Version 2: the answer names the license key and instance it is about; a
# client builds the message from what it asked, so an answer about another
# key or instance does not verify.
route, nonce, instance = r["route"].encode(), r["nonce"].encode(), r["instance_id"].encode()
message = (b"CAIO-response-v2\x00" + struct.pack(">H", r["status"])
           + bytes([len(route)]) + route + bytes([len(nonce)]) + nonce
           + struct.pack(">q", int(r["x_caio_server_time"]))
           + hashlib.sha256(r["license_key"].strip().encode()).digest()
           + bytes([len(instance)]) + instance
           + hashlib.sha256(r["body"].encode()).digest())
assert message.hex() == r["signed_message_hex"]
server_key.verify(b64url(r["signature"]), message)
other = message.replace(b"\x06node-1", b"\x06node-2")
assert other != message
try:
    server_key.verify(b64url(r["signature"]), other)
    sys.exit("an answer about another instance verifies")
except InvalidSignature:
    pass

def parse_time(s):
    return int(datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp())


for name, key in (("online_lease", server_key), ("offline_lease", license_key), ("grace_overage_lease", server_key)):
    token = b64url(v[name]["token"])
    claims = v[name]["claims"]
    version = token[0]
    assert version in (1, 2)
    # Each version signs under its own context.
    key.verify(token[-64:], b"CAIO-lease-v%d\x00" % version + token[:-64])
    n = token[58]
    assert token[59:59 + n].decode() == claims["instance_id"]
    assert token[26:58].hex() == hashlib.sha256(v["license_key"].encode()).hexdigest()
    issued, renew, expires = struct.unpack(">qqq", token[59 + n:59 + n + 24])
    assert expires == parse_time(claims["expires_at"])
    if version == 1:
        assert len(token) == 59 + n + 24 + 64
        continue
    # Version 2: the license's end, the grace's end, and the flags (bit 0:
    # an overage seat). In grace from the license's end to the grace's.
    assert len(token) == 59 + n + 24 + 17 + 64
    license_ends, grace_ends, flags = struct.unpack(">qqB", token[59 + n + 24:59 + n + 41])
    assert license_ends == parse_time(claims["license_ends_at"])
    assert grace_ends == parse_time(claims["grace_ends_at"])
    assert flags & ~1 == 0 and bool(flags & 1) == claims.get("overage", False)
    assert license_ends <= grace_ends <= license_ends + 90 * 86400 and expires <= grace_ends
    # A verifier that reads the flag must not be fooled by clearing it.
    forged = bytearray(token)
    forged[59 + n + 40] = 0
    try:
        key.verify(bytes(forged[-64:]), b"CAIO-lease-v2\x00" + bytes(forged[:-64]))
        sys.exit("a lease with its overage flag cleared verifies")
    except InvalidSignature:
        pass
print("ok")
