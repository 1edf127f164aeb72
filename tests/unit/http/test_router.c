/* Router: virtual host selection (exact, suffix and prefix wildcards, "*", ports, IPv6) and route
 * matching (prefix, exact path, query ignored), table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/mem.h"
#include "http/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- building route tables by hand (the router does not depend on the loader) ---- */

typedef struct {
    rm_route_match_kind_t kind;
    const char *value;
    const char *cluster;
} route_spec_t;

static void add_vhost(rm_route_table_config_t *t, const char *name, const char *const *domains,
                      const route_spec_t *routes)
{
    t->virtual_hosts = rm_realloc(t->virtual_hosts, (t->num_virtual_hosts + 1) * sizeof(*t->virtual_hosts));
    rm_virtual_host_config_t *vh = &t->virtual_hosts[t->num_virtual_hosts++];
    memset(vh, 0, sizeof(*vh));
    vh->name = rm_strdup(name);
    for (; *domains != NULL; domains++) {
        vh->domains = rm_realloc(vh->domains, (vh->num_domains + 1) * sizeof(char *));
        vh->domains[vh->num_domains++] = rm_strdup(*domains);
    }
    for (; routes != NULL && routes->value != NULL; routes++) {
        vh->routes = rm_realloc(vh->routes, (vh->num_routes + 1) * sizeof(*vh->routes));
        rm_route_config_t *r = &vh->routes[vh->num_routes++];
        r->match_kind = routes->kind;
        r->match_value = rm_strdup(routes->value);
        r->cluster = rm_strdup(routes->cluster);
        r->timeout_ms = 1000 * vh->num_routes;
    }
}

#define DOMAINS(...) ((const char *const[]){__VA_ARGS__, NULL})
/* One catch-all route whose cluster names the virtual host, so a match tells which host won. */
#define TO(name) ((const route_spec_t[]){{RM_ROUTE_MATCH_PREFIX, "/", name}, {0, NULL, NULL}})

static rm_router_t *build_host_router(void)
{
    rm_route_table_config_t t;
    memset(&t, 0, sizeof(t));
    t.name = rm_strdup("hosts");
    add_vhost(&t, "exact", DOMAINS("example.com", "Other.Example.ORG"), TO("exact"));
    add_vhost(&t, "exact_port", DOMAINS("example.com:8080"), TO("exact_port"));
    add_vhost(&t, "suffix_long", DOMAINS("*.api.example.com"), TO("suffix_long"));
    add_vhost(&t, "suffix_short", DOMAINS("*.example.com"), TO("suffix_short"));
    add_vhost(&t, "suffix_dash", DOMAINS("*-bar.foo.com"), TO("suffix_dash"));
    add_vhost(&t, "prefix", DOMAINS("foo.*"), TO("prefix"));
    add_vhost(&t, "prefix_long", DOMAINS("foo.bar.*"), TO("prefix_long"));
    add_vhost(&t, "prefix_example", DOMAINS("example.*"), TO("prefix_example"));
    add_vhost(&t, "ipv6", DOMAINS("[::1]", "[2001:db8::1]:9000"), TO("ipv6"));
    add_vhost(&t, "ipv4", DOMAINS("10.0.0.1"), TO("ipv4"));
    add_vhost(&t, "default", DOMAINS("*"), TO("default"));
    add_vhost(&t, "no_routes", DOMAINS("empty.test"), NULL);
    /* The router copies what it needs: free the table before using the router (ASan checks). */
    rm_router_t *r = rm_router_create(&t);
    rm_route_table_config_free(&t);
    return r;
}

