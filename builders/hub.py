"""Publish a finished output folder to the Hugging Face Hub in one commit."""

from __future__ import annotations

from pathlib import Path

from builders.errors import UserError

# What stays local: checkpoints, the run's bookkeeping, half-written files.
IGNORE = [".checkpoints/**", ".staging/**", ".trash/**", "run.json", "**/.*.tmp"]


def require_token() -> str:
    """The token from HF_TOKEN or the huggingface_hub login; a UserError saying how to log in otherwise."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise UserError("push_to_hub needs a Hub token: set HF_TOKEN or run `hf auth login`")
    return token


def push_output_dir(
    output_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    endpoint: str | None = None,
) -> str:
    """Upload data, card, config and stats of `output_dir` to the dataset repo `repo_id`, in one commit.

    Returns the commit URL. On failure the local folder is untouched and the error says how to retry.
    """
    from huggingface_hub import HfApi

    output_dir = Path(output_dir)
    if not (output_dir / "README.md").exists() or not (output_dir / "data").is_dir():
        raise UserError(
            f"'{output_dir}' is not a finished output folder (no README.md or data/); run the recipe first"
        )
    api = HfApi(endpoint=endpoint, token=require_token())
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            repo_type="dataset",
            folder_path=str(output_dir),
            revision=revision,
            ignore_patterns=IGNORE,
            commit_message=f"Upload {output_dir.name} with builders",
        )
    except UserError:
        raise
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise UserError(
            f"push to '{repo_id}' failed ({type(err).__name__}: {first}); the local output in '{output_dir}' is complete: "
            f"retry with `python recipes/push.py --output_dir {output_dir} --hub_repo_id {repo_id}`"
        ) from None
    return str(getattr(info, "commit_url", info))
