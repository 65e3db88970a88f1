"""boto3 sessions that share what is the same for all of them: botocore's data files and built-in handlers.

A botocore Session left to itself builds its own Loader, so every session (one per AWS account, plus
STS, Organizations and SQS) reads and parses the service models, the endpoint list and the rulesets
again, and keeps its own copy in memory; and it registers botocore's few hundred built-in event
handlers one by one. Here the process has one Loader and one emitter holding the built-ins, which
each new session copies (as botocore itself copies a session's emitter for every client).

Sharing the Loader across threads is safe: its cache is a dict filled on a miss, so two threads that
miss together both read the file and one result stays. Credentials, region and config stay per session.
"""

from __future__ import annotations

import copy
import os
import threading
from typing import Any

import boto3
import botocore.handlers
import botocore.loaders
import botocore.session
from botocore.hooks import HierarchicalEmitter

_lock = threading.Lock()
_loader: botocore.loaders.Loader | None = None
_builtin_handlers: HierarchicalEmitter | None = None
# What _builtin_handlers was built from: a library may add to botocore's list later (moto's mock does).
_built_from: tuple[Any, ...] = ()


class _SearchPaths(list[str]):
    """boto3 appends its own data folder to the loader's paths on every Session: keep each path once."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


def _shared() -> tuple[botocore.loaders.Loader, HierarchicalEmitter]:
    global _loader, _builtin_handlers, _built_from
    with _lock:
        builtins = tuple(botocore.handlers.BUILTIN_HANDLERS)
        if _builtin_handlers is None or builtins != _built_from:
            template = HierarchicalEmitter()
            # Registers botocore's built-in handlers on `template`, exactly as for any session.
            plain = botocore.session.Session(event_hooks=template)
            _builtin_handlers, _built_from = template, builtins
            if _loader is None:
                # AWS_DATA_PATH (or data_path in the config file) read as botocore's create_loader reads it.
                data_path = plain.get_config_variable("data_path") or ""
                extra = [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep) if p]
                _loader = botocore.loaders.Loader(extra_search_paths=_SearchPaths(extra))
        assert _loader is not None
        return _loader, _builtin_handlers


def shared_loader() -> botocore.loaders.Loader:
    """The process's one botocore Loader (service models read once, kept once)."""
    return _shared()[0]


def new_botocore_session() -> botocore.session.Session:
    """A botocore Session with the shared Loader and a copy of the built-in handlers."""
    loader, handlers = _shared()
    core = botocore.session.Session(event_hooks=copy.copy(handlers), include_builtin_handlers=False)
    core.register_component("data_loader", loader)
    return core


def new_session(**kwargs: Any) -> boto3.session.Session:
    """boto3.session.Session(**kwargs) (credentials, region, profile) on a new_botocore_session()."""
    return boto3.session.Session(botocore_session=new_botocore_session(), **kwargs)
