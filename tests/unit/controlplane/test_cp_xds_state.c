/* remora-cp's xDS bookkeeping: how requests relate to the last response (initial, ACK, NACK, stale),
 * subscriptions (CDS wildcard, EDS names), change detection, the ACK/NACK versions recorded per node
 * (including versions that did not change a type), and the WaitForAck decision. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cp_xds_state.h"
#include "remora_proto/xds.h"

#include <string.h>

static const uint8_t content_a[] = {1, 2, 3};
static const uint8_t content_b[] = {1, 2, 4};

static void test_types_and_versions(void **state)
{
    assert_int_equal(rm_cp_type_from_url(REMORA_TYPE_URL_CLUSTER), RM_CP_TYPE_CLUSTER);
    assert_int_equal(rm_cp_type_from_url(REMORA_TYPE_URL_CLUSTER_LOAD_ASSIGNMENT), RM_CP_TYPE_ENDPOINT);
    assert_int_equal(rm_cp_type_from_url("type.googleapis.com/envoy.config.listener.v3.Listener"), -1);
    assert_int_equal(rm_cp_type_from_url(""), -1);
    assert_int_equal(rm_cp_type_from_url(NULL), -1);
    assert_string_equal(rm_cp_type_url(RM_CP_TYPE_ENDPOINT), REMORA_TYPE_URL_CLUSTER_LOAD_ASSIGNMENT);
    assert_string_equal(rm_cp_type_short_name(RM_CP_TYPE_CLUSTER), "cds");

    uint64_t v;
    assert_int_equal(rm_cp_version_parse("12", &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(rm_cp_version_parse("18446744073709551615", &v), 0);
    assert_int_equal(rm_cp_version_parse("18446744073709551616", &v), -1);
    assert_int_equal(rm_cp_version_parse("", &v), -1);
    assert_int_equal(rm_cp_version_parse("v3", &v), -1);
    assert_int_equal(rm_cp_version_parse("-1", &v), -1);
    assert_int_equal(rm_cp_version_parse(NULL, &v), -1);
}

static void test_classify(void **state)
{
    rm_cp_sub_t sub;
    memset(&sub, 0, sizeof(sub));
    /* Before any response: no nonce is a subscription, any nonce is stale (e.g. from a previous server). */
    assert_int_equal(rm_cp_sub_classify(&sub, NULL, NULL, false), RM_CP_REQ_INITIAL);
    assert_int_equal(rm_cp_sub_classify(&sub, "", "", false), RM_CP_REQ_INITIAL);
    assert_int_equal(rm_cp_sub_classify(&sub, "7", "3", false), RM_CP_REQ_STALE);

    rm_cp_sub_on_sent(&sub, 3, "41", content_a, sizeof(content_a));
    assert_int_equal(sub.state, RM_CP_RESP_PENDING);
    assert_int_equal(rm_cp_sub_classify(&sub, "41", "3", false), RM_CP_REQ_ACK);
    assert_int_equal(rm_cp_sub_classify(&sub, "41", "2", true), RM_CP_REQ_NACK);
    assert_int_equal(rm_cp_sub_classify(&sub, "41", "", true), RM_CP_REQ_NACK);
    assert_int_equal(rm_cp_sub_classify(&sub, "41", "2", false), RM_CP_REQ_UPDATE);
    assert_int_equal(rm_cp_sub_classify(&sub, "41", NULL, false), RM_CP_REQ_UPDATE);
    assert_int_equal(rm_cp_sub_classify(&sub, "40", "3", false), RM_CP_REQ_STALE);
    assert_int_equal(rm_cp_sub_classify(&sub, "40", "2", true), RM_CP_REQ_STALE);
    assert_int_equal(rm_cp_sub_classify(&sub, "", "3", false), RM_CP_REQ_INITIAL);
    assert_string_equal(rm_cp_req_kind_name(RM_CP_REQ_NACK), "NACK");
    rm_cp_sub_fini(&sub);
}

static void test_subscriptions(void **state)
{
    rm_cp_sub_t sub;
    memset(&sub, 0, sizeof(sub));
    rm_cp_sub_set_names(&sub, RM_CP_TYPE_CLUSTER, NULL, 0);
    assert_true(sub.subscribed);
    assert_true(sub.wildcard);
    assert_true(rm_cp_sub_wants(&sub, "anything"));

    const char *names[] = {"a", "b"};
    rm_cp_sub_set_names(&sub, RM_CP_TYPE_CLUSTER, names, 2);
    assert_false(sub.wildcard);
    assert_true(rm_cp_sub_wants(&sub, "b"));
    assert_false(rm_cp_sub_wants(&sub, "c"));
    const char *star[] = {"x", "*"};
    rm_cp_sub_set_names(&sub, RM_CP_TYPE_CLUSTER, star, 2);
    assert_true(rm_cp_sub_wants(&sub, "c"));

    /* EDS: only what is named; no names, nothing. */
    rm_cp_sub_set_names(&sub, RM_CP_TYPE_ENDPOINT, NULL, 0);
    assert_false(sub.wildcard);
    assert_false(rm_cp_sub_wants(&sub, "a"));
    rm_cp_sub_set_names(&sub, RM_CP_TYPE_ENDPOINT, names, 1);
    assert_true(rm_cp_sub_wants(&sub, "a"));
    assert_false(rm_cp_sub_wants(&sub, "b"));
    assert_false(rm_cp_sub_wants(&sub, "*"));
    rm_cp_sub_fini(&sub);
}

