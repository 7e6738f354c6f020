"""The output folder: what a build produced (Site), the manifest that marks a folder as a
site (and lists its files and versions), clearing an earlier build while keeping its earlier
versions, and writing the files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rdflib import Graph

from guidelinekg import __version__
from guidelinekg.loading import InputError
from guidelinekg.publishing.formats import MANIFEST_NAME
from guidelinekg.publishing.graphs import PublishedGraph
from guidelinekg.publishing.routes import Route


@dataclass
class Site:
    """What a build produced: files, the graph each RDF file holds, and the routes."""

    root: Path
    files: dict[str, bytes]
    rdf_files: dict[str, Graph]
    routes: dict[str, Route]
    graphs: list[PublishedGraph]
    notes: list[str]
    union: Graph

    def route_for(self, path: str) -> Route | None:
        return self.routes.get(path.strip("/"))


def _read_manifest(out: Path) -> dict | None:
    marker = out / MANIFEST_NAME
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _earlier_versions(manifest: dict, graphs: list[PublishedGraph]) -> dict[str, list[str]]:
    """The versions of an earlier build to keep: those of a graph still published that are
    not its current version."""
    kept: dict[str, list[str]] = {}
    current = {g.folder: g.version for g in graphs}
    for folder, versions in manifest.get("versions", {}).items():
        for version in versions:
            if folder in current and version != current[folder] and version != "latest":
                kept.setdefault(folder, []).append(version)
    return kept


def _prepare_out(out: Path, graphs: list[PublishedGraph]) -> dict[str, list[str]]:
    """Empty the output of a previous build, keeping its earlier version folders.

    A folder that is not empty and was not made by ``guidelinekg publish`` is refused.
    Returns the earlier versions kept, per graph folder.
    """
    if not out.exists():
        return {}
    if not out.is_dir():
        raise InputError(out, "is a file, not a folder")
    if not any(out.iterdir()):
        return {}
    manifest = _read_manifest(out)
    if manifest is None:
        raise InputError(out, "is not empty and was not written by `guidelinekg publish`; "
                              "choose an empty or new folder")
    kept = _earlier_versions(manifest, graphs)
    keep_prefixes = tuple(f"{folder}/{v}/" for folder, versions in kept.items() for v in versions)
    for name in manifest.get("files", []):
        if name.startswith(keep_prefixes) or ".." in PurePosixPath(name).parts:
            continue
        path = out / name
        if path.is_file():
            path.unlink()
    for directory in sorted((p for p in out.rglob("*") if p.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()
    return {folder: sorted(versions) for folder, versions in kept.items()}


def manifest(out: Path, files: dict[str, bytes], graphs: list[PublishedGraph],
             kept: dict[str, list[str]], write: bool) -> bytes:
    """The manifest of the site: every file (the kept versions' too) and every version."""
    versions = {g.folder: sorted(set(kept.get(g.folder, [])) | {g.version, "latest"})
                for g in graphs}
    kept_files = sorted(
        p.relative_to(out).as_posix() for folder, vs in kept.items() for v in vs
        for p in (out / folder / v).rglob("*") if p.is_file()) if write else []
    document = {"generator": f"guidelinekg {__version__}",
                "files": sorted(set(files) | set(kept_files) | {MANIFEST_NAME}),
                "versions": versions}
    return (json.dumps(document, indent=1) + "\n").encode("utf-8")


def write_files(out: Path, files: dict[str, bytes]) -> None:
    for name in sorted(files):
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(files[name])
