"""``guidelinekg publish``: the command's options and what it prints."""

from __future__ import annotations

import argparse
from pathlib import Path

from guidelinekg import console
from guidelinekg.cli import output_directory
from guidelinekg.publishing.build import build_site
from guidelinekg.stdio import refuse_folder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="folder to write the site into (new, empty, or an earlier site; "
                             "a folder, so not - for standard output)")
    parser.add_argument("--site-url", metavar="URL",
                        help="where the site will be hosted; the .htaccess is then the w3id.org "
                             "entry redirecting the persistent IRIs there (default: rules for "
                             "the root of the site itself)")


def run(args: argparse.Namespace) -> int:
    refuse_folder("--out", args.out, "the site")
    output_directory(args.out)
    started = console.clock()
    site = build_site(args.out, site_url=args.site_url)
    console.detail(f"built the site in {console.since(started)}")
    for note in site.notes:
        console.say(f"note: {note}")
    resources = sum(1 for r in site.routes.values() if r.kind == "resource")
    print(f"wrote {len(site.files)} files to {args.out}: "
          + ", ".join(f"{g.name} {g.version} ({len(g.graph)} triples)" for g in site.graphs)
          + f"; {resources} IRIs with their own documents")
    return 0
