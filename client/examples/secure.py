"""TLS and a token: a server started with --tls-cert/--tls-key and --allow-anonymous none.

    MISHARDS_TOKEN=... python client/examples/secure.py HOST PORT CA.pem [CLIENT.crt CLIENT.key]
"""

from __future__ import annotations

import os
import sys

from mishards_client import Milvus, Status


def main(host: str, port: str, ca: str, cert: str | None = None, key: str | None = None) -> None:
    with Milvus(host, port, tls_ca=ca, tls_cert=cert, tls_key=key, token=os.environ.get("MISHARDS_TOKEN")) as client:
        status, names = client.list_collections()
        if status.code == Status.PERMISSION_DENIED:
            print("the token's role does not allow this (or no token was given)")
        print(status, names)


if __name__ == "__main__":
    main(*sys.argv[1:6])
