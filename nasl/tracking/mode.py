"""W&B mode and credentials, checked locally (no network, no prompt)."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from urllib.parse import urlsplit


def has_api_key() -> bool:
    """Whether W&B credentials are configured, checked locally (no network, no prompt).

    ``WANDB_API_KEY`` or ``WANDB_IDENTITY_TOKEN_FILE`` in the environment, or a ``.netrc``
    entry (``NETRC``, ``~/.netrc`` or ``~/_netrc``) for the host of ``WANDB_BASE_URL``
    (default ``api.wandb.ai``).
    """
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").netloc
    candidates = [os.environ["NETRC"]] if os.environ.get("NETRC") else ["~/.netrc", "~/_netrc"]
    for name in candidates:
        path = Path(name).expanduser()
        if not path.is_file():
            continue
        try:
            creds = netrc.netrc(str(path)).authenticators(host)
        except (netrc.NetrcParseError, OSError):
            return False
        return bool(creds and creds[2])
    return False


def resolve_mode(mode: str | None = None) -> str:
    """The W&B mode to use: ``mode``, else ``WANDB_MODE``, else online with a key, else offline.

    An online mode without any API key becomes ``offline`` (W&B would otherwise prompt for a
    key in the middle of a search).
    """
    chosen = (mode or os.environ.get("WANDB_MODE") or "").strip().lower()
    if chosen in ("disabled", "offline", "dryrun"):
        return "disabled" if chosen == "disabled" else "offline"
    return "online" if has_api_key() else "offline"
