"""`python -m builders.view OUTPUT_DIR [OTHER_OUTPUT_DIR] [--port N] [--share]`: serve the viewer on 127.0.0.1."""

from __future__ import annotations

import argparse
import os

from builders.errors import UserError, exit_on_user_error
from builders.view.reading import open_run


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m builders.view",
        description="Browse a run's output folder (or a Hub dataset a recipe published), live while it generates.",
    )
    parser.add_argument("output_dir", help="a recipe's output_dir, or a Hub dataset id (org/name)")
    parser.add_argument("other", nargs="?", help="a second output folder: the Compare tab shows both")
    parser.add_argument("--port", type=int, default=7860, help="port on 127.0.0.1 (default 7860)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link (needs network)")
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None) -> None:
    args = parse_args(argv)
    runs = [open_run(target) for target in (args.output_dir, args.other) if target]
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a local viewer
    try:
        from builders.view.app import build_app
    except ImportError as err:
        raise UserError(f"the viewer needs gradio ({err}); install it with `pip install -e .[viewer]`") from None
    app = build_app(*runs)
    try:
        app.launch(server_name="127.0.0.1", server_port=args.port, share=args.share, ssr_mode=False)
    except OSError as err:
        raise UserError(f"cannot serve on 127.0.0.1:{args.port} ({err}); pass --port with a free port") from None


if __name__ == "__main__":
    main()
