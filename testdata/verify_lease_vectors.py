"""Checks testdata/lease-vectors.json with Python's cryptography package: a
second, independent implementation of the certificate, response-signature
and lease formats that the README specifies (run by servercert's tests
when python3 and cryptography are installed)."""
import base64
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

for name, key in (("online_lease", server_key), ("offline_lease", license_key)):
    token = b64url(v[name]["token"])
    key.verify(token[-64:], b"CAIO-lease-v1\x00" + token[:-64])
    n = token[58]
    assert token[59:59 + n].decode() == v[name]["claims"]["instance_id"]
    assert token[26:58].hex() == hashlib.sha256(v["license_key"].encode()).hexdigest()
print("ok")
