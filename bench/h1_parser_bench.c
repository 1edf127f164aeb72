/* Micro-benchmark of the HTTP/1.1 parser: parses the same heads in a loop and prints throughput.
 * Usage: h1_parser_bench [seconds-per-case]   (default 1)
 * Not a test: numbers depend on the machine; compare before/after a change on the same host. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/h1_parser.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Keeps the compiler from discarding results. */
static volatile uint64_t sink;

typedef int (*parse_fn)(const char *buf, size_t len);

static rm_h1_header_t headers[100];

static int parse_req(const char *buf, size_t len)
{
    rm_h1_request_t r;
    int n = rm_h1_parse_request(buf, len, NULL, headers, 100, &r);
    sink += r.num_headers;
    return n;
}

static int parse_resp(const char *buf, size_t len)
{
    rm_h1_response_t r;
    int n = rm_h1_parse_response(buf, len, NULL, false, headers, 100, &r);
    sink += r.num_headers;
    return n;
}

static int parse_chunked(const char *buf, size_t len)
{
    rm_h1_chunked_t c;
    rm_h1_chunked_init(&c, NULL);
    size_t off = 0;
    for (;;) {
        size_t consumed;
        rm_h1_chunk_out_t out;
        rm_h1_chunk_event_t ev = rm_h1_chunked_next(&c, buf + off, len - off, &consumed, &out);
        off += consumed;
        sink += out.data_len;
        if (ev == RM_H1_CHUNK_DONE)
            return (int)off;
        if (ev != RM_H1_CHUNK_DATA && ev != RM_H1_CHUNK_TRAILER)
            return -1;
    }
}

static void run(const char *name, parse_fn fn, const char *msg, size_t len, double seconds)
{
    if (fn(msg, len) <= 0) {
        fprintf(stderr, "%s: does not parse\n", name);
        exit(1);
    }
    uint64_t iters = 0;
    double start = now_s(), elapsed;
    do {
        for (int i = 0; i < 10000; i++)
            sink += (uint64_t)fn(msg, len);
        iters += 10000;
        elapsed = now_s() - start;
    } while (elapsed < seconds);
    double bytes = (double)iters * (double)len;
    printf("%-22s %5zu bytes  %8.1f ns/msg  %6.2f GB/s  %6.2f M msg/s\n", name, len,
           elapsed * 1e9 / (double)iters, bytes / elapsed / 1e9, (double)iters / elapsed / 1e6);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    if (seconds <= 0)
        seconds = 1.0;

    static const char simple[] = "GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench/1.0\r\n"
                                 "Accept: */*\r\n\r\n";
    static const char browser[] =
        "GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg HTTP/1.1\r\n"
        "Host: www.kittyhell.com\r\n"
        "User-Agent: Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10_6_3; ja-JP-mac; rv:1.9.2.3) "
        "Gecko/20100401 Firefox/3.6.3 Pathtraq/0.9\r\n"
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
        "Accept-Language: ja,en-us;q=0.7,en;q=0.3\r\n"
        "Accept-Encoding: gzip,deflate\r\n"
        "Accept-Charset: Shift_JIS,utf-8;q=0.7,*;q=0.7\r\n"
        "Keep-Alive: 115\r\n"
        "Connection: keep-alive\r\n"
        "Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=xxxxxxxxxx; "
        "__utma=xxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.x; "
        "__utmz=xxxxxxxxx.xxxxxxxxxx.x.x.utmccn=(referral)|utmcsr=reader.livedoor.com|utmcct=/reader/"
        "|utmcmd=referral\r\n"
        "\r\n";
    static const char response[] =
        "HTTP/1.1 200 OK\r\nServer: remora\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
        "Content-Type: application/json\r\nContent-Length: 1234\r\n"
        "Cache-Control: no-cache, no-store\r\nX-Request-Id: 0123456789abcdef\r\n\r\n";
    char *chunked = malloc(70000);
    size_t cl = 0;
    for (int i = 0; i < 16; i++) {
        cl += (size_t)sprintf(chunked + cl, "1000;ext=%d\r\n", i);
        memset(chunked + cl, 'x', 4096);
        cl += 4096;
        memcpy(chunked + cl, "\r\n", 2);
        cl += 2;
    }
    memcpy(chunked + cl, "0\r\nX-Trailer: v\r\n\r\n", 20);
    cl += 20;

    run("request simple", parse_req, simple, sizeof(simple) - 1, seconds);
    run("request browser", parse_req, browser, sizeof(browser) - 1, seconds);
    run("response", parse_resp, response, sizeof(response) - 1, seconds);
    run("chunked 16x4KiB", parse_chunked, chunked, cl, seconds);
    free(chunked);
    return sink == 42 ? 1 : 0;
}
