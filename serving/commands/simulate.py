"""`riskgraph simulate|load|datacard`: make a simulated world, load it, describe it."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from urllib.parse import urlsplit

from graph import BufferPoolFullError, StoreError
from graph.loader import BulkLoadRefusedError, LoadLimitError, clear_checkpoints, load_world
from graph.neo4j_import import Neo4jImport, Neo4jScript
from simulator import (
    DIFFICULTIES,
    CreditConfig,
    LabelConfig,
    WorldConfig,
    render_difficulties,
    render_hiding,
    render_markdown,
    render_parameters,
    render_schemas,
    simulate_world,
    with_difficulty,
    write_into,
    write_world,
)
from serving.commands._progress import progress
from serving.settings import Settings, get_settings
from serving.stores import buffer_pool_advice, build_store, is_loopback

_DEFAULT_DOC = Path("docs/SIMULATOR.md")
_REPO = Path(__file__).resolve().parents[2]
_NEO4J_SCRIPT = _REPO / "scripts" / "neo4j.sh"
_NEO4J_HOME = _REPO / ".cache" / "neo4j"
"""Where ``scripts/neo4j.sh`` keeps its server unless ``NEO4J_HOME_DIR`` says otherwise."""
_BULK_KEEPS_NOTHING = "a bulk load into an empty store is all or nothing and starts over"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("simulate", help="simulate a lending world with planted fraud into "
                       "Parquet files")
    p.add_argument("--users", type=int, default=10_000, help="honest users (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--days", type=int, default=180, help="days simulated (default 180)")
    p.add_argument("--start", default="2024-01-01", help="first day, ISO date (default "
                   "2024-01-01)")
    p.add_argument("--fraud-rate", type=float, default=0.015,
                   help="fraud share of applications (default 0.015)")
    p.add_argument("--default-rate", type=float, default=0.05,
                   help="default share of funded loans (default 0.05)")
    p.add_argument("--unlabelled", type=float, default=0.2,
                   help="share of fraud never labelled (default 0.2)")
    p.add_argument("--difficulty", choices=sorted(DIFFICULTIES), default="default",
                   help="how the fraud behaves: default (today's world, unchanged) or adaptive "
                   "(rings spread over more devices and phones, applications weeks apart, "
                   "borrowed honest histories, accounts aged before use; docs/SIMULATOR.md, "
                   "\"Harder worlds\")")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.set_defaults(func=_simulate)

    p = sub.add_parser("load", help="bulk-load a simulated world into the configured store "
                       "(idempotent, resumable)",
                       description="Bulk-load a simulated world into the configured store "
                       "(RISKGRAPH_NEO4J_URI, else the embedded store under RISKGRAPH_DATA_DIR); "
                       "idempotent and resumable. Needs RISKGRAPH_PSEUDONYM_SECRET (or "
                       "RISKGRAPH_PSEUDONYM_SECRET_FILE): people's identifiers are hashed with "
                       "it, and `riskgraph serve` must use the same one.")
    p.add_argument("directory", type=Path, help="a directory written by `riskgraph simulate`")
    p.add_argument("--as-of", type=_timestamp, default=None,
                   help="load the graph as known at this time: epoch seconds or ISO date/time "
                   "(default: the end of the simulated window)")
    p.add_argument("--chunk-rows", type=int, default=50_000,
                   help="source rows per chunk, the unit of resumption (default 50000)")
    p.add_argument("--workers", type=int, default=1,
                   help="concurrent writers per chunk (default 1; see docs/BENCHMARKS.md)")
    p.add_argument("--restart", action="store_true",
                   help="forget earlier progress and write every chunk again")
    p.add_argument("--neo4j-import", metavar="HOME", nargs="?", const=_NEO4J_HOME,
                   type=Path, default=None,
                   help="load an EMPTY Neo4j database offline with `neo4j-admin database "
                   "import`: the server that scripts/neo4j.sh runs from HOME (its "
                   f"NEO4J_HOME_DIR; default {_NEO4J_HOME}) on the port of RISKGRAPH_NEO4J_URI "
                   "is stopped, the database replaced whole, the server started and the "
                   "schema applied; a database that holds anything is refused")
    p.add_argument("--import-threads", type=int, default=None,
                   help="neo4j-admin's --threads for --neo4j-import (default: the cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_load)

    p = sub.add_parser("datacard", help="compute base rates and the rule table of a world and "
                       "write them, with the parameter and schema tables, into "
                       "docs/SIMULATOR.md")
    p.add_argument("directory", type=Path, help="a directory written by `riskgraph simulate`")
    p.add_argument("--doc", type=Path, default=_DEFAULT_DOC,
                   help=f"document with the datacard markers (default {_DEFAULT_DOC})")
    p.add_argument("--print", dest="print_only", action="store_true",
                   help="print the section instead of writing it")
    p.add_argument("--adaptive", type=Path, default=None, metavar="DIR",
                   help="an adaptive world of DIRECTORY's seed and size (`riskgraph simulate "
                   "--difficulty adaptive`): also write the 'hiding' section, which measures "
                   "how fraud hides in each")
    p.set_defaults(func=_datacard)


def _timestamp(text: str) -> int:
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not epoch seconds or an ISO date: {text!r}") from e
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


def _simulate(args: argparse.Namespace) -> int:
    config = with_difficulty(WorldConfig(
        users=args.users, seed=args.seed, days=args.days, start=args.start,
        fraud_rate=args.fraud_rate, credit=CreditConfig(default_rate=args.default_rate),
        labels=LabelConfig(unlabelled_fraud_share=args.unlabelled),
    ), args.difficulty)
    say = progress("simulate")
    say(f"{args.users} users over {args.days} days from {args.start}, seed {args.seed}, "
        f"{args.difficulty} fraud; one line per finished stage")
    world = simulate_world(config, log=say)
    say(f"writing the tables to {args.out}")
    rows = write_world(world, args.out)
    say(f"wrote {sum(rows.values()):,} rows")
    print(json.dumps({"out": str(args.out), "rows": rows}, indent=2))
    return 0


def _neo4j_import(args: argparse.Namespace, settings: Settings) -> Neo4jImport | str:
    """The offline import that ``--neo4j-import`` asks for, or why there is none."""
    uri = settings.NEO4J_URI
    if not uri:
        return "--neo4j-import loads Neo4j: set RISKGRAPH_NEO4J_URI to its bolt:// address"
    address = urlsplit(uri)
    if not is_loopback(address.hostname or "") or address.port is None:
        return (f"--neo4j-import stops and starts the server, so it must run on this machine: "
                f"RISKGRAPH_NEO4J_URI must name 127.0.0.1 and its port, got {uri!r}")
    if not _NEO4J_SCRIPT.exists():
        return f"--neo4j-import runs {_NEO4J_SCRIPT}, which is missing (run from a checkout)"
    home = args.neo4j_import.resolve()
    if not (home / "conf" / "neo4j.conf").exists():
        return (f"--neo4j-import: {home} is not the home of a server that scripts/neo4j.sh "
                "runs; give its NEO4J_HOME_DIR (`--neo4j-import HOME`)")
    if args.import_threads is not None and args.import_threads <= 0:
        return f"--import-threads must be positive, got {args.import_threads}"
    server = Neo4jScript(_NEO4J_SCRIPT, home=home, bolt_port=address.port,
                         password=settings.NEO4J_PASSWORD.get_secret_value())
    return Neo4jImport(server, threads=args.import_threads)


def _load(args: argparse.Namespace) -> int:
    settings = get_settings()
    settings.pseudonym_secret()  # NOTE: fail on a missing secret before the store opens.
    target = (f"neo4j:{settings.NEO4J_URI}/{settings.NEO4J_DATABASE}" if settings.NEO4J_URI
              else f"ladybug:{settings.ladybug_path.resolve()}")
    bulk_import: Neo4jImport | None = None
    if args.neo4j_import is not None:
        made = _neo4j_import(args, settings)
        if isinstance(made, str):
            print(f"riskgraph load: {made}", file=sys.stderr)
            return 2
        bulk_import = made
    if args.restart:
        clear_checkpoints(args.directory)
    with build_store(settings, bulk_import=bulk_import) as store:
        # NOTE: imported here: `simulate` and `datacard` need none of the service.
        from serving.key_rotation import pseudonymiser_for

        store.apply_schema()
        pseudonymiser = pseudonymiser_for(settings, store, claim=True)
        try:
            report = load_world(store, args.directory, pseudonymiser, as_of=args.as_of,
                                chunk_rows=args.chunk_rows, target=target,
                                workers=args.workers, progress=not args.quiet,
                                bulk=True if bulk_import is not None else None)
        except BulkLoadRefusedError as e:
            if bulk_import is None:
                raise
            print(f"riskgraph load: --neo4j-import refused: database "
                  f"{settings.NEO4J_DATABASE!r}: {e.reason}; the import replaces the whole "
                  "database, so load into it without --neo4j-import (upserts, chunk by "
                  "chunk), or empty it first", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted: finished chunks are recorded; run the same command again to "
                  f"resume ({_BULK_KEEPS_NOTHING})", file=sys.stderr)
            raise
        except LoadLimitError as e:
            timeout = (f"raise RISKGRAPH_NEO4J_QUERY_TIMEOUT_S (now "
                       f"{settings.NEO4J_QUERY_TIMEOUT_S:g}) or " if settings.NEO4J_URI else "")
            print(f"riskgraph load: {e}; {timeout}lower RISKGRAPH_WRITE_BATCH_SIZE (now "
                  f"{settings.WRITE_BATCH_SIZE}), then run the same command again to resume "
                  "(finished chunks are kept)", file=sys.stderr)
            return 2
        except BufferPoolFullError as e:
            print(f"riskgraph load: {e}; {buffer_pool_advice(e.pool_bytes)}, then run the same "
                  f"command again to resume (finished chunks are kept; {_BULK_KEEPS_NOTHING})",
                  file=sys.stderr)
            return 2
        except StoreError as e:
            # NOTE: after the buffer pool's handler: BufferPoolFullError is a StoreError.
            if bulk_import is None:
                raise
            # NOTE: the import's errors say what was left and what to do.
            print(f"riskgraph load: --neo4j-import failed: {' '.join(str(e).split())}",
                  file=sys.stderr)
            return 2
        counts = store.counts()
    print(json.dumps({
        "as_of": report.as_of, "bulk": report.bulk, "seconds": round(report.seconds, 1),
        "chunks_done": report.chunks_done, "chunks_skipped": report.chunks_skipped,
        "written": report.written, "counts": counts,
    }, indent=2, sort_keys=True))
    return 0


def _datacard(args: argparse.Namespace) -> int:
    command = f"riskgraph datacard {args.directory}"
    sections = {
        "parameters": render_parameters(),
        "difficulties": render_difficulties(),
        "schemas": render_schemas(),
        "datacard": render_markdown(args.directory, command=command),
    }
    if args.adaptive is not None:
        sections["hiding"] = render_hiding(
            {"default": args.directory, "adaptive": args.adaptive},
            command=f"{command} --adaptive {args.adaptive}")
    if args.print_only:
        print("\n\n".join(sections.values()))
        return 0
    for name, body in sections.items():
        write_into(args.doc, body, section=name)
    print(f"wrote the generated sections ({', '.join(sections)}) of {args.doc}")
    return 0
