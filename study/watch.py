"""python -m study.watch NAME: watch a study live in optuna-dashboard, one page per subset, while it runs.

Each subset's Optuna study is its own journal (optuna/<subset>.journal: the resume guarantees keep them apart), so
this starts one optuna-dashboard server per journal, on consecutive ports from --port, in one process, and prints
their addresses. The pages show every trial with its parameters and state (PRUNED: stopped by ASHA), its per-epoch
val top-1 as intermediate values, and the history, importance and slice plots, updated as the driver writes.
Optuna's own plots count only COMPLETE trials, so they are not matched-budget answers: the report is (docs/running.md,
"Watching a study").

Needs the optional extra: pip install 'stgcn-study[watch]' (locked with the rest in requirements.lock).
For a study on remote storage run it on the driver's machine with the same --storage: the journals are written in
its local copy first. Ctrl-C stops the servers; the study is not touched.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from common.files import is_uri
from kinetics.source import cache_root
from kinetics.subsets import SUBSET_NAMES
from training.results import MANIFEST, OPTUNA


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # one line per request would bury the addresses printed at start
        pass


def study_root(name: str, storage: str) -> Path:
    """NAME under --storage (its driver's local copy for a storage URI), or a study directory given as a path."""
    given = Path(name).expanduser()
    if (given / MANIFEST).is_file():
        return given.resolve()
    base = cache_root() / "studies" if is_uri(storage) else Path(storage).expanduser()
    return (base / name).resolve()


def journals(root: Path) -> dict[str, Path]:
    if not (root / MANIFEST).is_file():
        raise FileNotFoundError(f"{root}: no study here ({MANIFEST} missing); give the study's name and its --storage, "
                                "or the study's directory")
    order = {subset: i for i, subset in enumerate(SUBSET_NAMES)}  # kinetics-motion first: on --port itself
    found = {path.stem: path for path in sorted((root / OPTUNA).glob("*.journal"),
                                                key=lambda p: (order.get(p.stem, len(order)), p.stem))}
    if not found:
        raise FileNotFoundError(f"{root / OPTUNA}: no Optuna journal yet (the study has not asked for a trial)")
    return found


def serve(found: dict[str, Path], host: str, port: int) -> list:
    """One optuna-dashboard server per journal, each in a thread; port 0 picks free ports."""
    from optuna_dashboard import wsgi
    servers = []
    for offset, (subset, path) in enumerate(found.items()):
        app = wsgi(JournalStorage(JournalFileBackend(str(path))))
        server = make_server(host, port + offset if port else 0, app, handler_class=_Quiet)
        threading.Thread(target=server.serve_forever, name=f"dashboard-{subset}", daemon=True).start()
        servers.append((subset, server))
    return servers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m study.watch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="the study's name (under --storage) or its directory")
    parser.add_argument("--storage", default="studies", help="where the study is, as given to study.run (default: "
                                                             "studies)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8090,
                        help="the first subset's port; the next gets port+1, ... (default 8090: 8080 is the metrics "
                             "port of the cluster configs; 0: free ports)")
    args = parser.parse_args(argv)
    try:
        found = journals(study_root(args.name, args.storage))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        servers = serve(found, args.host, args.port)
    except ImportError:
        print("error: optuna-dashboard is not installed: pip install 'stgcn-study[watch]'", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc} (choose another --port)", file=sys.stderr)
        return 2
    for subset, server in servers:
        print(f"{subset}: http://{args.host}:{server.server_port}/dashboard/", flush=True)
    print("(Ctrl-C stops the dashboards; the study goes on)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        for _, server in servers:
            server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
