"""Throwaway cluster certificates for ``mishards up --cluster-tls-dir DIR``: when DIR holds none, a CA and one
certificate (server and client usage) for the local cluster are written there, in the layout of a Kubernetes TLS
Secret (``ca.crt``, ``tls.crt``, ``tls.key``; the CA's key stays in ``ca.key`` beside them, mode 0600).

Needs the ``cryptography`` package (a dev dependency); without it, generation is refused with a message naming
the files to provide instead."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CLUSTER_NAME = "mishards-cluster"  # the DNS name every generated cluster certificate carries
FILES = ("ca.crt", "tls.crt", "tls.key")


@dataclass(frozen=True, slots=True)
class ClusterFiles:
    ca: Path
    cert: Path
    key: Path


def cluster_files(folder: Path) -> ClusterFiles:
    return ClusterFiles(folder / "ca.crt", folder / "tls.crt", folder / "tls.key")


def subject_names(hosts: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The DNS names and IP addresses a local cluster's certificate names: the hosts given (each where it
    belongs), ``localhost``, 127.0.0.1, ::1 and :data:`CLUSTER_NAME`."""
    dns, ips = [CLUSTER_NAME, "localhost"], ["127.0.0.1", "::1"]
    for host in hosts:
        try:
            ip = str(ipaddress.ip_address(host.strip("[]")))
        except ValueError:
            if host and host not in dns:
                dns.append(host)
            continue
        if ip not in ips and not ipaddress.ip_address(ip).is_unspecified:
            ips.append(ip)
    return tuple(dns), tuple(ips)


def ensure_cluster_files(folder: Path, hosts: tuple[str, ...], days: int = 365) -> tuple[ClusterFiles, bool]:
    """The cluster files of ``folder``: used as they are when all three exist, else (none of them there) made
    now. Returns them and whether they were made. Refuses a partial set (never overwrites a file)."""
    files = cluster_files(folder)
    present = [p for p in (files.ca, files.cert, files.key) if p.exists()]
    if len(present) == 3:
        return files, False
    present += [p for p in (folder / "ca.key",) if p.exists()]
    if present:
        raise ValueError(f"{folder} holds {', '.join(p.name for p in present)} but not all of {', '.join(FILES)}: "
                         "provide the missing files or use an empty folder")
    _generate(folder, files, hosts, days)
    return files, True


def _generate(folder: Path, files: ClusterFiles, hosts: tuple[str, ...], days: int) -> None:
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        raise ValueError(f"generating cluster certificates needs the 'cryptography' package; or put {', '.join(FILES)} "
                         f"in {folder} yourself (README, section TLS)") from None
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mishards local cluster CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    dns, ips = subject_names(hosts)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CLUSTER_NAME)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256()))

    def private(path: Path, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)

    pem = serialization.Encoding.PEM
    private(folder / "ca.key", ca_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    private(files.key, key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    files.ca.write_bytes(ca.public_bytes(pem))
    files.cert.write_bytes(cert.public_bytes(pem))
    log.info("cluster certificates generated in %s (names %s)", folder, ", ".join([*dns, *ips]))
