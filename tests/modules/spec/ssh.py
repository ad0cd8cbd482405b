"""Real SSH keys for tests, made with `cryptography`: private keys in the formats Flux reads, known_hosts lines."""

from __future__ import annotations

import base64
import functools
import os
import struct
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from modules.keyvault import SecretValue
from tests.conftest import CanaryKeyVault

FORMATS = {"openssh": PrivateFormat.OpenSSH, "pkcs8": PrivateFormat.PKCS8, "pkcs1": PrivateFormat.TraditionalOpenSSL}


@functools.cache
def key(algorithm: str) -> ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def private_key(algorithm: str = "ed25519", fmt: str = "openssh", passphrase: bytes | None = None) -> str:
    """`algorithm`'s key as `-----BEGIN ... PRIVATE KEY-----` text, encrypted with `passphrase` if given."""
    encryption = BestAvailableEncryption(passphrase) if passphrase else NoEncryption()
    return key(algorithm).private_bytes(Encoding.PEM, FORMATS[fmt], encryption).decode()


def public_key(algorithm: str = "ed25519") -> str:
    """`ssh-ed25519 AAAA...`: the key type and the base64 key."""
    return key(algorithm).public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def known_hosts_line(host: str = "github.com", algorithm: str = "ed25519") -> str:
    """What `ssh-keyscan HOST` prints for a host with this key."""
    return f"{host} {public_key(algorithm)}"


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def encrypted_openssh_key() -> str:
    """An ed25519 key as `ssh-keygen -N PASSPHRASE` writes it (aes256-ctr, bcrypt). cryptography encrypts one only
    with the bcrypt package, which is not installed: the envelope is written here around the real public key, with
    random bytes as the encrypted part, which no reader gets to without the passphrase."""
    public = base64.b64decode(public_key("ed25519").split()[1])
    blob = (
        b"openssh-key-v1\0"
        + _ssh_string(b"aes256-ctr")
        + _ssh_string(b"bcrypt")
        + _ssh_string(_ssh_string(os.urandom(16)) + struct.pack(">I", 16))
        + struct.pack(">I", 1)
        + _ssh_string(public)
        + _ssh_string(os.urandom(160))  # a whole number of aes blocks
    )
    text = base64.b64encode(blob).decode()
    lines = [text[start : start + 70] for start in range(0, len(text), 70)]
    return "\n".join(["-----BEGIN OPENSSH PRIVATE KEY-----", *lines, "-----END OPENSSH PRIVATE KEY-----", ""])


class DeployKeyVault(CanaryKeyVault):
    """The canary Key Vault, but for a deploy key (a secret named `*deploy-key`), which reads as a real SSH private
    key: the program checks that value as it reads it, and the canary is none."""

    def get_secret(self, ref: Any) -> Any:
        read = super().get_secret(ref)
        return SecretValue(DEPLOY_KEY, read.version) if ref.secret.endswith("deploy-key") else read


DEPLOY_KEY = private_key("ed25519", "openssh")