static void test_change_detection(void **state)
{
    rm_cp_sub_t sub;
    memset(&sub, 0, sizeof(sub));
    /* The first request is answered even when there is nothing to send. */
    assert_true(rm_cp_sub_needs_send(&sub, NULL, 0));
    rm_cp_sub_on_sent(&sub, 1, "1", NULL, 0);
    assert_false(rm_cp_sub_needs_send(&sub, NULL, 0));
    assert_true(rm_cp_sub_needs_send(&sub, content_a, sizeof(content_a)));
    rm_cp_sub_on_sent(&sub, 2, "2", content_a, sizeof(content_a));
    assert_false(rm_cp_sub_needs_send(&sub, content_a, sizeof(content_a)));
    assert_true(rm_cp_sub_needs_send(&sub, content_b, sizeof(content_b)));
    assert_true(rm_cp_sub_needs_send(&sub, content_a, 2));
    assert_int_equal(sub.sent_version, 2);
    assert_string_equal(sub.sent_nonce, "2");
    assert_int_equal(sub.current_through, 2);
    rm_cp_sub_fini(&sub);
}

static void test_ack_bookkeeping(void **state)
{
    rm_cp_node_t *node = rm_cp_node_new("n1", "web");
    rm_cp_node_type_t *nt = &node->types[RM_CP_TYPE_CLUSTER];
    rm_cp_sub_t sub;
    memset(&sub, 0, sizeof(sub));
    rm_cp_node_seen(nt, 1234);
    assert_true(nt->ever_subscribed);
    assert_int_equal(nt->last_seen_ms, 1234);

    rm_cp_sub_on_sent(&sub, 1, "10", content_a, sizeof(content_a));
    assert_false(nt->has_ack);
    rm_cp_on_ack(&sub, nt);
    assert_true(nt->has_ack);
    assert_int_equal(nt->acked_version, 1);
    assert_int_equal(sub.state, RM_CP_RESP_ACKED);

    /* Version 2 changed other things only: the node has version 2 of these resources. */
    rm_cp_on_unchanged(&sub, nt, 2);
    assert_int_equal(nt->acked_version, 2);
    assert_int_equal(sub.current_through, 2);

    /* Version 3 is sent; version 4 leaves it as is before the node answers; the ACK covers 4. */
    rm_cp_sub_on_sent(&sub, 3, "11", content_b, sizeof(content_b));
    rm_cp_on_unchanged(&sub, nt, 4);
    assert_int_equal(nt->acked_version, 2);
    assert_int_equal(sub.current_through, 4);
    rm_cp_on_ack(&sub, nt);
    assert_int_equal(nt->acked_version, 4);

    /* Going back is impossible: an older version never lowers what is recorded. */
    rm_cp_on_unchanged(&sub, nt, 3);
    assert_int_equal(sub.current_through, 4);
    assert_int_equal(nt->acked_version, 4);
    rm_cp_sub_fini(&sub);
    rm_cp_node_free(node);
}

static void test_nack_bookkeeping(void **state)
{
    rm_cp_node_t *node = rm_cp_node_new("n1", NULL);
    assert_string_equal(node->cluster, "");
    rm_cp_node_type_t *nt = &node->types[RM_CP_TYPE_ENDPOINT];
    rm_cp_sub_t sub;
    memset(&sub, 0, sizeof(sub));
    rm_cp_node_seen(nt, 1);
    rm_cp_sub_on_sent(&sub, 5, "20", content_a, sizeof(content_a));
    rm_cp_on_ack(&sub, nt);
    rm_cp_sub_on_sent(&sub, 6, "21", content_b, sizeof(content_b));
    rm_cp_on_nack(&sub, nt, "bad weight");
    assert_int_equal(sub.state, RM_CP_RESP_NACKED);
    assert_true(nt->has_nack);
    assert_int_equal(nt->nacked_version, 6);
    assert_string_equal(nt->nack_message, "bad weight");
    assert_int_equal(nt->acked_version, 5);

    /* The rejected resources are still what the node would get at version 7: that is a NACK of 7. */
    rm_cp_on_unchanged(&sub, nt, 7);
    assert_int_equal(nt->nacked_version, 7);
    assert_int_equal(nt->acked_version, 5);

    const char *msg;
    uint64_t acked;
    assert_int_equal(rm_cp_wait_eval(node, 7, RM_CP_TYPE_ENDPOINT, &acked, &msg), RM_CP_WAIT_NACKED);
    assert_string_equal(msg, "bad weight");
    assert_int_equal(acked, 5);
    assert_int_equal(rm_cp_wait_eval(node, 5, -1, &acked, &msg), RM_CP_WAIT_ACKED);
    assert_int_equal(rm_cp_wait_eval(node, 8, -1, &acked, &msg), RM_CP_WAIT_PENDING);

    /* A fix at 8 is ACKed: the NACK is cleared. */
    rm_cp_sub_on_sent(&sub, 8, "22", content_a, sizeof(content_a));
    rm_cp_on_ack(&sub, nt);
    assert_false(nt->has_nack);
    assert_null(nt->nack_message);
    assert_int_equal(nt->acked_version, 8);
    assert_int_equal(rm_cp_wait_eval(node, 7, -1, &acked, &msg), RM_CP_WAIT_ACKED);
    assert_int_equal(acked, 8);
    assert_string_equal(msg, "");
    rm_cp_sub_fini(&sub);
    rm_cp_node_free(node);
}

