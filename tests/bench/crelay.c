/* The splice loop of forward.pump in C, for tests/bench/relay.py --variant c: a baseline that
   shows what the relay costs without Python. crelay LISTEN_FD UPSTREAM_PORT OUT_FD: for each
   connection accepted on LISTEN_FD, connect to 127.0.0.1:UPSTREAM_PORT, pass the request,
   splice upstream -> client through a 1 MiB pipe, write "CPU_SECONDS READS\n" to OUT_FD. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static double cpu(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_stime.tv_sec
        + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    int ls = atoi(argv[1]), port = atoi(argv[2]), out = atoi(argv[3]);
    for (;;) {
        int c = accept(ls, 0, 0);
        if (c < 0) return 1;
        double start = cpu();
        int u = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(u, (struct sockaddr *)&a, sizeof a) < 0) return 1;
        char buf[4096];
        ssize_t n = recv(c, buf, sizeof buf, 0);
        if (n > 0) send(u, buf, n, 0);
        int p[2], reads = 0;
        if (pipe2(p, O_CLOEXEC) < 0) return 1;
        fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
        while ((n = splice(u, 0, p[1], 0, 1 << 20, 0)) > 0) {
            reads++;
            while (n > 0) {
                ssize_t k = splice(p[0], 0, c, 0, n, 0);
                if (k <= 0) break;
                n -= k;
            }
        }
        shutdown(c, SHUT_WR);
        close(p[0]);
        close(p[1]);
        close(u);
        close(c);
        dprintf(out, "%f %d\n", cpu() - start, reads);
    }
}
