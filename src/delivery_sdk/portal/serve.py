"""``delivery-sdk portal``: the document page under uvicorn (the court's reverse proxy terminates TLS)."""

from __future__ import annotations

import argparse
import logging
import sys

from .._exceptions import ValidationError
from ..printing.package import FolderDocumentSource
from .app import create_app
from .config import ENV, PortalConfig

__all__ = ["run_from_args"]


def run_from_args(args: argparse.Namespace) -> int:
    """Serve until stopped; 2 when the configuration is incomplete (nothing is started then)."""
    try:
        config = PortalConfig.from_env()
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    folder = args.documents or _env_documents()
    if not folder:
        print(f"error: the document folder is required (--documents or {ENV['documents']})", file=sys.stderr)
        return 2
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    app = create_app(config, FolderDocumentSource(folder), store=args.store)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        root_path=args.root_path,
        proxy_headers=True,
        forwarded_allow_ips=args.forwarded_allow_ips,
        access_log=False,  # the portal writes its own access log, without tokens or personal data
        server_header=False,
        log_level="info",
    )
    return 0


def _env_documents() -> str | None:
    import os

    return os.environ.get(ENV["documents"]) or None
