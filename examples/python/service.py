"""A web service that registers itself with the registry while it serves.

    python service.py --id user-1 --registry 127.0.0.1:7370

It answers every HTTP GET with its id, registers in group "user-service"
through the registry's gossip address, and leaves the cluster cleanly on
Ctrl-C / SIGTERM (the `with` block stops the registration).
"""

from __future__ import annotations

import argparse
import http.server
import signal
import threading

from registry_client import Registration


def handler(service_id: str) -> type[http.server.BaseHTTPRequestHandler]:
    """A request handler that answers every GET with this instance's id."""

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = f"hello from {service_id}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Hello


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--id", required=True, help="unique id of this instance")
    p.add_argument("--group", default="user-service")
    p.add_argument("--registry", action="append", required=True, help="registry gossip host:port")
    p.add_argument("--http", default="127.0.0.1:0", help="HTTP listen address (port 0: any)")
    p.add_argument("--bind", default="127.0.0.1:0", help="gossip listen address (port 0: any)")
    p.add_argument("--weight", type=int, default=1)
    args = p.parse_args()

    host, port = args.http.rsplit(":", 1)
    server = http.server.ThreadingHTTPServer((host, int(port)), handler(args.id))
    addr = f"{host}:{server.server_address[1]}"

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    registration = Registration(
        args.id, args.group, addr, args.bind, registries=args.registry, weight=args.weight
    )
    with registration:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(f"{args.id}: serving http://{addr}, registered in {args.group!r}", flush=True)
        stop.wait()
    server.shutdown()
    print(f"{args.id}: left the cluster", flush=True)


if __name__ == "__main__":
    main()
