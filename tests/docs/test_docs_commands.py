"""Docs smoke test: every ``genlab ...`` command line of README.md and docs/**/*.md runs here
with tiny overrides appended, so the docs cannot rot. One case per (page, line): a failure names
the line, e.g. ``docs/latent.md:42``. Which lines, and which only parse: tests/doc_commands.py.

How a page runs: its commands run in order (a case selected alone first replays the page's
earlier commands), in-process, in one working directory per page standing in for the repo root,
with ``HOME`` a folder of the test. Appended to each, so that later values win: TRAIN_TINY
(1 step, batch 8, a checkpoint and a grid at step 1, no progress bar, no evaluation in
training) and ``device=cpu``; DATA_TINY where the dataset reads the field (fewer points, users,
items) and DATASET_TINY (digits at 16 px: the size of the one digits classifier the suite trains,
20-60 s, which ``edit``, ``modes`` on stacked_digits and the image metrics need); the FLAGS of
the subcommand; ``--device cpu`` wherever it has ``--device``: the GPU lines run on the CPU.
Widths and other sizes stay the docs' own. A train without ``--out`` gets ``--out
runs/MODEL-lineN`` (``runs/MODEL-DATA-TIME`` has one-second resolution: two tiny runs would
collide), and the placeholder ``RUN`` names the page's newest run. A run directory named before
it exists (``genlab sample runs/cgan``) is first trained there, as a tiny run of the model or
preset its name starts with (``stand_in_run``), else ``tiny_vae``.

Files the reader brings: a ``data.root`` of mnist, fashion_mnist, imagefolder or movielens that
does not exist gets generated stand-in files (tests/docs/conftest.py) and the command runs on
them. An ``--inception-weights`` file that is not there is not generated (95 MB of network, and
FID through it outruns the budget): the command must fail with exit status 2 and one
``genlab: error:`` line naming the option. ``genlab bench`` lines share one measurement of the
matmul peak (conftest.py).
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from doc_commands import DocCommand, collect, collect_page
from genlab.cli.main import build_parser, main
from genlab.core.config import build_config, load_preset, preset_names
from genlab.core.errors import GenlabError
from genlab.core.registry import DATASETS, MODELS
from genlab.tools.coverage import plan, preset_for
from genlab.tools.labs.base import LABS, resolve_params
from helpers import assert_one_line_error

# A case may train the session's one domain classifier of its data (mnist_small: 1,000 steps,
# about 50 s on an AVX-512 core and more on AVX2-only ones) on top of its command.
pytestmark = [pytest.mark.docs, pytest.mark.timeout(240)]

Standin = Callable[[str, Path], bool]  # conftest's write_standin(dataset, root)

TRAIN_TINY = (
    "train.steps=1",
    "train.batch_size=8",
    "train.log_every=1",
    "train.sample_every=1",
    "train.ckpt_every=1",
    "train.num_samples=4",
    "train.progress=false",
    "train.eval_every=null",
)
RESUME_TINY = (*TRAIN_TINY[1:], "train.steps=2")  # one step beyond a TRAIN_TINY run
DATA_TINY = {"num_samples": 256, "num_users": 200, "num_items": 50, "heldout_users": 20}
DATASET_TINY = {"digits": {"image_size": 16}}
OPTION = re.compile(r"^--?[A-Za-z]")
FLAGS: dict[str, tuple[str, ...]] = {
    "sample": ("-n", "4"),
    "eval": ("--n", "16", "--batch-size", "16", "--k", "8", "--subsets", "2", "--splits", "2"),
    "truncation": ("--n", "16", "--values", "1,none", "--batch-size", "16"),
    "coverage": ("--seeds", "1", *TRAIN_TINY, "data.num_samples=256", "device=cpu"),
    "edit": ("--n", "4", "--steps", "2"),
    "probe": ("--n", "64", "--k", "4"),
    "denoise": ("-n", "4"),
    "recommend": ("-k", "5"),
    "bench": (
        "--steps",
        "1",
        "--warmup",
        "0",
        "--rounds",
        "1",
        "--batch-size",
        "8",
        "--image-size",
        "16",
    ),
    "doctor": ("--no-train",),
    "latent recon": ("--n", "2"),
    "latent interp": ("--n", "1", "--steps", "3"),
    "latent attribute": ("--n", "2"),
    "latent traverse": ("--steps", "3", "--dims", "2"),
    "latent scatter": ("--n", "64"),
}
RUN_ARG = {"sample", "eval", "truncation", "edit", "probe", "report", "denoise", "recommend"}
ALIASES = {"ring": "gan_ring8", "grid": "gan_grid25"}  # run names that abbreviate a preset

# id -> why the doc (not genlab) is wrong; strict: a fixed doc line must leave this list.
KNOWN_BROKEN: dict[str, str] = {}

COMMANDS = collect()
PAGES: dict[str, list[DocCommand]] = {}
for _command in COMMANDS:
    PAGES.setdefault(_command.page, []).append(_command)


# ----------------------------------------------------------------------------- parsers


@functools.cache
def parser() -> argparse.ArgumentParser:
    return build_parser()


def subparser(argv: list[str] | tuple[str, ...]) -> tuple[str, argparse.ArgumentParser]:
    """("latent interp", its parser) for ``latent interp RUN ...``; ("", genlab's) if none."""
    names, current, words = [], parser(), list(argv)
    while words:
        subs = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or words[0] not in subs[0].choices:
            break
        names.append(words[0])
        current = subs[0].choices[words.pop(0)]
    return " ".join(names), current


class UsageError(Exception):
    """genlab's parser rejects the command line."""


def parse_all(argv: list[str] | tuple[str, ...]) -> tuple[argparse.Namespace, list[str]]:
    """As ``main`` parses: (namespace, overrides), or UsageError."""
    try:
        args, extra = parser().parse_known_args(list(argv))
    except SystemExit as stop:
        raise UsageError(f"genlab {shlex.join(argv)}: argparse exits {stop.code}") from None
    unknown = [a for a in extra if a.startswith("-") or "=" not in a]
    if unknown or (extra and not hasattr(args, "overrides")):
        raise UsageError(f"genlab {shlex.join(argv)}: unrecognized arguments {unknown or extra}")
    overrides = [*getattr(args, "overrides", ()), *extra]
    if getattr(args, "model", None) and "=" in args.model:  # `train --resume RUN key=value`
        overrides.insert(0, args.model)
        args.model = None
    return args, overrides


def check_parses(argv: tuple[str, ...]) -> None:
    """argparse accepts the command and its config overrides validate; nothing runs."""
    args, overrides = parse_all(argv)
    if args.command == "train" and args.resume:
        assert all(o.startswith("train.") for o in overrides), "--resume takes only train.*"
    elif args.command in ("train", "arch"):
        build_config(args.model, data=args.data, preset=args.preset, overrides=overrides)
    elif args.command == "lab" and args.name not in ("list", "all"):
        resolve_params(LABS.get(args.name), args.quick, overrides)  # the lab and its parameters
    elif args.command == "coverage":
        split = [[x for x in text.split(",") if x] for text in (args.models, args.data)]
        for variant, data, _ in plan(*split, 1):
            build_config(preset=preset_for(variant, data), overrides=overrides)


def check_synopsis(argv: tuple[str, ...]) -> None:
    """Each option a synopsis shows is an option of its subcommand; listed values are choices."""
    key, sub = subparser(argv)
    assert key, f"{argv[0]!r} is no genlab subcommand"
    options, action = sub._option_string_actions, None
    for word in argv[len(key.split()) :]:
        alternatives = [alt for alt in word.strip("[]").split("|") if alt and alt != "..."]
        if alternatives and OPTION.match(alternatives[0]):
            for alt in alternatives:
                name = alt.partition("=")[0]
                assert name in options, f"genlab {key} has no {name}; it has {sorted(options)}"
            action = options[alternatives[-1].partition("=")[0]]
            continue
        if action is not None and action.choices and not word.isupper():
            bad = [alt for alt in alternatives if alt not in action.choices]
            assert not bad, f"{action.option_strings[0]} {bad}: choices are {action.choices}"
        action = None


# ----------------------------------------------------------------------------- run


def stand_in_run(name: str) -> tuple[str, str | None]:
    """(model, preset) of the tiny run trained where a command names a run not there yet: the
    longest leading words of the name (split at - and _) that name a preset or model, its
    ``tiny_`` preset preferred (runs/cgan -> tiny_cgan, runs/wgan_gp_ring8 -> wgan_gp_ring8,
    runs/ring -> gan_ring8); nothing matching -> tiny_vae."""
    presets = set(preset_names())
    words = re.split(r"[-_.]", name.lower())
    for k in range(len(words), 0, -1):
        stem = ALIASES.get("_".join(words[:k]), "_".join(words[:k]))
        for preset in (f"tiny_{stem}", stem):
            if preset in presets:
                return load_preset(preset)["model"]["name"], preset
        if stem in MODELS.names():
            return stem, None
    return "vae", "tiny_vae"


def train_extra(
    args: argparse.Namespace, overrides: list[str], out: str, standin: Standin
) -> list[str]:
    """What is appended to a train command: tiny settings, and ``--out`` if it has none. Also
    writes stand-in files where ``data.root`` points at data that is not there."""
    if args.resume:
        return list(RESUME_TINY)
    extra = [] if args.out else ["--out", out]
    extra += [*TRAIN_TINY, "device=cpu"]
    try:
        cfg = build_config(args.model, data=args.data, preset=args.preset, overrides=overrides)
    except GenlabError:
        return extra  # the command itself fails, naming the bad key or value
    uses = getattr(DATASETS.get(cfg.data.name), "uses", ())
    extra += [f"data.{k}={v}" for k, v in DATA_TINY.items() if k in uses]
    extra += [f"data.{k}={v}" for k, v in DATASET_TINY.get(cfg.data.name, {}).items()]
    if cfg.data.root:
        standin(cfg.data.name, Path(cfg.data.root).expanduser())
    return extra


def ensure_run(run_dir: str, standin: Standin) -> None:
    """Train a tiny run in ``run_dir`` unless it already holds one (``stand_in_run``)."""
    if (Path(run_dir) / "config.json").is_file():
        return
    model, preset = stand_in_run(Path(run_dir).name)
    argv = ["train", model, *(["--preset", preset] if preset else []), "--out", run_dir]
    args, overrides = parse_all(argv)
    code = call_main([*argv, *train_extra(args, overrides, run_dir, standin)])
    assert code == 0, f"could not train a stand-in run in {run_dir} ({model}, {preset})"


@dataclass
class Prepared:
    argv: list[str]
    out: str | None = None  # the run a train command writes
    expect_error: str | None = None  # the fragment of the one-line error it must end with


def prepare(cmd: DocCommand, last_run: str | None, standin: Standin) -> Prepared:
    """The command as run: ``~`` expanded, ``RUN`` replaced, tiny flags appended, run
    directories it names trained first."""
    argv = [os.path.expanduser(w) if w.startswith("~") else w for w in cmd.argv]
    argv = [(last_run or "runs/RUN") if w == "RUN" else w for w in argv]
    key, sub = subparser(argv)
    try:
        args, overrides = parse_all(argv)
    except UsageError:
        return Prepared(argv)  # run as it is: main() rejects it with its one-line error
    extra = list(FLAGS.get(key, ()))
    if "--device" in sub._option_string_actions:
        extra += ["--device", "cpu"]
    prepared = Prepared(argv)
    if key == "train":
        default = f"runs/{args.model or 'run'}-line{cmd.line}"
        extra += train_extra(args, overrides, default, standin)
        prepared.out = args.resume or args.out or default
        if args.resume:
            ensure_run(args.resume, standin)
    elif key in RUN_ARG or key.startswith("latent "):
        ensure_run(args.run_dir, standin)
    elif key == "compare":
        for run_dir in args.run_dirs:
            ensure_run(run_dir, standin)
    weights = getattr(args, "inception_weights", None)
    if weights and not Path(weights).is_file():
        prepared.expect_error = "--inception-weights"
    prepared.argv = [*argv, *extra]
    return prepared


def call_main(argv: list[str]) -> int:
    try:
        return int(main(argv))
    except SystemExit as stop:  # argparse: --help, or a usage error
        return stop.code if isinstance(stop.code, int) else 2


def execute(cmd: DocCommand, state, capfd, standin: Standin) -> tuple[int, str, Prepared]:
    """Run one command in its page's state: (exit status, stderr, what ran)."""
    prepared = prepare(cmd, state.last_run, standin)
    capfd.readouterr()
    code = call_main(prepared.argv)
    err = capfd.readouterr().err
    state.done.add(cmd.line)
    if prepared.out and (Path(prepared.out) / "config.json").is_file():
        state.last_run = prepared.out
    return code, err, prepared


def params() -> list:
    marks = {i: pytest.mark.xfail(strict=True, reason=r) for i, r in KNOWN_BROKEN.items()}
    return [pytest.param(c, id=c.id, marks=marks.get(c.id, ())) for c in COMMANDS]


@pytest.mark.parametrize("cmd", params())
def test_doc_command(cmd, page_states, standin, monkeypatch, capfd):
    if cmd.mode == "synopsis":
        check_synopsis(cmd.argv)
        return
    if cmd.mode == "parse":
        check_parses(cmd.argv)
        return
    state = page_states(cmd.page)
    monkeypatch.chdir(state.workdir)
    for earlier in PAGES[cmd.page]:  # selected alone, a case still finds the page's runs
        if earlier.line < cmd.line and earlier.mode == "run" and earlier.line not in state.done:
            execute(earlier, state, capfd, standin)
    code, err, prepared = execute(cmd, state, capfd, standin)
    ran = f"genlab {shlex.join(prepared.argv)}"
    if prepared.expect_error:
        assert code == 2, f"{ran}: exit {code}, expected 2 (a file the test cannot provide)"
        assert_one_line_error(err, prepared.expect_error)
    else:
        assert code == 0, f"{ran}: exit {code}\n{err[-3000:]}"


# ----------------------------------------------------------------------------- the collector

PAGE = """\
```
genlab train vae --out runs/a   # a comment
.venv/bin/genlab eval runs/a \\
    --metrics recon
make demo
ATEN_CPU_CAPABILITY=avx2 genlab bench
for s in 0 1 2; do genlab eval runs/a --metrics recon --seed $s; done
genlab train vae --nproc 2
genlab train vae --nproc 2
genlab train vae --nproc 4
genlab latent recon RUN [--n 8]
```

```python
genlab.train("vae")
```

```console
$ genlab train vae --data mnist data.root=DIR
genlab: error: not a command but output
```

```yaml
genlab train gan
```
"""


def test_collector_follows_the_rules():
    got = [(c.line, c.mode, c.env, " ".join(c.argv)) for c in collect_page("p.md", PAGE)]
    assert got == [
        (2, "run", (), "train vae --out runs/a"),
        (3, "run", (), "eval runs/a --metrics recon"),
        (6, "parse", (("ATEN_CPU_CAPABILITY", "avx2"),), "bench"),
        (7, "run", (), "eval runs/a --metrics recon --seed 0"),
        (8, "run", (), "train vae --nproc 2"),
        (9, "parse", (), "train vae --nproc 2"),
        (10, "parse", (), "train vae --nproc 4"),
        (11, "synopsis", (), "latent recon RUN [--n 8]"),
        (19, "parse", (), "train vae --data mnist data.root=DIR"),
    ]


def test_known_broken_entries_name_doc_lines():
    """A KNOWN_BROKEN id whose line moved would silently stop marking anything."""
    assert not set(KNOWN_BROKEN) - {c.id for c in COMMANDS}


def test_the_docs_hold_commands_to_run():
    """A collector broken by a new page layout would collect nothing and pass everything."""
    runs = [c for c in COMMANDS if c.mode == "run"]
    assert len(runs) > 50 and {c.page for c in runs} >= {"README.md"}, len(runs)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("dcgan", ("dcgan", "tiny_dcgan")),
        ("cgan-shapes", ("cgan", "tiny_cgan")),
        ("ring", ("gan", "gan_ring8")),
        ("wgan_gp_ring8", ("wgan_gp", "wgan_gp_ring8")),
        ("vae_categorical", ("vae", "tiny_vae_categorical")),
        ("g128_60k", ("vae", "tiny_vae")),
    ],
)
def test_stand_in_run_reads_the_model_from_the_name(name, expected):
    assert stand_in_run(name) == expected


def test_synopsis_check_rejects_an_unknown_option_and_a_bad_choice():
    check_synopsis(("latent", "interp", "RUN", "[--mode", "linear|slerp]", "[--n", "4]"))
    with pytest.raises(AssertionError, match="has no --frames"):
        check_synopsis(("latent", "interp", "RUN", "[--frames", "8]"))
    with pytest.raises(AssertionError, match="choices"):
        check_synopsis(("latent", "interp", "RUN", "[--mode", "linear|cubic]"))


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("sample", "runs/vae", "--frames", "3"), "--frames"),
        (("train", "vae", "model.nope=1", "--out", "runs/v"), "model.nope"),
    ],
)
def test_a_wrong_doc_line_fails(argv, fragment, page_states, standin, monkeypatch, capfd):
    """What the cases rely on: a line with a flag or key genlab lacks ends with exit status 2."""
    state = page_states("wrong.md")
    monkeypatch.chdir(state.workdir)
    code, err, _ = execute(DocCommand("wrong.md", 1, argv), state, capfd, standin)
    assert code == 2
    assert_one_line_error(err, fragment)