static void test_wait_eval(void **state)
{
    uint64_t acked = 99;
    const char *msg = NULL;
    /* Unknown node: wait for it. */
    assert_int_equal(rm_cp_wait_eval(NULL, 1, -1, &acked, &msg), RM_CP_WAIT_PENDING);
    assert_int_equal(acked, 0);
    assert_string_equal(msg, "");

    rm_cp_node_t *node = rm_cp_node_new("n", "c");
    /* Known node without subscriptions: nothing to have ACKed yet. */
    assert_int_equal(rm_cp_wait_eval(node, 1, -1, &acked, NULL), RM_CP_WAIT_PENDING);

    rm_cp_sub_t cds, eds;
    memset(&cds, 0, sizeof(cds));
    memset(&eds, 0, sizeof(eds));
    rm_cp_node_seen(&node->types[RM_CP_TYPE_CLUSTER], 1);
    rm_cp_sub_on_sent(&cds, 3, "1", content_a, 3);
    rm_cp_on_ack(&cds, &node->types[RM_CP_TYPE_CLUSTER]);
    /* Only CDS is subscribed so far: "all types" means CDS. */
    assert_int_equal(rm_cp_wait_eval(node, 3, -1, &acked, NULL), RM_CP_WAIT_ACKED);
    assert_int_equal(acked, 3);
    assert_int_equal(rm_cp_wait_eval(node, 2, RM_CP_TYPE_CLUSTER, &acked, NULL), RM_CP_WAIT_ACKED);
    assert_int_equal(rm_cp_wait_eval(node, 4, RM_CP_TYPE_CLUSTER, &acked, NULL), RM_CP_WAIT_PENDING);
    /* Asking for a type the node never subscribed to waits. */
    assert_int_equal(rm_cp_wait_eval(node, 1, RM_CP_TYPE_ENDPOINT, &acked, NULL), RM_CP_WAIT_PENDING);
    assert_int_equal(acked, 0);

    /* EDS subscribed and pending: all types wait for it; the lowest acked version is reported. */
    rm_cp_node_seen(&node->types[RM_CP_TYPE_ENDPOINT], 2);
    rm_cp_sub_on_sent(&eds, 3, "2", content_b, 3);
    assert_int_equal(rm_cp_wait_eval(node, 3, -1, &acked, NULL), RM_CP_WAIT_PENDING);
    assert_int_equal(acked, 0);
    rm_cp_on_ack(&eds, &node->types[RM_CP_TYPE_ENDPOINT]);
    assert_int_equal(rm_cp_wait_eval(node, 3, -1, &acked, NULL), RM_CP_WAIT_ACKED);
    rm_cp_on_unchanged(&cds, &node->types[RM_CP_TYPE_CLUSTER], 4);
    rm_cp_sub_on_sent(&eds, 4, "3", content_a, 3);
    assert_int_equal(rm_cp_wait_eval(node, 4, -1, &acked, NULL), RM_CP_WAIT_PENDING);
    assert_int_equal(acked, 3);
    assert_int_equal(rm_cp_wait_eval(node, 4, RM_CP_TYPE_CLUSTER, &acked, NULL), RM_CP_WAIT_ACKED);
    assert_int_equal(acked, 4);

    /* A NACK on one type decides "all types" at once, even while the other is fine. */
    rm_cp_on_nack(&eds, &node->types[RM_CP_TYPE_ENDPOINT], NULL);
    assert_int_equal(rm_cp_wait_eval(node, 4, -1, &acked, &msg), RM_CP_WAIT_NACKED);
    assert_string_equal(msg, "");
    /* ... but not a wait for an older version, which was ACKed. */
    assert_int_equal(rm_cp_wait_eval(node, 3, -1, &acked, &msg), RM_CP_WAIT_ACKED);
    rm_cp_sub_fini(&cds);
    rm_cp_sub_fini(&eds);
    rm_cp_node_free(node);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types_and_versions), cmocka_unit_test(test_classify),
        cmocka_unit_test(test_subscriptions),      cmocka_unit_test(test_change_detection),
        cmocka_unit_test(test_ack_bookkeeping),    cmocka_unit_test(test_nack_bookkeeping),
        cmocka_unit_test(test_wait_eval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
