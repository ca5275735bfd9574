"""A Hugging Face Hub on 127.0.0.1 that speaks the HTTP API of the calls a push makes, for tests.

The real `huggingface_hub` client talks to it (`HfApi(endpoint=hub.url)` or `HF_ENDPOINT`): whoami, repo
info, repo create, branch create, YAML validation, preupload (every file answers "regular", so file
contents travel inline, base64, in the commit), commit (an NDJSON body), tree listing and file download.
Each commit is stored with its files, so a test checks the files that arrived, byte for byte.

    with FakeHub(token="hf_test") as hub:
        ...push with HF_ENDPOINT=hub.url, HF_TOKEN=hf_test...
        hub.files("org/name")          # {path: bytes} at the head of main
        hub.commits("org/name")        # commit messages and the paths each one touched
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from huggingface_hub import constants

INITIAL_FILES = {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"}


class FakeHub:
    def __init__(self, token: str):
        self.token = token
        self.repos: dict[str, dict] = {}  # repo_id -> {"private", "branches": {name: sha}, "commits": {sha: {...}}}
        self.requests: list[tuple[str, str, str]] = []  # (method, path, authorization header)
        self.fail_commits = 0  # answer the next N commits with a 500
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeHub:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what the tests read ---------------------------------------------------------------------------------

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files at a branch, or at a commit (a download pins the commit it found)."""
        repo = self.repos[repo_id]
        return dict(repo["commits"][_commit_of(repo, revision)]["files"])

    def commits(self, repo_id: str, revision: str = "main") -> list[dict]:
        """The commits of a branch, oldest first (the repo's initial commit included)."""
        repo, out = self.repos[repo_id], []
        sha = repo["branches"][revision]
        while sha:
            out.append(repo["commits"][sha])
            sha = repo["commits"][sha]["parent"]
        return out[::-1]

    # -- the Hub's side ----------------------------------------------------------------------------------------

    def _commit(self, repo: dict, branch: str, message: str, files: dict[str, bytes], touched: list[str]) -> str:
        parent = repo["branches"].get(branch)
        sha = hashlib.sha1(f"{parent}{message}{sorted(touched)}{len(repo['commits'])}".encode()).hexdigest()
        repo["commits"][sha] = {"sha": sha, "parent": parent, "message": message, "files": files, "touched": touched}
        repo["branches"][branch] = sha
        return sha


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._route("GET")

        def do_HEAD(self) -> None:
            self._route("HEAD")

        def do_POST(self) -> None:
            self._route("POST")

        # -- plumbing

        def _send(self, status: int, body=None, headers: dict | None = None, raw: bytes | None = None) -> None:
            data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _error(self, status: int, code: str, message: str) -> None:
            self._send(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _route(self, method: str) -> None:
            parts = urlsplit(self.path)
            segments = [unquote(s) for s in parts.path.strip("/").split("/")]
            hub.requests.append((method, parts.path, self.headers.get("Authorization", "")))
            if self.headers.get("Authorization") != f"Bearer {hub.token}":
                return self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
            with hub._lock:
                try:
                    self._dispatch(method, segments, parts.query)
                except KeyError as err:
                    self._error(404, "RepoNotFound", f"not found: {err}")

        def _dispatch(self, method: str, s: list[str], query: str) -> None:
            if s[:2] == ["api", "whoami-v2"]:
                return self._send(
                    200, {"type": "user", "name": "tester", "orgs": [], "auth": {"type": "access_token"}}
                )
            if s[:2] == ["api", "validate-yaml"]:
                return self._send(200, {"errors": [], "warnings": []})
            if s[:3] == ["api", "repos", "create"]:
                return self._create_repo(json.loads(self._body()))
            if len(s) >= 4 and s[:2] == ["api", "datasets"]:
                repo_id, rest = f"{s[2]}/{s[3]}", s[4:]
                if repo_id not in hub.repos:
                    return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
                repo = hub.repos[repo_id]
                if not rest or rest[0] == "revision":
                    return self._info(repo_id, repo, rest[1] if rest else "main")
                action, revision, path = rest[0], rest[1] if len(rest) > 1 else "main", "/".join(rest[2:])
                if action == "branch" and method == "POST":
                    return self._create_branch(repo, revision, json.loads(self._body() or b"{}"))
                if _commit_of(repo, revision) is None:
                    return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                if action == "preupload":
                    files = json.loads(self._body())["files"]
                    return self._send(
                        200,
                        {
                            "files": [
                                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
                            ]
                        },
                    )
                if action == "commit":
                    return self._receive_commit(repo_id, repo, revision)
                if action == "tree":
                    return self._tree(repo, revision, path)
            if len(s) >= 6 and s[0] == "datasets" and s[3] == "resolve":
                repo_id, revision, path = f"{s[1]}/{s[2]}", s[4], "/".join(s[5:])
                files = hub.files(repo_id, revision)
                if path not in files:
                    return self._error(404, "EntryNotFound", f"{path} does not exist")
                sha = _commit_of(hub.repos[repo_id], revision)
                return self._send(
                    200, raw=files[path], headers={"X-Repo-Commit": sha, "ETag": f'"{_oid(files[path])}"'}
                )
            return self._error(404, "NotFound", f"no route for {method} {self.path}")

        def _create_repo(self, payload: dict) -> None:
            repo_id = (
                f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
            )
            if payload.get("type") != "dataset":
                return self._error(400, "BadRequest", "this fake Hub holds dataset repos only")
            url = f"{hub.url}/datasets/{repo_id}"
            if repo_id in hub.repos:  # the Hub's 409 carries the repo's url too, and the client reads it
                message = "You already created this dataset repo"
                return self._send(409, {"error": message, "url": url}, {"X-Error-Message": message})
            repo = {"private": payload.get("visibility") == "private", "branches": {}, "commits": {}}
            hub.repos[repo_id] = repo
            hub._commit(repo, "main", "initial commit", dict(INITIAL_FILES), list(INITIAL_FILES))
            self._send(200, {"url": url, "name": repo_id})

        def _info(self, repo_id: str, repo: dict, revision: str) -> None:
            if revision not in repo["branches"]:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            sha = repo["branches"][revision]
            siblings = [{"rfilename": p} for p in sorted(repo["commits"][sha]["files"])]
            self._send(200, {"id": repo_id, "sha": sha, "private": repo["private"], "siblings": siblings})

        def _create_branch(self, repo: dict, branch: str, payload: dict) -> None:
            if branch in repo["branches"]:
                return self._error(409, "Conflict", "Reference already exists")
            repo["branches"][branch] = repo["branches"][payload.get("startingPoint") or "main"]
            self._send(200, {})

        def _receive_commit(self, repo_id: str, repo: dict, revision: str) -> None:
            lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
            if hub.fail_commits > 0:
                hub.fail_commits -= 1
                # Like a proxy that echoes the request in its error page: the client must not print the token.
                auth = self.headers.get("Authorization", "")
                return self._error(500, "InternalError", f"asked to fail this commit (Authorization: {auth})")
            header = lines[0]
            if header.get("key") != "header":
                return self._error(400, "BadRequest", "the first line of a commit must be its header")
            files = hub.files(repo_id, revision)
            touched = []
            for line in lines[1:]:
                value = line["value"]
                if line["key"] == "file":
                    if value.get("encoding") != "base64":
                        return self._error(400, "BadRequest", "inline files must be base64")
                    files[value["path"]] = base64.b64decode(value["content"])
                elif line["key"] == "deletedFile":
                    if value["path"] not in files:
                        return self._error(404, "EntryNotFound", f"{value['path']} does not exist")
                    del files[value["path"]]
                else:
                    return self._error(400, "BadRequest", f"this fake Hub takes no {line['key']} operations")
                touched.append(value["path"])
            sha = hub._commit(repo, revision, header["value"]["summary"], files, touched)
            self._send(200, {"commitUrl": f"{hub.url}/datasets/{repo_id}/commit/{sha}", "commitOid": sha})

        def _tree(self, repo: dict, revision: str, path: str) -> None:
            files = repo["commits"][_commit_of(repo, revision)]["files"]
            prefix = f"{path}/" if path else ""
            entries = [
                {"type": "file", "path": p, "size": len(data), "oid": _oid(data)}
                for p, data in sorted(files.items())
                if p.startswith(prefix)
            ]
            self._send(200, entries)

    return Handler


def _commit_of(repo: dict, revision: str) -> str | None:
    """The commit a revision names: a branch's head, or a commit id itself."""
    return repo["branches"].get(revision) or (revision if revision in repo["commits"] else None)


def _oid(data: bytes) -> str:
    """The git blob id of `data`, as the Hub reports it."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


TOKEN = "hf_TESTtoken0123456789abcdefSECRET"


@contextlib.contextmanager
def online(hub: FakeHub, token: str | None = TOKEN):
    """HF_ENDPOINT at the fake Hub, a token in HF_TOKEN (or none at all), and huggingface_hub allowed online."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_ENDPOINT", hub.url)
        mp.setattr(constants, "HF_HUB_OFFLINE", False)
        mp.setattr(constants, "HF_TOKEN_PATH", str(Path(hub.url.replace(":", "_")) / "no-token-file"))
        if token:
            mp.setenv("HF_TOKEN", token)
        else:
            mp.delenv("HF_TOKEN", raising=False)
        yield
