"""``genlab lab list`` and ``genlab lab NAME|all [--out DIR] [--quick] [key=value ...]``: run a
claim of the course notes as a checked experiment (docs/labs/). Exit status 0 when every check
holds, 1 when one fails (a result, not a crash), 2 for bad input. The work is done by
``genlab.tools.labs`` (``lab``, ``list_labs``)."""

from __future__ import annotations

from typing import Any

from genlab.tools.labs import lab, list_labs


def add_parser(subs) -> None:
    p = subs.add_parser("lab", help="run a claim of the course notes as a checked experiment")
    p.add_argument("name", metavar="NAME", help="a lab (`genlab lab list`), `all`, or `list`")
    p.add_argument("--out", help="output folder (default runs/labs/NAME)")
    p.add_argument("--quick", action="store_true", help="the small version the suite runs")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="the lab's parameters")
    p.set_defaults(run=run)


def _number(x: float) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def print_checks(result: dict[str, Any]) -> None:
    print(f"{result['lab']}: {result['claim']}")
    width = max((len(c["name"]) for c in result["checks"]), default=5)
    sign = {"close": "±", "at_most": "<=", "at_least": ">="}
    for c in result["checks"]:
        ref = f"{_number(c['reference'])}" + (
            f" ± {_number(c['tolerance'])}" if c["relation"] == "close" else ""
        )
        relation = "≈" if c["relation"] == "close" else sign[c["relation"]]
        mark = "ok" if c["ok"] else "FAILS"
        print(f"  {c['name']:<{width}}  {_number(c['value']):>10} {relation} {ref:<18} {mark}")
    print(f"  figure {result['figure']}  ({result['seconds']} s)")


def run(args) -> int:
    if args.name == "list":
        for name, claim in list_labs().items():
            print(f"  {name:<26} {claim}")
        return 0
    if args.name == "all":

        def one_line(r: dict[str, Any]) -> None:
            passed = sum(c["ok"] for c in r["checks"])
            state = "ok" if r["ok"] else "FAILS"
            counts = f"{passed}/{len(r['checks'])} checks"
            print(f"  {r['lab']:<26} {state:<5} {counts}  {r['seconds']} s")

        kwargs = {"quick": args.quick, "overrides": args.overrides, "seed": args.seed}
        result = lab("all", args.out, on_result=one_line, **kwargs)
        return 0 if result["ok"] else 1
    result = lab(args.name, args.out, quick=args.quick, overrides=args.overrides, seed=args.seed)
    print_checks(result)
    return 0 if result["ok"] else 1
