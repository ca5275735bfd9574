"""Publish a finished output folder to the Hugging Face Hub: after a failed push, or after a review.

    python recipes/push.py --output_dir outputs/cosmopedia --hub_repo_id my-org/cosmopedia-demo
    python recipes/push.py --output_dir OUT --hub_repo_id my-org/my-data --hub_config_name stories --hub_private

One commit holds the data, the dataset card, the resolved config, stats.json and the card's images. The
token comes from HF_TOKEN or `hf auth login`; HF_ENDPOINT points at another Hub. The repository's layout
is described in docs/publishing.md.
"""

from dataclasses import dataclass
from pathlib import Path

import yaml

from builders.config import knob, parse_config
from builders.errors import UserError, exit_on_user_error
from builders.generation import distributed
from builders.output.hub import push_output_dir


@dataclass
class PushConfig:
    """Publish a finished output folder to a Hub dataset repository, in one commit."""

    output_dir: str | None = knob(None, "the output folder of a finished run")
    hub_repo_id: str | None = knob(None, "Hub dataset repo, e.g. my-org/my-dataset")
    hub_private: bool = knob(False, "create the repo as private (an existing repo keeps its visibility)")
    hub_revision: str | None = knob(None, "branch to push to (None: main); created if missing")
    hub_config_name: str | None = knob(None, "dataset config name (None: the run's own, from its config.yaml)")


def run_config_name(output_dir: Path) -> str:
    saved = output_dir / "config.yaml"
    config = yaml.safe_load(saved.read_text()) if saved.exists() else {}
    return (config or {}).get("hub_config_name") or "default"


@exit_on_user_error
def main(argv=None):
    config = parse_config(PushConfig, argv)
    if not config.output_dir or not config.hub_repo_id:
        raise UserError(
            "usage: python recipes/push.py --output_dir OUT --hub_repo_id ORG/NAME [--hub_private] "
            "[--hub_revision BRANCH] [--hub_config_name NAME] (--help says more)"
        )
    if not distributed.is_main_process():
        return  # under accelerate launch / torchrun, the main process pushes, once
    output_dir = Path(config.output_dir)
    if not output_dir.is_dir():
        raise UserError(f"output_dir '{output_dir}' does not exist; pass the output folder of a finished run")
    url = push_output_dir(
        output_dir,
        config.hub_repo_id,
        private=config.hub_private,
        revision=config.hub_revision,
        config_name=config.hub_config_name or run_config_name(output_dir),
    )
    print(f"pushed to {url}")


if __name__ == "__main__":
    main()
