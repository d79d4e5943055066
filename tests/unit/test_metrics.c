/* test_metrics.c - unit tests of sheep/metrics.c (counters by opcode, latency buckets) and
 * sheep/http_metrics.c (the Prometheus text of them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/sd_proto.h"
#include "sheep/http/http.h"
#include "sheep/metrics/metrics.h"

static char *render(const struct sheep_metrics *m, const struct sheep_http_state *st)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	assert_non_null(f);
	sheep_http_render_metrics(m, st, f);
	fclose(f);
	return out;
}

static const struct sheep_http_state base_state = {
    .version = "1.2.3",
    .addr = "10.0.0.1",
    .port = 7000,
    .zone = 4,
    .epoch = 9,
    .members = 6,
    .zones = 6,
    .formatted = true,
    .recovery_enabled = true,
    .capacity = 1000,
    .free_bytes = 600,
    .own_bytes = 400,
    .checksum_errors = 2,
    .csum_found = 5,
    .csum_repaired = 4,
    .scrub_enabled = true,
    .scrub_rate = 4194304,
    .scrub_scanned = 17,
    .vdis = 3,
};

static void test_requests_counted_by_opcode_with_bytes_and_errors(void **state)
{
	(void)state;
	struct sheep_metrics m;
	sheep_metrics_init(&m);
	sheep_metrics_request(&m, SD_OP_WRITE_OBJ, SD_RES_SUCCESS, 4096, 0, 300000);
	sheep_metrics_request(&m, SD_OP_WRITE_OBJ, SD_RES_EIO, 512, 0, 300000);
	sheep_metrics_request(&m, SD_OP_READ_OBJ, SD_RES_SUCCESS, 0, 8192, 50000);
	sheep_metrics_request(&m, 0x7e, SD_RES_SUCCESS, 0, 0, 1);
	sheep_metrics_request(NULL, SD_OP_READ_OBJ, 0, 0, 0, 0); /* no metrics: no crash */
	char *s = render(&m, &base_state);
	assert_non_null(strstr(s, "sheep_requests_total{op=\"write_obj\"} 2\n"));
	assert_non_null(strstr(s, "sheep_request_errors_total{op=\"write_obj\"} 1\n"));
	assert_non_null(strstr(s, "sheep_request_bytes_total{op=\"write_obj\",dir=\"in\"} 4608\n"));
	assert_non_null(strstr(s, "sheep_request_bytes_total{op=\"read_obj\",dir=\"out\"} 8192\n"));
	assert_non_null(strstr(s, "sheep_requests_total{op=\"op_0x7e\"} 1\n"));
	assert_null(strstr(s, "sheep_requests_total{op=\"read_vdis\"}"));
	assert_non_null(strstr(
	    s, "sheep_info{version=\"1.2.3\",addr=\"10.0.0.1\",port=\"7000\",zone=\"4\"} 1\n"));
	assert_non_null(strstr(s, "sheep_epoch 9\n"));
	assert_non_null(strstr(s, "sheep_store_free_bytes 600\n"));
	assert_non_null(strstr(s, "sheep_checksum_errors_total 2\n"));
	/* fragments found bad and repaired: labelled samples of the same family */
	assert_non_null(strstr(s, "sheep_checksum_errors_total{state=\"found\"} 5\n"));
	assert_non_null(strstr(s, "sheep_checksum_errors_total{state=\"repaired\"} 4\n"));
	assert_non_null(strstr(s, "sheep_scrub_enabled 1\n"));
	assert_non_null(strstr(s, "sheep_scrub_rate_bytes 4194304\n"));
	assert_non_null(strstr(s, "sheep_scrub_fragments_total 17\n"));
	assert_null(strstr(s, "sheep_recovery_info")); /* no recovery state given */
	free(s);
}

