#!/usr/bin/env python3
"""A resolver on a client's path that got its forwarding wrong, for
scripts/doctor-example.sh: it relays every question to amldns (--to), except
names under notebooks.azure.net, which it answers with a public address as if
their conditional forwarder were missing, and the DoH canary, which it
answers as the public DNS would. UDP on 127.0.0.1 only; stdlib only."""

import argparse
import socket
import socketserver
import struct

PUBLIC = "203.0.113.10"
NOT_FORWARDED = ("notebooks.azure.net", "use-application-dns.net")


def qname(msg):
    labels, i = [], 12
    while msg[i]:
        labels.append(msg[i + 1:i + 1 + msg[i]].decode("ascii").lower())
        i += 1 + msg[i]
    return ".".join(labels), i + 5  # the name's end, past QTYPE and QCLASS


def public_answer(query, end):
    (qtype,) = struct.unpack("!H", query[end - 4:end - 2])
    header = query[:2] + struct.pack("!HHHHH", 0x8180, 1, 1 if qtype == 1 else 0, 0, 0)
    answer = b""
    if qtype == 1:
        answer = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(PUBLIC)
    return header + query[12:end] + answer


class Handler(socketserver.BaseRequestHandler):
    """One question, in a thread of its own: a slow one holds up no other."""

    def handle(self):
        query, sock = self.request
        name, end = qname(query)
        if any(name == z or name.endswith("." + z) for z in NOT_FORWARDED):
            sock.sendto(public_answer(query, end), self.client_address)
            return
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
            up.settimeout(3)
            up.sendto(query, ("127.0.0.1", self.server.to))
            try:
                while True:
                    reply = up.recv(4096)
                    if reply[:2] == query[:2]:
                        sock.sendto(reply, self.client_address)
                        return
            except socket.timeout:
                pass


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--to", type=int, required=True, help="amldns's port on 127.0.0.1")
    p.add_argument("--ready", required=True, help="a file created once it listens")
    args = p.parse_args()
    server = socketserver.ThreadingUDPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.to = args.to
    open(args.ready, "w").close()
    server.serve_forever()


if __name__ == "__main__":
    main()
