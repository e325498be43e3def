#!/usr/bin/env python3
"""How server/tests/vectors/hsm_blobs.txt was made (kept as a record; not run by the tests).

The blobs are built in software, independently of the HSM layer, from the format in
server/src/hsm/blob.rs: AES-256-GCM and AES-KW-PAD (RFC 5649) under a KEK that is published
here and is for tests only. Running it again draws a new RSA key and so writes different
vectors: the committed file must stay as it is (it stands for data already stored).

Needs python3-cryptography. Usage: make_hsm_blobs.py > hsm_blobs.txt
"""
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

VERSION = b"\x01"
ALG_AES_GCM_KEK = b"\x01"
ALG_AES_KWP_KEK = b"\x02"
ALG_TOKEN_RSA_KEY = b"\x03"

kek = bytes(range(0x00, 0x20))
iv = bytes(range(0x40, 0x4C))
aad = b"account:42/share:d1"
plaintext = b"golden d1'' share (test only)"
sealed = VERSION + ALG_AES_GCM_KEK + iv + AESGCM(kek).encrypt(iv, plaintext, aad)

key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pkcs8 = key.private_bytes(
    serialization.Encoding.DER,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
)
wrapped = VERSION + ALG_AES_KWP_KEK + aes_key_wrap_with_padding(kek, pkcs8)
modulus = key.public_key().public_numbers().n.to_bytes(256, "big")

share_key_id = bytes(range(0xF0, 0x100))
share_key_blob = VERSION + ALG_TOKEN_RSA_KEY + share_key_id

print("""\
# Golden vectors of the blobs the HSM layer stores in the database (server/src/hsm/blob.rs).
# They stand for data already stored: server/tests/hsm_softhsm.rs (stored_blobs_golden_vectors)
# imports the KEK below into a fresh token and opens them through the HSM layer, on SoftHSM
# and on hsm-sim. If that test fails, the change breaks existing data directories: do not
# edit these values; add a new version or algorithm byte and keep reading these.
# Made in software by make_hsm_blobs.py. TEST ONLY: this KEK is public.""")
for name, value in [
    ("kek", kek),
    ("sealed_aad", aad),
    ("sealed_plaintext", plaintext),
    ("sealed_blob", sealed),
    ("server_key_modulus", modulus),
    ("server_key_blob", wrapped),
    ("share_key_id", share_key_id),
    ("share_key_blob", share_key_blob),
]:
    print(f"{name} = {value.hex()}")
