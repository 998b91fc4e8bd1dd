"""A client that assigns 1,000 user ids to the instances of a service.

    python client.py --registry 127.0.0.1:9800

It follows the group locally (no round trip per key), prints the members
and how many of the 1,000 users each one owns, checks a few answers against
the registry's own Match, and asks one instance over HTTP.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
import urllib.request

from registry_client import Client


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--registry", action="append", required=True, help="registry gRPC host:port")
    p.add_argument("--group", default="user-service")
    p.add_argument("--expect", type=int, default=1, help="wait until this many members are up")
    args = p.parse_args()

    with Client(args.registry) as client:
        view = client.group(args.group)
        deadline = time.monotonic() + 30
        while len(view.members()) < args.expect:
            if time.monotonic() > deadline:
                print(f"only {len(view.members())} of {args.expect} members showed up", file=sys.stderr)
                return 1
            view.wait_for_change(timeout=1.0)

        print(f"members of {args.group!r} (ring version {view.version}):")
        for svc in view.members():
            print(f"  {svc.id:<12} {svc.addr:<22} weight={svc.weight}")

        owners: collections.Counter[str] = collections.Counter()
        for user in range(1000):
            owners[view.match(f"user-{user}").id] += 1
        print("1000 users assigned:")
        for sid, n in sorted(owners.items()):
            print(f"  {sid:<12} {n}")

        # The local ring and the registry agree, key by key.
        for user in range(0, 1000, 97):
            key = f"user-{user}"
            assert view.match(key) == client.match(args.group, key), key

        svc = view.match("user-42")
        with urllib.request.urlopen(f"http://{svc.addr}/", timeout=5) as resp:
            print(f"user-42 -> {svc.id}: {resp.read().decode().strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
