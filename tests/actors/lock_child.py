"""A second process: opens a directory on the given data dir, asks for one actor, and prints the outcome as
one JSON line ({"ok": true} or {"error": class name, "path": the locked file})."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from actors import Actor, ActorContext, open_directory
from stores import StoreError


async def main(data_dir: str, name: str) -> None:
    def factory(ctx: ActorContext) -> Actor:
        return Actor(ctx)

    async with open_directory(data_dir=Path(data_dir), actor_factory=factory) as directory:
        try:
            await directory.get(name)
        except StoreError as exc:
            live = directory.statistics().live_actors
            print(json.dumps({"error": type(exc).__name__, "path": str(exc.path), "live": live}), flush=True)
        else:
            print(json.dumps({"ok": True}), flush=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2])
