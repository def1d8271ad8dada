"""``mishards import FILE --collection NAME [...]``: load a vector file into a collection (see README,
"Import and benchmark tools")."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mishards_tools.connection import Endpoint, ToolError
from mishards_tools.dataset_types import DatasetError
from mishards_tools.datasets import SUFFIXES, ReaderOptions
from mishards_tools.importer import ImportSettings, format_summary, run_import
from mishards_tools.journal import JournalError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mishards import",
        description=f"Load vectors ({', '.join(SUFFIXES)}) into a collection of any Milvus 1.1 endpoint in "
                    f"parallel batches; rerun the same command to resume an interrupted import.")
    p.add_argument("file", type=Path)
    p.add_argument("--collection", required=True)
    p.add_argument("--uri", default="127.0.0.1:19530", help="HOST:PORT of a node or proxy (default %(default)s)")
    p.add_argument("--create", action="store_true", help="create the collection (and partition) if missing")
    p.add_argument("--metric", help="metric of a created collection (default: the file's, else L2 / HAMMING)")
    p.add_argument("--index-file-size", type=int, default=1024, help="of a created collection, MB (%(default)s)")
    p.add_argument("--partition", default="", help="partition tag to insert into")
    p.add_argument("--batch", type=int, default=10_000, help="rows per insert (default %(default)s)")
    p.add_argument("--parallel", type=int, default=2, help="inserts in flight (default %(default)s)")
    p.add_argument("--state-dir", type=Path, help="where the resume journal lives (default: next to FILE)")
    p.add_argument("--restart", action="store_true", help="ignore an existing journal and send everything")
    p.add_argument("--id-start", type=int, default=0,
                   help="a file without ids: row r gets id ID_START + r (default %(default)s)")
    p.add_argument("--retries", type=int, default=3, help="attempts after a failed batch (default %(default)s)")
    p.add_argument("--dataset", default="train", help="HDF5 dataset to import (default %(default)s)")
    p.add_argument("--id-column", default="id", help="Parquet/CSV id column (default %(default)s)")
    p.add_argument("--vector-column", default="vector",
                   help="Parquet/CSV vector column (default %(default)s; else columns v0..vN)")
    p.add_argument("--token", help="bearer token of an endpoint with authentication")
    p.add_argument("--tls", action="store_true", help="TLS with the system's CA certificates")
    p.add_argument("--tls-ca", type=Path, help="TLS, trusting this CA certificate (PEM)")
    p.add_argument("--timeout", type=float, help="deadline of each call, seconds")
    return p


def settings_of(args: argparse.Namespace) -> ImportSettings:
    endpoint = Endpoint(args.uri, args.token, bool(args.tls), args.tls_ca, args.timeout)
    reader = ReaderOptions(args.dataset, args.id_column, args.vector_column)
    return ImportSettings(args.file, args.collection, endpoint, args.create, args.metric, args.index_file_size,
                          args.partition, args.batch, args.parallel, args.state_dir, args.id_start, args.retries,
                          args.restart, reader)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        summary = run_import(settings_of(args), sys.stderr)
    except (DatasetError, JournalError) as exc:
        print(f"mishards import: refused, nothing sent: {exc}", file=sys.stderr)
        return 2
    except ToolError as exc:
        print(f"mishards import: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nmishards import: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    print(format_summary(summary))
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
