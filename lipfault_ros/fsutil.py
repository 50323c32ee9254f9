"""Publishing a finished directory in one step, so a reader never sees a half-written one."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

__all__ = ['replace_dir']


def replace_dir(tmp: Path, path: Path) -> None:
    """Move the completed directory ``tmp`` to ``path``, replacing what is there.

    An existing ``path`` is first renamed aside and only deleted once ``tmp`` stands in its
    place, so at every moment ``path`` is either the old or the new content, never neither.
    ``tmp`` must be on the same file system (a sibling of ``path``).
    """
    if not path.exists():
        os.replace(tmp, path)
        return
    old = path.parent / f'.{path.name}.old-{uuid.uuid4().hex[:8]}'
    os.replace(path, old)
    os.replace(tmp, path)
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink()
