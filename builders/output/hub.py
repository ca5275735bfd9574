"""Publish a finished output folder to the Hugging Face Hub in one commit.

The commit holds the data, the dataset card, the resolved config, `stats.json` and the card's images
(`data/`, `rejected/`, `images/`, `README.md`, `config.yaml`, `stats.json`); never the checkpoints or
`run.json`. For the config `default` the files keep their place; for another `hub_config_name` they go
under `<config>/` and the card declares every config of the repository (those already there are kept),
so several runs can publish the subsets of one dataset. Files of the same config that the new version no
longer has (e.g. a shard count that changed) are deleted in the same commit.

The token comes from HF_TOKEN or the huggingface_hub login; it goes in the request headers only, and is
scrubbed from any error we print. The endpoint is HF_ENDPOINT, read when the push starts (huggingface_hub
reads it only at import).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from builders.errors import UserError
from builders.output.sink import FINAL_NAMES, STAGING, broken_files, is_complete

README = "README.md"
LOAD_SNIPPET = re.compile(r'load_dataset\("[^"]*"(, "[^"]*")?, split="train"\)')
REJECTED_SNIPPET = re.compile(r'data_files="[^"]*/rejected/\*\.parquet"')


def require_token() -> str:
    """The token from HF_TOKEN or the huggingface_hub login; a UserError saying how to log in otherwise."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise UserError("push_to_hub needs a Hub token: set HF_TOKEN or run `hf auth login`")
    return token


def check_can_push() -> str:
    """Checks made before a run that will push starts generating: a token, and a client that may go online."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise UserError(
            "push_to_hub is true but HF_HUB_OFFLINE is set; unset it, or drop push_to_hub and publish later "
            "with `python recipes/push.py --output_dir OUT --hub_repo_id ORG/NAME`"
        )
    return require_token()


def push_output_dir(
    output_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    config_name: str = "default",
    endpoint: str | None = None,
) -> str:
    """Upload the final files of `output_dir` to the dataset repo `repo_id` in one commit; returns its URL.

    On failure the local folder is untouched and the error says how to retry.
    """
    from huggingface_hub import HfApi

    output_dir = Path(output_dir)
    check_repo_id(repo_id)
    check_publishable(output_dir)
    token = check_can_push()
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    api = HfApi(endpoint=endpoint, token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)
        operations = commit_operations(api, output_dir, repo_id, revision, config_name)
        info = api.create_commit(
            repo_id,
            operations,
            repo_type="dataset",
            revision=revision,
            commit_message=f"Upload {output_dir.name} ({config_name}) with builders",
        )
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200].replace(token, "***")
        retry = f"python recipes/push.py --output_dir {output_dir} --hub_repo_id {repo_id}"
        if revision:
            retry += f" --hub_revision {revision}"
        raise UserError(
            f"push to '{repo_id}' failed ({type(err).__name__}: {first}); the local output in '{output_dir}' is "
            f"complete: retry with `{retry}`"
        ) from None
    return str(info.commit_url)


def check_publishable(output_dir: Path) -> None:
    """A folder is published only when its run finished writing it (no half-done publish, run marked complete) and
    every file that run wrote is there and parses."""
    if (output_dir / STAGING / "MANIFEST").exists() or (
        (output_dir / "run.json").exists() and not is_complete(output_dir)
    ):
        raise UserError(
            f"'{output_dir}' holds a run that has not finished (it stopped before its final files were in place); "
            "run the same recipe command again to finish it, then push"
        )
    problem = broken_files(output_dir)
    if problem:
        raise UserError(
            f"'{output_dir}' is not a finished output folder ({problem}); run the recipe (the same command again "
            "rebuilds it from its checkpoints), then push"
        )


def check_repo_id(repo_id: str) -> None:
    """The syntax of a Hub repository id, checked by huggingface_hub's own validator before any work is done."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        reason = str(err).strip().splitlines()[0][:160]
        raise UserError(f"hub_repo_id '{repo_id}' is not a valid repository id ({reason}); use ORG/NAME") from None


def commit_operations(api, output_dir: Path, repo_id: str, revision: str | None, config_name: str) -> list:
    """Additions for every final file, the merged card, and deletions of this config's files that are gone."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    prefix = "" if config_name == "default" else f"{config_name}/"
    additions = {}
    for name in FINAL_NAMES:
        path = output_dir / name
        if name == README or not path.exists():
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if not file.name.startswith("."):
                additions[prefix + file.relative_to(output_dir).as_posix()] = file
    remote_files = set(_remote_files(api, repo_id, revision))
    remote_card = _remote_card(api, repo_id, revision, remote_files)
    card = repo_card(output_dir / README, repo_id, config_name, remote_card, remote_files)
    operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(f)) for p, f in additions.items()]
    operations.append(CommitOperationAdd(path_in_repo=README, path_or_fileobj=str(card).encode()))
    ours = [f"{prefix}{name}" for name in FINAL_NAMES if name != README]
    stale = sorted(
        f for f in remote_files if f not in additions and any(f == o or f.startswith(o + "/") for o in ours)
    )
    operations += [CommitOperationDelete(path_in_repo=f) for f in stale]
    return operations


def repo_card(local_readme: Path, repo_id: str, config_name: str, remote_card=None, remote_files=()):
    """The card for the repository: the local one, with the `configs:` of the repository and snippets that
    load from `repo_id`.

    A lone default config needs no `configs:` block (`data/train-*` is the standard layout, as in the local
    card). Once the repository holds another config, every config is declared: the ones already on the Hub
    are kept (a default config in the standard layout included), this one is added or replaced.
    """
    from huggingface_hub import DatasetCard

    prefix = "" if config_name == "default" else f"{config_name}/"
    card = DatasetCard.load(local_readme)
    ours = {"config_name": config_name, "data_files": [{"split": "train", "path": f"{prefix}data/train-*"}]}
    others = [
        c for c in (remote_card.data.get("configs") if remote_card else None) or [] if c["config_name"] != config_name
    ]
    standard_default = any(f.startswith("data/train-") for f in remote_files)
    if prefix and standard_default and not any(c["config_name"] == "default" for c in others):
        others.insert(0, {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]})
    card.data.configs = others + [ours] if (others or prefix) else None
    config_arg = f', "{config_name}"' if prefix else ""
    card.text = LOAD_SNIPPET.sub(lambda _: f'load_dataset("{repo_id}"{config_arg}, split="train")', card.text)
    rejected = f'data_files="hf://datasets/{repo_id}/{prefix}rejected/*.parquet"'
    card.text = REJECTED_SNIPPET.sub(lambda _: rejected, card.text)
    if prefix:
        card.text = card.text.replace("](images/", f"]({prefix}images/")
    return card


def _remote_files(api, repo_id: str, revision: str | None) -> list[str]:
    from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError

    try:
        return api.list_repo_files(repo_id, repo_type="dataset", revision=revision)
    except (EntryNotFoundError, RevisionNotFoundError):
        return []


def _remote_card(api, repo_id: str, revision: str | None, remote_files: set[str]):
    """The card already on the Hub (for its other configs), or None."""
    from huggingface_hub import DatasetCard, hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    if README not in remote_files:
        return None
    url = hf_hub_url(repo_id, README, repo_type="dataset", revision=revision, endpoint=api.endpoint)
    response = get_session().get(url, headers=build_hf_headers(token=api.token))
    hf_raise_for_status(response)
    return DatasetCard(response.text)
