"""Regenerate the plug-ins' schema snapshot (`make schema`).

Starts the engine in this process on a loopback port with an empty models folder, says
`hello` through the plug-ins' own thin client, and writes `welcome["ops"]` to
plugins/common/sfumato_link/ops_schema.json. tests/test_plugin_schema.py fails when the
file differs from what the engine publishes.

    python tools/ops_schema.py [--check]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "common"))
sys.path.insert(0, str(ROOT))

import sfumato_link as sl  # noqa: E402
from sfumato_link import schema  # noqa: E402

from engine.server import Engine  # noqa: E402


def published_ops() -> dict:
    """What a freshly started engine publishes as `welcome["ops"]`, read over the wire."""
    with tempfile.TemporaryDirectory() as models:
        with Engine(bind="tcp://127.0.0.1:*", models_dir=models, device="cpu").start() as engine:
            session = sl.Session(sl.ZmqTransport(engine.address), client="ops-schema")
            try:
                return session.hello()["ops"]
            finally:
                session.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the snapshot is current (exit 1 if not)")
    args = parser.parse_args(argv)
    text = schema.dump(published_ops())
    path = Path(schema.SNAPSHOT_PATH)
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if args.check:
        print(f"{path.relative_to(ROOT)} is {'current' if current == text else 'out of date: run `make schema`'}")
        return 0 if current == text else 1
    if current != text:
        path.write_text(text, encoding="utf-8")
    print(f"{path.relative_to(ROOT)} {'updated' if current != text else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
