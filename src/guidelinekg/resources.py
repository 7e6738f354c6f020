"""Where the bundled ontology, shapes, queries and examples are, and which modules there are.

In a wheel they are package data under ``guidelinekg/_resources``; in a source checkout
(editable install, tests) they are the top-level folders of the repository.

The knowledge is made of modules, each a folder of data with the same inner layout:

* the **core** (``ontology/``, ``shapes/``, ``queries/`` at the top): what every guideline
  shares: the recommendation model, criteria, regimens, evidence, units, the patient
  record and the result vocabularies, the age and body-weight facts;
* **domains** (``domains/<name>/``): terms that several guidelines of one field share
  (drugs, receptor statuses, metastatic sites) with their facts, fact queries and code maps;
* **guidelines** (``guidelines/<id>/``): one guideline each: its content (``<id>.ttl``), its
  curation spec (``statements.tsv``, ``references.tsv``) and whatever it adds of its own.

Inside a domain or guideline folder: ``*.ttl`` are its ontology files (for a guideline,
``<id>.ttl`` is the content and the others its vocabulary), ``queries/`` its queries (fact
queries under ``queries/facts/``), ``shapes/*.ttl`` its patient shapes, ``fhir/`` its FHIR
code maps and CodeSystems.

More modules are found under the folders the ``GUIDELINEKG_LIBRARY`` environment variable
lists (separated by the path separator), each laid out like the repository
(``guidelines/<id>/``, ``domains/<name>/``): a user adds a guideline without touching the
installed package.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

_PACKAGE_DIR = Path(__file__).resolve().parent
LIBRARY_VARIABLE = "GUIDELINEKG_LIBRARY"

ModuleKind = Literal["core", "domain", "guideline"]


@cache
def resource_root() -> Path:
    """The folder holding ``ontology/``, ``shapes/``, ``queries/`` and ``examples/``."""
    packaged = _PACKAGE_DIR / "_resources"
    if (packaged / "ontology").is_dir():
        return packaged
    checkout = _PACKAGE_DIR.parents[1]
    if (checkout / "ontology").is_dir():
        return checkout
    raise FileNotFoundError(
        "guidelinekg cannot find its ontology/, shapes/ and queries/ folders; reinstall the package"
    )


def ontology_dir() -> Path:
    return resource_root() / "ontology"


def shapes_dir() -> Path:
    return resource_root() / "shapes"


def queries_dir() -> Path:
    return resource_root() / "queries"


def examples_dir() -> Path:
    return resource_root() / "examples"


class LibraryError(Exception):
    """A module folder the loader cannot use: a listed library that is not a folder, a
    guideline folder without its content file, two modules of one name."""


class SettingError(ValueError):
    """A setting (an environment variable, an option) that names nothing this project knows:
    the user's to correct (the command line's exit code 2), not a bug."""


@dataclass(frozen=True)
class Module:
    """One module of knowledge: the core, a domain or a guideline, and its folder."""

    kind: ModuleKind
    name: str
    folder: Path

    @property
    def content_file(self) -> Path | None:
        """A guideline's content (its statements): ``<id>.ttl`` in its folder."""
        return self.folder / f"{self.name}.ttl" if self.kind == "guideline" else None

    def ontology_files(self) -> list[Path]:
        """Every Turtle file of the module's ontology (content included), sorted."""
        return list(_turtle_files(ontology_dir() if self.kind == "core" else self.folder))

    def vocabulary_files(self) -> list[Path]:
        """The ontology files without a guideline's content: classes, facts, value sets."""
        return [path for path in self.ontology_files() if path != self.content_file]

    @property
    def queries_folder(self) -> Path:
        return queries_dir() if self.kind == "core" else self.folder / "queries"

    def shape_files(self) -> list[Path]:
        return list(_turtle_files(shapes_dir() if self.kind == "core" else
                                  self.folder / "shapes"))

    @property
    def fhir_folder(self) -> Path:
        return self.folder / "fhir"

    @property
    def statements_file(self) -> Path:
        """A guideline's curation spec: its statements with keys, text and sources."""
        return self.folder / "statements.tsv"

    @property
    def references_file(self) -> Path:
        return self.folder / "references.tsv"


@cache  # per folder, as the modules are found once per library setting: every validation
# and derivation asks for the files of every module (listing them took 2 ms a patient)
def _turtle_files(folder: Path) -> tuple[Path, ...]:
    return tuple(sorted(folder.glob("*.ttl")))


def library_roots() -> tuple[Path, ...]:
    """The bundled resources first, then the folders ``GUIDELINEKG_LIBRARY`` lists."""
    return _library_roots(os.environ.get(LIBRARY_VARIABLE, ""))


@cache  # per value of the variable: every query and shape lookup asks (a derivation, 600 times)
def _library_roots(listed: str) -> tuple[Path, ...]:
    extra = [Path(part).resolve() for part in listed.split(os.pathsep) if part]
    for root in extra:
        if not root.is_dir():
            raise LibraryError(f"{LIBRARY_VARIABLE} lists {root}, which is not a folder")
    return (resource_root(), *extra)


def modules() -> tuple[Module, ...]:
    """The core, then every domain, then every guideline, each group sorted by name."""
    return _modules(library_roots())


@cache
def _modules(roots: tuple[Path, ...]) -> tuple[Module, ...]:
    found: dict[tuple[str, str], Module] = {}
    for kind, folder_name in (("domain", "domains"), ("guideline", "guidelines")):
        for root in roots:
            for folder in sorted(p for p in (root / folder_name).glob("*") if p.is_dir()):
                module = Module(kind, folder.name, folder)  # type: ignore[arg-type]
                if kind == "guideline" and not (folder / f"{folder.name}.ttl").is_file():
                    raise LibraryError(
                        f"{folder}: a guideline folder holds its content as {folder.name}.ttl")
                previous = found.setdefault((kind, folder.name), module)
                if previous != module:
                    raise LibraryError(
                        f"two {kind}s named {folder.name!r}: {previous.folder} and {folder}")
    ordered = sorted(found.values(), key=lambda m: (m.kind != "domain", m.name))
    return (Module("core", "core", resource_root()), *ordered)


def guideline_modules() -> tuple[Module, ...]:
    return tuple(module for module in modules() if module.kind == "guideline")


def guideline_module(name: str) -> Module:
    """The guideline named ``name``; ValueError naming the known ones otherwise."""
    for module in guideline_modules():
        if module.name == name:
            return module
    known = ", ".join(module.name for module in guideline_modules())
    raise ValueError(f"no guideline named {name!r} (known: {known})")


def query_roots() -> tuple[Path, ...]:
    """Every module's queries folder that exists: the core's first."""
    return _query_roots(modules())


@cache
def _query_roots(found: tuple[Module, ...]) -> tuple[Path, ...]:
    return tuple(m.queries_folder for m in found if m.queries_folder.is_dir())


def fhir_folders() -> tuple[Path, ...]:
    """Every module's ``fhir/`` folder that exists (code maps, CodeSystems)."""
    return tuple(m.fhir_folder for m in modules() if m.kind != "core" and m.fhir_folder.is_dir())


def all_shape_files(guidelines: Collection[str] | None = None) -> list[Path]:
    """The core's shapes (of the guideline graph and of patient records) and every
    module's; with ``guidelines``, only those guidelines' among the guidelines'."""
    return [path for module in modules()
            if guidelines is None or module.kind != "guideline" or module.name in guidelines
            for path in module.shape_files()]
