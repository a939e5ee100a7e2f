"""Checks of command-line input that run before a model loads, each failing with one line: argparse
errors without the usage block, numbers, listen addresses, output folders and results tables."""

from __future__ import annotations

import argparse
import errno
import math
import os
import socket
import sys
import tempfile
from pathlib import Path


class OneLineParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line ("PROG: error: ... (see PROG --help)"), exit 2,
    without the usage block argparse prints first."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (never nan or inf)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def port_number(text: str) -> int:
    """argparse type: a TCP port, 1-65535."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 1 to 65535, got {text!r}")
    return value


def check_listen(host: str, port: int) -> None:
    """Raise ValueError (one line) unless a server could listen on `host`:`port` now: `host` must be
    an address or name of this machine, and the port free."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        raise ValueError(f"--host {host!r} is not a valid IP address or host name.") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        if sys.platform != "win32":  # as uvicorn does: a port in TIME_WAIT is free
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ValueError(f"port {port} on {host} is in use; choose another with --port.") from None
            if error.errno == errno.EADDRNOTAVAIL:
                raise ValueError(f"--host {host!r} is not an address of this machine.") from None
            raise ValueError(f"cannot listen on {host}:{port}: {error.strerror or error}.") from None


def check_writable_folder(folder: Path, what: str) -> None:
    """Raise ValueError (one line) unless files can be created in `folder` (created if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(f"{what}: cannot write in {folder} ({error.strerror or type(error).__name__}).") from None


def check_results_out(out: Path, prompts_csv: Path | None) -> None:
    """Raise ValueError (one line) unless `out` may be written by `score`: a .csv or .parquet path that
    is absent or a results table, not the --prompts-csv, in a folder that can be written."""
    from ..folder.table import check_results_table

    if out.suffix.lower() not in (".csv", ".parquet"):
        raise ValueError(f"--out must end in .csv or .parquet, got {out}")
    if prompts_csv is not None and out.exists() and prompts_csv.exists() and os.path.samefile(out, prompts_csv):
        raise ValueError(f"--out {out} is the --prompts-csv file; choose another --out, it would be overwritten.")
    check_results_table(out)
    check_writable_folder(out.parent, "--out")
