"""Which notebooks there are, and the parameters each one runs with (layered, typed, in range).

Parameters are layered, later wins, flat keys:

1. ``params/profile_<profile>.yaml``: keys shared by every notebook under that profile
   (``model``, ``device``, ``profile``, ``interactive``...). Keys in :data:`SHARED_NAMES` must be
   declared by every notebook; other keys are passed only to notebooks that declare them.
2. ``params/NN_name.yaml`` section ``default:``, then its section named after the profile
   (``smoke:`` or ``paper:``), if any.
3. ``output_dir``, injected by the runner (absolute), and ``extra_params`` from the caller.

Every resolved key is checked against the notebook's ``parameters`` cell before anything runs:
papermill itself only warns about an unknown name, so a typo would silently run the defaults.
Types are checked against the cell's annotations (YAML reads ``1e-2`` as a string), and values
against :data:`CONSTRAINTS` by parameter name (a negative ``max_steps`` fails here, in seconds,
not inside the notebook an hour later).
"""

from __future__ import annotations

import ast
import difflib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

from prototokens.paths import output_dir as _output_dir
from prototokens.paths import repo_root

SHARED_NAMES = ("model", "seed", "device", "profile", "interactive", "output_dir")
PROFILES = ("default", "smoke", "paper", "gpu")
NOTEBOOK_FILE = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")


class RunnerError(RuntimeError):
    """Base class: the runner could not run, or a notebook did not finish."""


class ParameterError(RunnerError):
    """A parameter file or key does not match the notebook's ``parameters`` cell."""


@dataclass
class ResolvedParameters:
    """Final parameters of one notebook run, with the file (and section) each value came from."""

    notebook: Path
    profile: str
    values: dict
    sources: dict


# --------------------------------------------------------------------------- locations


def notebook_folder(override: str | os.PathLike | None = None) -> Path:
    """Where the notebooks are: ``override``, ``$PROTOTOKENS_NOTEBOOKS_DIR`` or
    ``<repo>/notebooks``."""
    raw = override or os.environ.get("PROTOTOKENS_NOTEBOOKS_DIR")
    return Path(raw).expanduser().resolve() if raw else repo_root() / "notebooks"


def params_folder(override: str | os.PathLike | None = None) -> Path:
    """Where the parameter files are: ``override``, ``$PROTOTOKENS_PARAMS_DIR`` or
    ``<repo>/params``."""
    raw = override or os.environ.get("PROTOTOKENS_PARAMS_DIR")
    return Path(raw).expanduser().resolve() if raw else repo_root() / "params"


def list_notebooks(nb_dir: str | os.PathLike | None = None) -> list[Path]:
    """The ``NN_name.ipynb`` notebooks in run order."""
    folder = notebook_folder(nb_dir)
    return sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_FILE.match(p.name))