static void test_virtual_host_selection(void **state)
{
    static const struct {
        const char *host;
        const char *want; /* cluster of the matched route, NULL for no route */
    } cases[] = {
        /* Exact, case-insensitive both ways. */
        {"example.com", "exact"},
        {"EXAMPLE.com", "exact"},
        {"other.example.org", "exact"},
        /* Ports: an exact host:port wins; otherwise the port is dropped and the host retried. */
        {"example.com:8080", "exact_port"},
        {"example.com:9090", "exact"},
        {"example.com:", "exact"},
        {"EXAMPLE.COM:8080", "exact_port"},
        /* Suffix wildcards: longest first, and "*" stands for at least one character. */
        {"a.api.example.com", "suffix_long"},
        {"a.b.api.example.com", "suffix_long"},
        {"api.example.com", "suffix_short"},
        {"x.example.com:8080", "suffix_short"},
        {"X.EXAMPLE.COM", "suffix_short"},
        {".example.com", "default"},
        {"baz-bar.foo.com", "suffix_dash"},
        {"-bar.foo.com", "default"},
        /* Suffix beats prefix; exact (even without the port) beats both. */
        {"foo.example.com", "suffix_short"},
        {"example.com.au", "prefix_example"},
        {"example.org", "prefix_example"},
        /* Prefix wildcards: longest first, at least one character. */
        {"foo.example.net", "prefix"},
        {"foo.bar.baz", "prefix_long"},
        {"foo.bar.", "prefix"},
        {"foo.bar", "prefix"},
        {"foo.", "default"},
        {"FOO.BAR.BAZ:99", "prefix_long"},
        /* IP literals. */
        {"[::1]", "ipv6"},
        {"[::1]:80", "ipv6"},
        {"[2001:db8::1]:9000", "ipv6"},
        {"[2001:db8::1]:9001", "default"},
        {"[2001:db8::1]", "default"},
        {"10.0.0.1", "ipv4"},
        {"10.0.0.1:443", "ipv4"},
        {"::1", "default"},
        /* Not a port: kept whole. */
        {"example.com:80a", "prefix_example"},
        /* Everything else. */
        {"unknown.test", "default"},
        {"", "default"},
        {"a.api.example.com.evil", "default"},
        /* A virtual host without routes matches the host but routes nothing. */
        {"empty.test", NULL},
    };
    rm_router_t *r = build_host_router();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const rm_route_config_t *route = rm_router_match(r, cases[i].host, strlen(cases[i].host), "/x", 2);
        const char *got = route ? route->cluster : NULL;
        bool ok = cases[i].want ? got != NULL && strcmp(got, cases[i].want) == 0 : got == NULL;
        if (!ok)
            fail_msg("host \"%s\": want %s, got %s", cases[i].host, cases[i].want ? cases[i].want : "(none)",
                     got ? got : "(none)");
    }
    /* NULL host: only "*". */
    const rm_route_config_t *route = rm_router_match(r, NULL, 0, "/", 1);
    assert_non_null(route);
    assert_string_equal(route->cluster, "default");
    /* host_len is honoured: the host need not be NUL-terminated. */
    route = rm_router_match(r, "example.com:8080", 11, "/", 1);
    assert_string_equal(route->cluster, "exact");
    const rm_virtual_host_config_t *vh = rm_router_match_virtual_host(r, "x.example.com", 13);
    assert_non_null(vh);
    assert_string_equal(vh->name, "suffix_short");
    rm_router_destroy(r);
}

static void test_no_default_virtual_host(void **state)
{
    rm_route_table_config_t t;
    memset(&t, 0, sizeof(t));
    add_vhost(&t, "only", DOMAINS("only.test"), TO("only"));
    rm_router_t *r = rm_router_create(&t);
    rm_route_table_config_free(&t);
    assert_non_null(rm_router_match(r, "only.test", 9, "/", 1));
    assert_null(rm_router_match(r, "other.test", 10, "/", 1));
    assert_null(rm_router_match(r, NULL, 0, "/", 1));
    assert_null(rm_router_match_virtual_host(r, "", 0));
    rm_router_destroy(r);

    /* An empty table routes nothing. */
    memset(&t, 0, sizeof(t));
    r = rm_router_create(&t);
    assert_null(rm_router_match(r, "a", 1, "/", 1));
    rm_router_destroy(r);
}

