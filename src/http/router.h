/* The router: picks the route (and so the cluster) for a request from its host and path, following
 * Envoy's virtual host and route matching.
 *
 * Virtual host selection, case-insensitive, first match wins:
 *   1. exact domain               "example.com"
 *   2. longest suffix wildcard    "*.example.com", "*-bar.foo.com" (the "*" matches one or more chars)
 *   3. longest prefix wildcard    "foo.*"
 *   4. the default                "*"
 * At each of the steps 1-3 the Host value is tried as sent and then, if it carries a port, without
 * the port: "example.com" in domains matches "Host: example.com:8080", while "example.com:8080" in
 * domains matches only that port. Bracketed IPv6 hosts ("[::1]:80") are handled.
 * Within the virtual host, routes are tried in order: "prefix" is a byte prefix of the path, "path"
 * an exact match; both compare the path without its query string, case-sensitively. */
#ifndef RM_HTTP_ROUTER_H
#define RM_HTTP_ROUTER_H

#include "config/config.h"

#include <stddef.h>

/* Compiled and immutable: safe to share across threads for rm_router_match. */
typedef struct rm_router rm_router_t;

/* Builds a router from a route table. Copies everything it needs: cfg may be freed afterwards.
 * Expects a validated table (the bootstrap loader or the xDS conversion rejects duplicate domains);
 * if a domain still appears twice, the first virtual host listing it wins. Never returns NULL. */
rm_router_t *rm_router_create(const rm_route_table_config_t *cfg);
void rm_router_destroy(rm_router_t *r);

/* Finds the route for a request. host is the Host/:authority value (may include a port; may be
 * NULL/empty, which only the "*" virtual host matches); path is the origin-form request target (may
 * include a query). Returns the matched route (owned by the router, valid until rm_router_destroy)
 * or NULL when no route matches (the proxy answers 404 with response flag NR). */
const rm_route_config_t *rm_router_match(const rm_router_t *r, const char *host, size_t host_len,
                                         const char *path, size_t path_len);

/* The virtual host that rm_router_match would use for host, or NULL; for logs and the admin page. */
const rm_virtual_host_config_t *rm_router_match_virtual_host(const rm_router_t *r, const char *host,
                                                             size_t host_len);

#endif
