"""A stand-in for the GPU machine's Python, for a dry run of ci/gpu_run.sh on a CPU (ci/README.md):

    python ci/gpu_simulate_env.py /tmp/simgpu [--present ci/h200_packages.txt]

A venv that links only the distributions of this environment the list names, and what they
require here; the rest must come from the bundle, as on the GPU machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PRESENT = Path(__file__).resolve().parent / "h200_packages.txt"
normalize = canonicalize_name  # PEP 503: ``Jupyter_Client`` -> ``jupyter-client``


def read_package_list(path: str | Path) -> set[str]:
    """Normalised names, separated by blanks; ``#`` starts a comment."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return {normalize(name) for line in lines for name in line.split("#", 1)[0].split()}


def closure(present: set[str]) -> dict[str, metadata.Distribution]:
    """The installed distributions named in ``present`` and, transitively, their requirements."""
    installed = {normalize(d.metadata["Name"]): d for d in metadata.distributions()}
    found, todo = {}, list(present)
    while todo:
        if (name := todo.pop()) in installed and name not in found:
            found[name] = installed[name]
            for req in map(Requirement, installed[name].requires or []):
                if req.marker is None or req.marker.evaluate({"extra": ""}):
                    todo.append(normalize(req.name))
    return found


def simulate(target: Path, present: set[str]) -> list[str]:
    """Create the venv at ``target`` (``--without-pip``); returns the distributions linked in."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--clear", target], check=True)
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    dest = target / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    keep = closure(present)
    files = (Path(d.locate_file(f)).resolve() for d in keep.values() for f in d.files or ())
    for entry in {f.relative_to(site).parts[0] for f in files if f.is_relative_to(site)}:
        (dest / entry).symlink_to(site / entry)  # scripts in bin/ and data elsewhere are not linked
    return sorted(keep)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", type=Path)
    parser.add_argument("--present", default=PRESENT, help="the GPU machine's packages")
    args = parser.parse_args()
    linked = simulate(args.target, read_package_list(args.present))
    print(f"{args.target}: {len(linked)} distributions linked: {', '.join(linked)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
