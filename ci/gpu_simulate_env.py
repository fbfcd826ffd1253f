"""A stand-in for the H200's Python on this CPU machine, for a dry run of ci/gpu_run.sh.

Creates a virtual environment whose site-packages holds links to those distributions of the
current environment that ``ci/h200_packages.txt`` lists (torch, transformers, pandas... as on
the H200 image), and nothing else: papermill, ipykernel, datasets and the rest must then come
from the bundle's wheelhouse, as they will there. A requirement the bundle misses fails here
first, instead of during a paid device call.

    python ci/gpu_simulate_env.py /tmp/simgpu
    python ci/gpu_bundle.py build --python-version 3.11 --out /tmp/simbundle   # this Python's tag
    PY=/tmp/simgpu/bin/python GPU_BUNDLE_SRC=/tmp/simbundle bash ci/gpu_run.sh dry-run
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_bundle import PRESENT_FILE, normalize, read_package_list  # noqa: E402


def top_level_entries(dist: metadata.Distribution, site: Path) -> set[str]:
    """The names directly under ``site`` that a distribution installed (packages, modules,
    ``.pth`` files, its ``.dist-info``)."""
    names = set()
    for f in dist.files or ():
        full = Path(dist.locate_file(f)).resolve()
        try:
            rel = full.relative_to(site)
        except ValueError:
            continue  # scripts in bin/, data outside site-packages
        names.add(rel.parts[0])
    return names


def closure(present: set[str]) -> set[str]:
    """``present`` plus what their versions installed here require (installed here too): the
    H200's own versions bring their own requirements along, which its list names as well."""
    from packaging.requirements import Requirement

    installed = {normalize(d.metadata["Name"]): d for d in metadata.distributions()}
    found, todo = set(), [n for n in present if n in installed]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        for line in installed[name].requires or []:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            if normalize(req.name) in installed:
                todo.append(normalize(req.name))
    return found


def simulate(target: Path, present: set[str]) -> list[str]:
    """Create the venv at ``target``; returns the distributions linked into it."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--clear", str(target)], check=True
    )
    keep = closure(present)
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    pyver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    dest = target / "lib" / pyver / "site-packages"
    linked = []
    for dist in metadata.distributions():
        name = normalize(dist.metadata["Name"])
        if name not in keep:
            continue
        for entry in top_level_entries(dist, site):
            link = dest / entry
            if not link.exists():
                os.symlink(site / entry, link)
        linked.append(name)
    return sorted(set(linked))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target")
    parser.add_argument("--present", default=str(PRESENT_FILE))
    args = parser.parse_args()
    linked = simulate(Path(args.target), read_package_list(args.present))
    print(f"{args.target}: {len(linked)} distributions linked: {', '.join(linked)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