static void test_latency_buckets_are_cumulative_and_end_at_count(void **state)
{
	(void)state;
	struct sheep_metrics m;
	sheep_metrics_init(&m);
	/* 50 us, exactly 100 us (le is inclusive), 1.5 ms, 3 s (+Inf only). */
	sheep_metrics_nbd(&m, SM_WRITE, sheep_metrics_policy(0x22, 6), 4096, 0, 50000);
	sheep_metrics_nbd(&m, SM_WRITE, sheep_metrics_policy(0x22, 6), 4096, 0, 100000);
	sheep_metrics_nbd(&m, SM_WRITE, sheep_metrics_policy(0x22, 6), 4096, 0, 1500000);
	sheep_metrics_nbd(&m, SM_WRITE, sheep_metrics_policy(0x22, 6), 4096, -5, 3000000000ull);
	char *s = render(&m, &base_state);
	const char *p = "sheep_client_latency_seconds_bucket{proto=\"nbd\",op=\"write\",le=";
	char want[160];
	snprintf(want, sizeof(want), "%s\"0.0001\"} 2\n", p);
	assert_non_null(strstr(s, want));
	snprintf(want, sizeof(want), "%s\"0.0025\"} 3\n", p);
	assert_non_null(strstr(s, want));
	snprintf(want, sizeof(want), "%s\"2.5\"} 3\n", p);
	assert_non_null(strstr(s, want));
	snprintf(want, sizeof(want), "%s\"+Inf\"} 4\n", p);
	assert_non_null(strstr(s, want));
	assert_non_null(
	    strstr(s, "sheep_client_latency_seconds_count{proto=\"nbd\",op=\"write\"} 4\n"));
	assert_non_null(strstr(
	    s, "sheep_client_latency_seconds_sum{proto=\"nbd\",op=\"write\"} 3.001650000\n"));
	/* The failed write counts as an error, not as bytes. */
	assert_non_null(strstr(s, "sheep_nbd_bytes_total{op=\"write\"} 12288\n"));
	assert_non_null(strstr(s, "sheep_nbd_errors_total 1\n"));
	assert_non_null(
	    strstr(s, "sheep_nbd_policy_bytes_total{policy=\"4:2\",op=\"write\"} 12288\n"));
	free(s);
	/* Copies: 3 copies and 2:1 count apart. */
	sheep_metrics_nbd(&m, SM_READ, sheep_metrics_policy(0, 3), 100, 0, 1);
	sheep_metrics_nbd(&m, SM_READ, sheep_metrics_policy(0x11, 3), 7, 0, 1);
	s = render(&m, &base_state);
	assert_non_null(strstr(s, "sheep_nbd_policy_bytes_total{policy=\"3\",op=\"read\"} 100\n"));
	assert_non_null(strstr(s, "sheep_nbd_policy_bytes_total{policy=\"2:1\",op=\"read\"} 7\n"));
	free(s);
}

static void test_label_values_escaped_and_recovery_rendered(void **state)
{
	(void)state;
	struct sheep_metrics m;
	sheep_metrics_init(&m);
	sheep_metrics_degraded(&m, 1000);
	sheep_metrics_degraded(&m, 24);
	struct sheep_http_state st = base_state;
	st.version = "v\"1\\\n";
	st.have_recovery = true;
	st.rec_status = "running";
	st.rec_total = 10;
	st.rec_done = 4;
	char *s = render(&m, &st);
	assert_non_null(strstr(s, "version=\"v\\\"1\\\\\\n\""));
	assert_non_null(strstr(s, "sheep_degraded_reads_total 2\n"));
	assert_non_null(strstr(s, "sheep_decode_bytes_total 1024\n"));
	assert_non_null(strstr(s, "sheep_recovery_info{status=\"running\"} 1\n"));
	assert_non_null(strstr(s, "sheep_recovery_fragments 10\n"));
	assert_non_null(strstr(s, "sheep_recovery_fragments_done 4\n"));
	/* Every family announced once with HELP and TYPE. */
	assert_non_null(strstr(s, "# TYPE sheep_client_latency_seconds histogram\n"));
	int n = 0;
	for (size_t i = 0; s[i]; i++)
		n += !strncmp(s + i, "# TYPE sheep_epoch gauge\n", 25);
	assert_int_equal(n, 1);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_requests_counted_by_opcode_with_bytes_and_errors),
	    cmocka_unit_test(test_latency_buckets_are_cumulative_and_end_at_count),
	    cmocka_unit_test(test_label_values_escaped_and_recovery_rendered),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
