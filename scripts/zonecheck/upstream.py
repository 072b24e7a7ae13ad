#!/usr/bin/env python3
"""Stand-in for amldns's upstream in scripts/zonecheck.sh: answers as Azure's
resolver (168.63.129.16, recursing into public DNS) answers names under the
private-link zones that amldns does not hold.

Microsoft hosts the public copies of the private-link zones in Azure DNS, so a
name that does not exist there is NXDOMAIN with the public zone's SOA (Azure
DNS's default SOA: ns1-01.azure-dns.com, azuredns-hostmaster.microsoft.com,
3600 300 2419200 300) in the authority section (RFC 2308 §3), and an existing
name's missing type is NODATA with the same SOA. The answer comes from a
recursive resolver, so RA=1 and AA=0 (RFC 1035 §4.1.1), and the SOA's TTL is
its minimum (RFC 2308 §5). Names outside the given zones are REFUSED: nothing
in the check should ask for them, and a REFUSED shows up if something does.

Usage: upstream.py PORT ZONE [ZONE ...]   (UDP and TCP on 127.0.0.1:PORT)
"""

import socket
import socketserver
import struct
import sys
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

SOA_TEXT = "ns1-01.azure-dns.com. azuredns-hostmaster.microsoft.com. 1 3600 300 2419200 300"
NEGATIVE_TTL = 300


def answer(wire, zones):
    """The reply to one query in wire form, or None to drop it."""
    try:
        query = dns.message.from_wire(wire)
    except Exception:  # noqa: BLE001 - anything unparseable is dropped, as a resolver would
        return None
    if query.flags & dns.flags.QR or len(query.question) != 1:
        return None
    reply = dns.message.make_response(query, recursion_available=True, our_payload=1232)
    qname = query.question[0].name
    zone = next((z for z in zones if qname.is_subdomain(z)), None)
    if zone is None:
        reply.set_rcode(dns.rcode.REFUSED)
    else:
        if qname != zone:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        reply.authority.append(
            dns.rrset.from_text(zone, NEGATIVE_TTL, dns.rdataclass.IN, dns.rdatatype.SOA, SOA_TEXT)
        )
    return reply.to_wire()


def main():
    port = int(sys.argv[1])
    zones = [dns.name.from_text(z) for z in sys.argv[2:]]

    class Tcp(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.settimeout(5)
            try:
                while True:
                    head = self.request.recv(2, socket.MSG_WAITALL)
                    if len(head) < 2:
                        return
                    wire = self.request.recv(struct.unpack("!H", head)[0], socket.MSG_WAITALL)
                    out = answer(wire, zones)
                    if out is None:
                        return
                    self.request.sendall(struct.pack("!H", len(out)) + out)
            except OSError:
                return

    class TcpServer(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    tcp = TcpServer(("127.0.0.1", port), Tcp)
    threading.Thread(target=tcp.serve_forever, daemon=True).start()

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", port))
    print(f"upstream stand-in on 127.0.0.1:{port} for {' '.join(sys.argv[2:])}", flush=True)
    while True:
        wire, peer = udp.recvfrom(65535)
        out = answer(wire, zones)
        if out is not None:
            udp.sendto(out, peer)


if __name__ == "__main__":
    main()
