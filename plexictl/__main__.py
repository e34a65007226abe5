"""plexictl: the operator's tool for PlexiChat stacks. Run `python -m plexictl --help`."""

from __future__ import annotations

import argparse
import pathlib
import sys

from plexictl import engine, render


def _render(args: argparse.Namespace) -> int:
    rendering = engine.run_program(args.stack, preview=args.preview, root=args.project_dir)
    out = pathlib.Path(args.out or f"out/{args.stack}")
    counts = render.write(rendering, out)
    print(render.summary(rendering))
    print(
        f"\nwrote {counts['kubernetes']} Kubernetes manifests to {out}/kubernetes, "
        f"{counts['cloud']} cloud resources to {out}/cloud.yaml"
    )
    for warning in rendering.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _config_reference(args: argparse.Namespace) -> int:
    from plexictl import config_reference

    table = config_reference.markdown()
    if not args.write:
        print(table)
        return 0
    readme = pathlib.Path(args.write)
    text = readme.read_text()
    start, end = text.index(config_reference.BEGIN), text.index(config_reference.END)
    readme.write_text(text[:start] + table + text[end + len(config_reference.END):])
    print(f"updated the configuration reference in {readme}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plexictl", description=__doc__)
    parser.add_argument(
        "--project-dir", type=pathlib.Path, default=engine.ROOT,
        help="the Pulumi project (default: this checkout)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser(
        "render", help="render a stack's desired state to files, offline (no cloud, no Pulumi CLI)"
    )
    p.add_argument("--stack", required=True, help="dev, staging or prod (Pulumi.<stack>.yaml)")
    p.add_argument("--out", help="output directory (default out/<stack>)")
    p.add_argument(
        "--preview", action="store_true",
        help="render as `pulumi preview` sees it: values computed by the cloud stay unknown",
    )
    p.set_defaults(run=_render)

    p = commands.add_parser(
        "config-reference", help="print the stack config reference (Markdown) from the models"
    )
    p.add_argument("--write", metavar="README", help="replace the reference block in this file")
    p.set_defaults(run=_config_reference)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - a config error is the user's, not a crash
        import pulumi

        if isinstance(error, pulumi.RunError):
            print(f"error: {error}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