static void test_route_matching(void **state)
{
    rm_route_table_config_t t;
    memset(&t, 0, sizeof(t));
    static const route_spec_t routes[] = {
        {RM_ROUTE_MATCH_PATH, "/exact", "c_exact"},
        {RM_ROUTE_MATCH_PREFIX, "/api/v1", "c_v1"},
        {RM_ROUTE_MATCH_PREFIX, "/api", "c_api"},
        {RM_ROUTE_MATCH_PATH, "/", "c_root"},
        {RM_ROUTE_MATCH_PREFIX, "/api/v2", "c_v2"}, /* shadowed by "/api": order matters */
        {0, NULL, NULL},
    };
    add_vhost(&t, "routes", DOMAINS("routes.test"), routes);
    static const route_spec_t catch_all[] = {{RM_ROUTE_MATCH_PREFIX, "", "c_all"}, {0, NULL, NULL}};
    add_vhost(&t, "all", DOMAINS("all.test"), catch_all);
    rm_router_t *r = rm_router_create(&t);
    rm_route_table_config_free(&t);

    static const struct {
        const char *host, *path, *want;
    } cases[] = {
        {"routes.test", "/exact", "c_exact"},
        {"routes.test", "/exact?x=1", "c_exact"},
        {"routes.test", "/exact/", NULL},
        {"routes.test", "/exac", NULL},
        {"routes.test", "/EXACT", NULL},
        {"routes.test", "/api/v1/users", "c_v1"},
        {"routes.test", "/api/v1", "c_v1"},
        {"routes.test", "/api/v1?a=b", "c_v1"},
        {"routes.test", "/api/v2/x", "c_api"},
        {"routes.test", "/api", "c_api"},
        {"routes.test", "/apix", "c_api"},
        {"routes.test", "/API", NULL},
        {"routes.test", "/ap?i", NULL},
        {"routes.test", "/", "c_root"},
        {"routes.test", "/?q=/api", "c_root"},
        {"routes.test", "/other", NULL},
        {"routes.test", "", NULL},
        {"routes.test", "?/api", NULL},
        {"all.test", "/anything?at=all", "c_all"},
        {"all.test", "", "c_all"},
        {"nohost.test", "/api", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const rm_route_config_t *route =
            rm_router_match(r, cases[i].host, strlen(cases[i].host), cases[i].path, strlen(cases[i].path));
        const char *got = route ? route->cluster : NULL;
        bool ok = cases[i].want ? got != NULL && strcmp(got, cases[i].want) == 0 : got == NULL;
        if (!ok)
            fail_msg("%s%s: want %s, got %s", cases[i].host, cases[i].path,
                     cases[i].want ? cases[i].want : "(none)", got ? got : "(none)");
    }

    /* path_len bounds the path: "/api/v1" cut to "/api". */
    const rm_route_config_t *route = rm_router_match(r, "routes.test", 11, "/api/v1", 4);
    assert_string_equal(route->cluster, "c_api");
    /* The returned route carries the rest of its config. */
    assert_int_equal(route->match_kind, RM_ROUTE_MATCH_PREFIX);
    assert_string_equal(route->match_value, "/api");
    assert_int_equal(route->timeout_ms, 3000);
    /* NULL path: only an empty prefix matches. */
    assert_null(rm_router_match(r, "routes.test", 11, NULL, 0));
    assert_string_equal(rm_router_match(r, "all.test", 8, NULL, 0)->cluster, "c_all");
    rm_router_destroy(r);
}

/* An unvalidated table with a domain listed twice: the first virtual host keeps it. */
static void test_duplicate_domain_first_wins(void **state)
{
    rm_route_table_config_t t;
    memset(&t, 0, sizeof(t));
    add_vhost(&t, "first", DOMAINS("dup.test", "*.w.test", "*"), TO("first"));
    add_vhost(&t, "second", DOMAINS("DUP.test", "*.w.test", "*"), TO("second"));
    rm_router_t *r = rm_router_create(&t);
    rm_route_table_config_free(&t);
    assert_string_equal(rm_router_match(r, "dup.test", 8, "/", 1)->cluster, "first");
    assert_string_equal(rm_router_match(r, "a.w.test", 8, "/", 1)->cluster, "first");
    assert_string_equal(rm_router_match(r, "zzz", 3, "/", 1)->cluster, "first");
    rm_router_destroy(r);
    rm_router_destroy(NULL);
}

/* Many domains: the hash table grows and every domain still resolves to its own virtual host. */
static void test_many_domains(void **state)
{
    rm_route_table_config_t t;
    memset(&t, 0, sizeof(t));
    char name[32], exact[48], suffix[48];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "vh%d", i);
        snprintf(exact, sizeof(exact), "host%d.test", i);
        snprintf(suffix, sizeof(suffix), "*.zone%d.test", i);
        const char *domains[] = {exact, suffix, NULL};
        const route_spec_t routes[] = {{RM_ROUTE_MATCH_PREFIX, "/", name}, {0, NULL, NULL}};
        add_vhost(&t, name, domains, routes);
    }
    rm_router_t *r = rm_router_create(&t);
    rm_route_table_config_free(&t);
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "vh%d", i);
        snprintf(exact, sizeof(exact), "HOST%d.test:8080", i);
        snprintf(suffix, sizeof(suffix), "a.b.zone%d.test", i);
        assert_string_equal(rm_router_match(r, exact, strlen(exact), "/", 1)->cluster, name);
        assert_string_equal(rm_router_match(r, suffix, strlen(suffix), "/", 1)->cluster, name);
    }
    assert_null(rm_router_match(r, "host500.test", 12, "/", 1));
    rm_router_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_virtual_host_selection), cmocka_unit_test(test_no_default_virtual_host),
        cmocka_unit_test(test_route_matching),         cmocka_unit_test(test_duplicate_domain_first_wins),
        cmocka_unit_test(test_many_domains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
