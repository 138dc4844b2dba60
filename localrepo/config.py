"""Repository configuration (`.localrepo/config.toml`, never secrets) and credentials."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from localrepo.vocabulary import POLICY_MANUAL

CONFIG_NAME = "config.toml"


@dataclass
class RemoteConfig:
    url: str | None = None
    workspace: str | None = None


@dataclass
class SyncConfig:
    noresize: bool = True  # uploads keep their exact bytes, so clones hash the same
    max_delete: str = "50%"
    policy: str = POLICY_MANUAL
    # Adopt, by name, a workspace label already attached to another task (their images
    # then mix). Off: each task creates its own label (docs/sync.md).
    share_labels: bool = False


@dataclass
class RepoConfig:
    remote: RemoteConfig = field(default_factory=RemoteConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)


def load_config(state_dir: Path) -> RepoConfig:
    import tomllib  # here: `repo status` never reads the configuration

    path = state_dir / CONFIG_NAME
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return RepoConfig()
    except (OSError, tomllib.TOMLDecodeError) as exc:
        from localrepo.errors import LocalrepoError

        raise LocalrepoError(f"{path}: cannot read the configuration ({exc}).") from exc
    remote = data.get("remote", {})
    sync = data.get("sync", {})
    return RepoConfig(
        remote=RemoteConfig(url=remote.get("url"), workspace=remote.get("workspace")),
        sync=SyncConfig(
            noresize=bool(sync.get("noresize", True)),
            max_delete=str(sync.get("max_delete", "50%")),
            policy=str(sync.get("policy", POLICY_MANUAL)),
            share_labels=bool(sync.get("share_labels", False)),
        ),
    )


def save_config(state_dir: Path, config: RepoConfig) -> None:
    import tomli_w

    data = {
        "remote": {k: v for k, v in asdict(config.remote).items() if v is not None},
        "sync": asdict(config.sync),
    }
    path = state_dir / CONFIG_NAME
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(
        "# localrepo repository settings. No secrets here: tokens live in the per-user\n"
        "# credentials file or the LOCALREPO_TOKEN environment variable.\n" + tomli_w.dumps(data),
        encoding="utf-8",
    )
    os.replace(tmp, path)