def find_notebook(name_or_path: str | os.PathLike, nb_dir: str | os.PathLike | None = None) -> Path:
    """A notebook by path, by stem (``03_metrics``) or by prefix (``03``)."""
    path = Path(name_or_path)
    if path.suffix == ".ipynb" and path.exists():
        return path.resolve()
    key = str(name_or_path).removesuffix(".ipynb")
    candidates = list_notebooks(nb_dir)
    exact = [p for p in candidates if p.stem == key]
    matches = exact or [p for p in candidates if p.stem.startswith(key)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(p.stem for p in candidates) or "none"
    if not matches:
        raise RunnerError(
            f"no notebook matches {str(name_or_path)!r} in {notebook_folder(nb_dir)} "
            f"(known: {known})"
        )
    raise RunnerError(
        f"{str(name_or_path)!r} matches several notebooks: " + ", ".join(p.stem for p in matches)
    )


def _show(path: Path) -> str:
    """A path as written in messages: relative to the repo when inside it."""
    try:
        return str(path.resolve().relative_to(repo_root()))
    except (ValueError, RuntimeError):
        return str(path)


# --------------------------------------------------------------------------- parameters


def parameters_cells(notebook: str | os.PathLike) -> list[int]:
    """Indices of the cells tagged ``parameters`` (a well-formed notebook has exactly one)."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    return [
        i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])
    ]


def declared_parameters(notebook: str | os.PathLike) -> dict[str, dict]:
    """The notebook's ``parameters`` cell as papermill reads it:
    ``{name: {name, inferred_type_name, default, help}}``. Raises if the cell is missing or
    doubled."""
    import papermill

    cells = parameters_cells(notebook)
    if len(cells) != 1:
        raise ParameterError(
            f"{_show(Path(notebook))} has {len(cells)} cells tagged 'parameters'; "
            "it needs exactly one"
        )
    declared = papermill.inspect_notebook(str(notebook))
    # papermill silently drops a line with a second '=' (even inside the comment or a string):
    # such a parameter could never be overridden, so say so instead.
    lost = [n for n in assigned_names(notebook) if n not in declared]
    if lost:
        raise ParameterError(
            f"{_show(Path(notebook))}: papermill cannot read parameter(s) {', '.join(lost)} in the "
            "parameters cell; write each as one line `name: type = value  # help` with a single "
            "'=' (none in the value or the comment)"
        )
    return declared


def assigned_names(notebook: str | os.PathLike) -> list[str]:
    """Names assigned in the ``parameters`` cell, read with :mod:`ast` (not papermill's regex)."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    names = []
    for cell in nb.cells:
        if "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError as exc:
            raise ParameterError(
                f"{_show(Path(notebook))}: parameters cell is not valid Python: {exc}"
            ) from exc
        for node in tree.body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.append(node.target.id)
            elif isinstance(node, ast.Assign):
                names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return names


def load_params_file(path: str | os.PathLike) -> dict:
    """A YAML mapping (an empty file is ``{}``); anything else is a :class:`ParameterError`."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParameterError(f"{_show(path)} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(f"{_show(path)} must hold a mapping, not {type(data).__name__}")
    return data


def known_profiles(p_dir: str | os.PathLike | None = None) -> list[str]:
    """Profiles with a ``params/profile_<name>.yaml`` file (plus the three standard names)."""
    found = {p.stem.removeprefix("profile_") for p in params_folder(p_dir).glob("profile_*.yaml")}
    return sorted(found | set(PROFILES))


def _close_name(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


_YAML_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def _type_ok(value: Any, expected: tuple) -> bool:
    if isinstance(value, bool) and bool not in expected:
        return False  # PyYAML reads `no` as False: not an int
    return isinstance(value, expected)


def _check_type(key: str, value: Any, declared: dict, source: str, nb_name: str) -> None:
    """Catch YAML surprises before a run: ``1e-2`` is a string to PyYAML, ``no`` is a bool.

    Scalars (``int``, ``float``, ``str``, ``bool``) and lists of them (``list[str]``) are checked;
    other annotations are passed through unchecked.
    """
    type_name = str(declared.get("inferred_type_name", "")).replace(" ", "")
    if value is None:
        return
    if type_name.startswith("list[") and type_name.endswith("]"):
        inner = _YAML_TYPES.get(type_name[5:-1])
        if not isinstance(value, list):
            raise ParameterError(
                f"{source}: parameter {key!r} of {nb_name} is declared {type_name} "
                f"but the value is {value!r} ({type(value).__name__}); write a YAML "
                "list, e.g. [a, b]"
            )
        bad = [v for v in value if inner is not None and not _type_ok(v, inner)]
        if bad:
            raise ParameterError(
                f"{source}: parameter {key!r} of {nb_name} is declared {type_name} "
                f"but holds {bad[0]!r} ({type(bad[0]).__name__})"
            )
        return
    expected = _YAML_TYPES.get(type_name)
    if expected is None:
        return
    if not _type_ok(value, expected):
        hint = " (PyYAML reads 1e-2 as a string: write 1.0e-2)" if isinstance(value, str) else ""
        raise ParameterError(
            f"{source}: parameter {key!r} of {nb_name} is declared "
            f"{declared['inferred_type_name']} but the value is {value!r} "
            f"({type(value).__name__}){hint}"
        )


# --------------------------------------------------------------------------- ranges


def _finite(v: Any) -> bool:
    return not isinstance(v, float) or math.isfinite(v)


# Impossible values by parameter name: {name: (test, what it must be)}. A list-typed parameter
# of one of these names is checked item by item. Names not listed are only type-checked.
CONSTRAINTS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "num_tokens": (lambda v: v >= 1, "at least 1 (target length N)"),
    "num_texts": (lambda v: v >= 1, "at least 1"),
    "num_seeds": (lambda v: v >= 1, "at least 1"),
    "batch_size": (lambda v: v >= 1, "at least 1 (rows per forward pass)"),
    "max_steps": (lambda v: v >= 0, "at least 0 (optimisation budget)"),
    "seed": (lambda v: v >= 0, "at least 0"),
    "lr": (lambda v: _finite(v) and v > 0, "a finite number above 0"),
}
# list parameters naming an optional sweep a profile may switch off with ``[]`` even where the
# notebook's own default runs it (03's grid-vs-progressive comparison, off in the cpu_paper run)
OPTIONAL_SWEEPS = ("compare_sources",)


def check_range(key: str, value: Any, declared: dict, source: str, nb_name: str) -> None:
    """Raise :class:`ParameterError` for a value no run can use: a list-typed parameter that is
    empty (unless the notebook's own default is the empty list, an optional extra sweep such as
    03's ``other_models``, or the name is in :data:`OPTIONAL_SWEEPS`), or a value outside
    :data:`CONSTRAINTS` for its name (naming file, key and notebook)."""
    type_name = str(declared.get("inferred_type_name", "")).replace(" ", "")
    empty_ok = _declared_default(declared) == [] or key in OPTIONAL_SWEEPS
    if isinstance(value, list) and type_name.startswith("list[") and not value and not empty_ok:
        raise ParameterError(
            f"{source}: parameter {key!r} of {nb_name} is an empty list; give at least one value"
        )
    if key not in CONSTRAINTS or value is None:
        return
    test, must = CONSTRAINTS[key]
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, (int, float)) and not isinstance(item, bool) and not test(item):
            raise ParameterError(
                f"{source}: parameter {key!r} of {nb_name} is {item!r}; it must be {must}"
            )


def _declared_default(declared: dict) -> Any:
    """The notebook's own default for a parameter (papermill keeps it as source text)."""
    try:
        return ast.literal_eval(str(declared.get("default")))
    except (ValueError, SyntaxError):
        return None


# --------------------------------------------------------------------------- layering


def resolve_parameters(
    notebook: str | os.PathLike,
    profile: str = "default",
    *,
    params_dir: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    extra_params: Mapping[str, Any] | None = None,
    notebooks_dir: str | os.PathLike | None = None,
) -> ResolvedParameters:
    """Layer profile file → ``NN.default`` → ``NN[profile]`` → ``output_dir`` → ``extra_params``
    and check every key against the notebook's ``parameters`` cell.

    Raises :class:`ParameterError` naming the key, the notebook, the file it came from and the
    closest declared name; or naming a shared key (:data:`SHARED_NAMES`) the notebook lacks.
    """
    nb_path = find_notebook(notebook, notebooks_dir)
    nb_name = nb_path.name
    p_dir = params_folder(params_dir)
    declared = declared_parameters(nb_path)

    profile_file = p_dir / f"profile_{profile}.yaml"
    if not profile_file.exists():
        raise ParameterError(
            f"unknown profile {profile!r}: {_show(profile_file)} does not exist "
            f"(known: {', '.join(known_profiles(p_dir))})"
        )
    shared = load_params_file(profile_file)
    if shared.get("profile", profile) != profile:
        raise ParameterError(
            f"{_show(profile_file)} sets profile: {shared['profile']!r}, expected {profile!r}"
        )

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, value in shared.items():
        if isinstance(value, (dict, list)) and key in SHARED_NAMES:
            raise ParameterError(f"{_show(profile_file)}: shared key {key!r} must be a scalar")
        if key in declared:
            values[key], sources[key] = value, _show(profile_file)
        elif key in SHARED_NAMES:
            raise ParameterError(
                f"notebook {nb_name} lacks the shared parameter {key!r} (set by "
                f"{_show(profile_file)}); add `{key}: <type> = <value>  # <help>` to its "
                "parameters cell"
            )

    nb_file = p_dir / f"{nb_path.stem}.yaml"
    layered: list[tuple[str, dict]] = []
    if nb_file.exists():
        sections = load_params_file(nb_file)
        allowed = {"default", *known_profiles(p_dir)}
        for section, body in sections.items():
            if section not in allowed:
                profiles = ", ".join(sorted(allowed - {"default"}))
                raise ParameterError(
                    f"{_show(nb_file)}: unknown section {section!r}"
                    f"{_close_name(str(section), allowed)}; expected 'default:' and optional "
                    f"profile sections ({profiles})"
                )
            if body is not None and not isinstance(body, dict):
                raise ParameterError(f"{_show(nb_file)}: section {section!r} must be a mapping")
        layered.append((f"{_show(nb_file)} [default]", sections.get("default") or {}))
        if profile != "default":
            layered.append((f"{_show(nb_file)} [{profile}]", sections.get(profile) or {}))
    layered.append(("runner (output_dir)", {"output_dir": str(_output_dir(output_dir))}))
    if extra_params:
        layered.append(("extra_params", dict(extra_params)))

    for source, mapping in layered:
        unknown = [k for k in mapping if k not in declared]
        if unknown:
            if unknown == ["output_dir"] and source.startswith("runner"):
                raise ParameterError(
                    f"notebook {nb_name} lacks the shared parameter 'output_dir' (injected by the "
                    'runner); add `output_dir: str = ""  # outputs tree; empty = <repo>/outputs` '
                    "to its parameters cell"
                )
            lines = [
                f"{source}: unknown parameter {k!r} for notebook {nb_name}"
                f"{_close_name(str(k), declared)}"
                for k in unknown
            ]
            raise ParameterError(
                "\n".join(lines) + f"\n  {nb_name} declares: " + ", ".join(sorted(declared))
            )
        for key, value in mapping.items():
            values[key], sources[key] = value, source

    for key, value in values.items():
        _check_type(key, value, declared[key], sources[key], nb_name)
        check_range(key, value, declared[key], sources[key], nb_name)
    for key in declared.keys() - values.keys():  # the notebook's own defaults, too
        source = f"{_show(nb_path)} (parameters cell)"
        check_range(key, _declared_default(declared[key]), declared[key], source, nb_name)
    return ResolvedParameters(nb_path, profile, values, sources)
