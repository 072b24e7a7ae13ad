/*
 * The floor: a "DNS server" that does no DNS work at all. It turns each
 * query around as its own answer (QR=1, RA=1, nothing added), so what it
 * costs per query is the kernel's UDP receive and send on loopback and the
 * wake-ups, which every server pays. Comparing a server's CPU per query
 * with this one's says how much of it the server could still save.
 *
 * usage: floor PORT [batch|single]
 *   batch   recvmmsg/sendmmsg, up to 32 datagrams per call (as amldns does)
 *   single  one recvfrom and one sendto per query (as Unbound does)
 * Listens on 127.0.0.1:PORT until killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH 32
#define BUF 4096

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [batch|single]\n", argv[0]);
        return 2;
    }
    int single = argc > 2 && strcmp(argv[2], "single") == 0;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("bind");
        return 1;
    }
    static unsigned char bufs[BATCH][BUF];
    static struct sockaddr_in peers[BATCH];
    static struct iovec iovs[BATCH];
    static struct mmsghdr msgs[BATCH];
    for (;;) {
        if (single) {
            socklen_t len = sizeof peers[0];
            ssize_t n = recvfrom(fd, bufs[0], BUF, 0, (struct sockaddr *)&peers[0], &len);
            if (n < 12)
                continue;
            bufs[0][2] |= 0x80;
            bufs[0][3] = 0x80;
            sendto(fd, bufs[0], n, 0, (struct sockaddr *)&peers[0], len);
            continue;
        }
        for (int i = 0; i < BATCH; i++) {
            iovs[i].iov_base = bufs[i];
            iovs[i].iov_len = BUF;
            msgs[i].msg_hdr = (struct msghdr){
                .msg_name = &peers[i],
                .msg_namelen = sizeof peers[i],
                .msg_iov = &iovs[i],
                .msg_iovlen = 1,
            };
        }
        int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            bufs[i][2] |= 0x80;
            bufs[i][3] = 0x80;
            iovs[i].iov_len = msgs[i].msg_len;
        }
        sendmmsg(fd, msgs, n, 0);
    }
}
