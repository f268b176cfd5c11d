"""``genlab data download NAME ...`` and ``genlab data list``: fetch the downloadable datasets
(checked against pinned SHA-256 values) and show what is on disk. The work is done by
``genlab.data.downloads`` (``download``, ``list_downloads``)."""

from __future__ import annotations

import json

from genlab.core.errors import ConfigError
from genlab.data.downloads import data_home, download, list_downloads
from genlab.data.sources import SOURCES


def add_parser(subs) -> None:
    p = subs.add_parser("data", help="download datasets (checked), list the downloaded ones")
    tools = p.add_subparsers(dest="tool", required=True, parser_class=type(p))
    t = tools.add_parser("download", help="fetch datasets into $GENLAB_DATA (or --root)")
    t.add_argument("names", nargs="+", metavar="NAME", choices=tuple(SOURCES), help="datasets")
    t.add_argument("--root", help="folder to put the files in (one dataset only)")
    t.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="URL",
        help="a base URL tried before the built-in mirrors (repeatable)",
    )
    t.set_defaults(run=run_download)
    t = tools.add_parser("list", help="the downloadable datasets and what is on disk")
    t.add_argument("--json", action="store_true", help="machine-readable output")
    t.set_defaults(run=run_list)


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def run_download(args) -> int:
    if args.root and len(args.names) > 1:
        raise ConfigError(f"--root takes one dataset, got {len(args.names)}: download them apart")
    for name in args.names:
        root = download(name, args.root, mirrors=args.mirror)
        size = sum(f.size for f in SOURCES[name].files)
        count = len(SOURCES[name].files)
        print(f"{name}: {count} file(s), {mib(size)}, sha256 verified, in {root}")
    return 0


def run_list(args) -> int:
    rows = list_downloads()
    if args.json:
        print(json.dumps({"data_home": str(data_home()), "datasets": rows}, indent=2))
        return 0
    print(f"downloads in {data_home()} (set GENLAB_DATA to move them):")
    for r in rows:
        if r["complete"]:
            state = f"complete, {mib(r['bytes'])}"
        elif r["files"] or r["partial_bytes"]:
            state = (
                f"partial: {r['files']} of {r['of']} files, "
                f"{mib(r['bytes'] + r['partial_bytes'])} of {mib(r['size'])}"
            )
        else:
            state = f"not downloaded ({mib(r['size'])})"
        print(f"  {r['name']:<14} {state}")
    return 0
