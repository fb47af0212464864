"""`cinema`: the platform's command line (dev server, migrations, worker, housekeeping, services)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from shared.settings import Settings, get_settings


def _resolve_services(settings: Settings) -> Settings:
    """Start the embedded servers for whatever is not configured, export their URLs, reload settings."""
    from shared.local.services import embedded_postgres_url, embedded_redis_url

    if not settings.database_url:
        os.environ["DATABASE_URL"] = embedded_postgres_url(settings.data_dir)
    if not settings.redis_url and not settings.upstash_redis_rest_url:
        os.environ["REDIS_URL"] = embedded_redis_url(settings.data_dir)
    get_settings.cache_clear()
    return get_settings()


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply pending migrations."""
    from shared.infra.migrations import MigrationError, migrate

    settings = get_settings()
    url = args.database_url or settings.database_url or _resolve_services(settings).database_url
    assert url is not None
    try:
        applied = asyncio.run(migrate(url))
    except MigrationError as error:
        print(f"migration failed: {error}", file=sys.stderr)
        return 1
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    """Apply supabase/seed.sql, then load the generated demo catalog (both idempotent)."""
    from shared.infra.seeding import SeedError, seed, seed_demo_catalog

    settings = get_settings()
    url = settings.database_url or _resolve_services(settings).database_url
    assert url is not None
    # Invented titles and artwork have no place in production; `make dev` calls this without flags.
    with_catalog = getattr(args, "demo_catalog", True) and settings.app_env != "production"
    try:
        asyncio.run(seed(url))
        print("seed data applied", flush=True)
        if with_catalog:
            print(asyncio.run(seed_demo_catalog(url)))
            from shared.transcoding.demo import seed_demo_media_url

            # Generated clips queued for the worker, which transcodes them on its first start.
            print(asyncio.run(seed_demo_media_url(url)))
    except SeedError as error:
        print(f"seeding failed: {error}", file=sys.stderr)
        return 1
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Process queued jobs until SIGINT/SIGTERM."""
    from shared.http.logging import configure_logging
    from shared.infra.queue.worker import run_worker
    from shared.jobs import load_handlers
    from shared.maintenance.service import frequent_loop

    settings = get_settings()
    configure_logging(settings.log_level)
    if settings.app_env != "production":
        _resolve_services(settings)
    load_handlers()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        # The every-minute housekeeping production runs from the scheduled relay: the transcode watchdog,
        # buffered positions, vanished streams and the payment sandbox's renewals.
        await asyncio.gather(run_worker(stop=stop, concurrency=args.concurrency), frequent_loop(stop))

    asyncio.run(main())
    return 0


def cmd_maintenance(args: argparse.Namespace) -> int:
    """Run the daily housekeeping once."""
    from shared.maintenance.service import run_daily

    settings = get_settings()
    if settings.app_env != "production":
        settings = _resolve_services(settings)
    print(asyncio.run(run_daily(settings=settings)).model_dump_json())
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    """Create accounts and manage roles and status (the first admin is made here)."""
    import getpass

    from shared.admin import commands
    from shared.errors import AppError

    settings = get_settings()
    if settings.app_env != "production":
        _resolve_services(settings)

    async def run() -> str:
        try:
            if args.action == "create":
                password = args.password or getpass.getpass("password for " + args.email + ": ")
                user_id = await commands.create_user(email=args.email, password=password, roles=args.role)
                return f"created {args.email} ({user_id}) with roles {', '.join(['viewer', *args.role])}"
            if args.action == "grant":
                roles = await commands.grant_roles(email=args.email, roles=args.role)
                return f"{args.email} now has roles {', '.join(roles)}"
            status = "disabled" if args.action == "disable" else "active"
            await commands.set_status(email=args.email, status=status, reason=args.reason)
            return f"{args.email} {args.action}d"
        finally:
            from shared.infra.loop_local import reset_all

            await reset_all()

    try:
        print(asyncio.run(run()))
    except AppError as error:
        print(f"error: {error.detail}", file=sys.stderr)
        return 1
    return 0


def cmd_services(args: argparse.Namespace) -> int:
    """Start the embedded PostgreSQL and Redis and print their URLs (for psql, redis-cli, tests)."""
    settings = _resolve_services(get_settings())
    print(f"DATABASE_URL={settings.database_url}\nREDIS_URL={settings.redis_url}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop the embedded servers of DATA_DIR."""
    from shared.local.services import stop_embedded_postgres, stop_embedded_redis

    settings = get_settings()
    stop_embedded_redis(settings.data_dir)
    stop_embedded_postgres(settings.data_dir)
    print("embedded services stopped")
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    """Everything on one machine: services, migrations, worker, every function and the web client."""
    import uvicorn

    from shared.local.services import stop_embedded_postgres, stop_embedded_redis

    settings = get_settings()
    started_here = not settings.database_url, not (settings.redis_url or settings.upstash_redis_rest_url)
    settings = _resolve_services(settings)
    if cmd_migrate(argparse.Namespace(database_url=None)) != 0 or cmd_seed(argparse.Namespace()) != 0:
        return 1
    # Two slots: mail and other short jobs keep flowing while one slot encodes. Inherits the exported URLs.
    worker = subprocess.Popen([sys.executable, "-m", "shared.cli", "worker", "--concurrency", "2"])
    print(f"Cinema Online is up on http://{args.host}:{args.port}  (Ctrl-C stops everything)", flush=True)
    try:
        uvicorn.run(
            "shared.local.devserver:create_dev_app",
            factory=True,
            host=args.host,
            port=args.port,
            log_config=None,
            access_log=False,  # our middleware logs one JSON line per request
            proxy_headers=False,
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        if started_here[1]:
            stop_embedded_redis(settings.data_dir)
        if started_here[0]:
            stop_embedded_postgres(settings.data_dir)
        print("stopped; data kept in " + str(settings.data_dir), flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `cinema`."""
    parser = argparse.ArgumentParser(prog="cinema", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run the whole platform locally on embedded services")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    dev.set_defaults(func=cmd_dev)

    migrate = commands.add_parser("migrate", help="apply pending supabase/migrations")
    migrate.add_argument(
        "--database-url", default=None, help="defaults to DATABASE_URL or the embedded server"
    )
    migrate.set_defaults(func=cmd_migrate)

    seed = commands.add_parser("seed", help="apply supabase/seed.sql and the demo catalog (idempotent)")
    seed.add_argument(
        "--no-demo-catalog", dest="demo_catalog", action="store_false", help="only apply seed.sql"
    )
    seed.set_defaults(func=cmd_seed)

    worker = commands.add_parser("worker", help="process queued jobs until interrupted")
    worker.add_argument("--concurrency", type=int, default=1)
    worker.set_defaults(func=cmd_worker)

    commands.add_parser("maintenance", help="run the daily housekeeping once").set_defaults(
        func=cmd_maintenance
    )
    users = commands.add_parser("users", help="create accounts, grant roles, disable/enable")
    users.add_argument("action", choices=["create", "grant", "disable", "enable"])
    users.add_argument("email")
    users.add_argument("--role", action="append", default=[], help="repeatable: admin, content_manager, ...")
    users.add_argument("--password", default=None, help="create: else asked for (never echoed)")
    users.add_argument("--reason", default="disabled from the command line")
    users.set_defaults(func=cmd_users)

    commands.add_parser("services", help="start embedded PostgreSQL/Redis, print URLs").set_defaults(
        func=cmd_services
    )
    commands.add_parser("stop", help="stop the embedded PostgreSQL/Redis").set_defaults(func=cmd_stop)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cinema` console script."""
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
