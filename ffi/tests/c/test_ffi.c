/* C tests of libregistry: the bad-input table, the standalone ring against
 * the shared vectors file, and (when REGISTRY_ADDR names a running
 * registry-server) the client and the local view.
 *
 * Build: cc -Wall -Wextra -I include ffi/tests/c/test_ffi.c -L target/debug -lregistry -lpthread
 * Run:   LD_LIBRARY_PATH=target/debug ./test_ffi
 *        ./test_ffi stopped-registry   (stops the server REGISTRY_SERVER_PID under a client; run last)
 * Env:   REGISTRY_VECTORS  path of tests/vectors/ring.json (default: that path from the cwd);
 *                          tests/vectors/moves.json is read from the same folder
 *        REGISTRY_ADDR     host:port of a running registry-server (server tests are skipped without it)
 *        REGISTRY_TLS_ADDR host:port of a registry-server with --tls-cert and --tls-client-ca, and
 *        REGISTRY_TLS_DIR  the directory of its test certificates (examples/tls-test-certs)
 * Prints one line per failed check and ends with "N passed, N failed". */
#include "registry.h"
#include "json.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int passed, failed, skipped;
static const char *current_test = "";

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (cond) {                                                                  \
      passed++;                                                                  \
    } else {                                                                     \
      failed++;                                                                  \
      fprintf(stderr, "FAIL %s (%s:%d): %s\n", current_test, __FILE__, __LINE__, #cond); \
    }                                                                            \
  } while (0)

/* Checks that `call` returned `code` and that the thread's last error
 * message contains `msg`. */
#define EXPECT_ERR(call, code, msg) expect_err((call), (code), (msg), #call, __LINE__)

static void expect_err(registry_status got, registry_status want, const char *msg, const char *what, int line) {
  const char *last = registry_last_error_message();
  if (got == want && last && strstr(last, msg)) {
    passed++;
    return;
  }
  failed++;
  fprintf(stderr, "FAIL %s (line %d): %s\n  got %s \"%s\"\n  want %s containing \"%s\"\n", current_test, line,
          what, registry_status_name((int)got), last ? last : "(NULL)", registry_status_name((int)want), msg);
}

#define EXPECT_OK(call) expect_ok((call), #call, __LINE__)

static int expect_ok(registry_status got, const char *what, int line) {
  if (got == REGISTRY_OK) {
    passed++;
    return 1;
  }
  failed++;
  fprintf(stderr, "FAIL %s (line %d): %s\n  got %s \"%s\"\n", current_test, line, what,
          registry_status_name((int)got), registry_last_error_message());
  return 0;
}

/* CHECK that also yields the condition. */
#define CHECK_WAIT(cond) check_wait((cond), #cond, __LINE__)

static int check_wait(int ok, const char *what, int line) {
  if (ok) {
    passed++;
  } else {
    failed++;
    fprintf(stderr, "FAIL %s (line %d): timed out waiting for %s\n", current_test, line, what);
  }
  return ok;
}

static void skip(const char *why) {
  skipped++;
  printf("SKIP %s: %s\n", current_test, why);
}

/* A client for an address where nothing listens, with short timeouts. */
static registry_client *unreachable_client(void) {
  const char *addrs[] = {"127.0.0.1:1"};
  registry_client_options o = {0};
  o.connect_timeout_ms = 200;
  o.request_timeout_ms = 3000; /* refused at once; generous for valgrind */
  o.attempts = 1;
  o.max_backoff_ms = 10;
  o.no_registry_discovery = true;
  registry_client *c = NULL;
  EXPECT_OK(registry_client_new(addrs, 1, &o, &c, NULL));
  return c;
}

static void test_version_and_names(void) {
  current_test = "version_and_names";
  const char *v = registry_version();
  CHECK(v && strlen(v) > 0 && strchr(v, '.'));
  CHECK(!strcmp(registry_status_name(REGISTRY_OK), "REGISTRY_OK"));
  CHECK(!strcmp(registry_status_name(REGISTRY_PANIC), "REGISTRY_PANIC"));
  CHECK(!strcmp(registry_status_name(REGISTRY_CANCELLED), "REGISTRY_CANCELLED"));
  CHECK(!strcmp(registry_status_name(REGISTRY_CANCELLED + 1), "REGISTRY_UNKNOWN_STATUS"));
  CHECK(!strcmp(registry_status_name(-1), "REGISTRY_UNKNOWN_STATUS"));
  CHECK(registry_last_error_message() != NULL);
}

static void test_free_null_is_noop(void) {
  current_test = "free_null_is_noop";
  registry_client_free(NULL);
  registry_view_free(NULL);
  registry_ring_free(NULL);
  registry_moves_free(NULL);
  registry_service_free(NULL);
  registry_service_list_free(NULL);
  registry_group_list_free(NULL);
  registry_registration_free(NULL);
  registry_cancel_free(NULL);
  CHECK(1);
}

static void test_client_bad_input(void) {
  current_test = "client_bad_input";
  registry_client *c = (registry_client *)1;
  const char *good[] = {"127.0.0.1:1"};
  const char *null_entry[] = {"127.0.0.1:1", NULL};
  const char *bad_utf8[] = {"127.0.0.1:\xff"};
  const char *malformed[] = {"exa mple:: /x"};
  EXPECT_ERR(registry_client_new(good, 1, NULL, NULL, NULL), REGISTRY_INVALID_ARGUMENT, "registry_client_new: out is NULL");
  EXPECT_ERR(registry_client_new(NULL, 1, NULL, &c, NULL), REGISTRY_INVALID_ARGUMENT, "registries is NULL but its length is 1");
  CHECK(c == NULL); /* out-parameters are NULL on failure */
  EXPECT_ERR(registry_client_new(NULL, 0, NULL, &c, NULL), REGISTRY_INVALID_ARGUMENT, "no registry address given");
  EXPECT_ERR(registry_client_new(null_entry, 2, NULL, &c, NULL), REGISTRY_INVALID_ARGUMENT, "registries[1] is NULL");
  EXPECT_ERR(registry_client_new(bad_utf8, 1, NULL, &c, NULL), REGISTRY_INVALID_ARGUMENT, "registries[0] is not valid UTF-8");
  EXPECT_ERR(registry_client_new(malformed, 1, NULL, &c, NULL), REGISTRY_INVALID_ARGUMENT, "bad registry address");
  CHECK(c == NULL);

  c = unreachable_client();
  const registry_service *s = (const registry_service *)1;
  registry_service_list *l = (registry_service_list *)1;
  registry_group_list *g = (registry_group_list *)1;
  EXPECT_ERR(registry_client_match(NULL, "g", "k", &s, NULL), REGISTRY_INVALID_ARGUMENT, "registry_client_match: client is NULL");
  CHECK(s == NULL);
  EXPECT_ERR(registry_client_match(c, NULL, "k", &s, NULL), REGISTRY_INVALID_ARGUMENT, "group is NULL");
  EXPECT_ERR(registry_client_match(c, "g", NULL, &s, NULL), REGISTRY_INVALID_ARGUMENT, "key is NULL");
  EXPECT_ERR(registry_client_match(c, "g", "k", NULL, NULL), REGISTRY_INVALID_ARGUMENT, "out is NULL");
  EXPECT_ERR(registry_client_match(c, "g\xff", "k", &s, NULL), REGISTRY_INVALID_ARGUMENT, "group is not valid UTF-8");
  EXPECT_ERR(registry_client_match(c, "g", "\xc3\x28", &s, NULL), REGISTRY_INVALID_ARGUMENT, "key is not valid UTF-8");
  EXPECT_ERR(registry_client_match(c, "", "k", &s, NULL), REGISTRY_INVALID_ARGUMENT, "group is empty");
  EXPECT_ERR(registry_client_match(c, "g", "", &s, NULL), REGISTRY_INVALID_ARGUMENT, "key is empty");
  EXPECT_ERR(registry_client_match(c, "g\n", "k", &s, NULL), REGISTRY_INVALID_ARGUMENT, "group contains a control character");
  EXPECT_ERR(registry_client_match_n(NULL, "g", "k", 2, &l, NULL), REGISTRY_INVALID_ARGUMENT, "client is NULL");
  CHECK(l == NULL);
  EXPECT_ERR(registry_client_match_n(c, "g", "k", 0, &l, NULL), REGISTRY_INVALID_ARGUMENT, "n must be at least 1");
  EXPECT_ERR(registry_client_members(NULL, "g", &l, NULL, NULL, NULL), REGISTRY_INVALID_ARGUMENT, "client is NULL");
  EXPECT_ERR(registry_client_members(c, NULL, &l, NULL, NULL, NULL), REGISTRY_INVALID_ARGUMENT, "group is NULL");
  EXPECT_ERR(registry_client_members(c, "g", NULL, NULL, NULL, NULL), REGISTRY_INVALID_ARGUMENT, "out is NULL");
  EXPECT_ERR(registry_client_groups(NULL, &g, NULL), REGISTRY_INVALID_ARGUMENT, "registry_client_groups: client is NULL");
  CHECK(g == NULL);
  EXPECT_ERR(registry_client_groups(c, NULL, NULL), REGISTRY_INVALID_ARGUMENT, "out is NULL");

  /* Nothing listens on port 1: every RPC says the registry is unavailable. */
  EXPECT_ERR(registry_client_match(c, "g", "k", &s, NULL), REGISTRY_UNAVAILABLE, "no registry reachable: tried 127.0.0.1:1");
  EXPECT_ERR(registry_client_match_n(c, "g", "k", 3, &l, NULL), REGISTRY_UNAVAILABLE, "no registry reachable: tried 127.0.0.1:1");
  EXPECT_ERR(registry_client_members(c, "g", &l, NULL, NULL, NULL), REGISTRY_UNAVAILABLE, "no registry reachable: tried 127.0.0.1:1");
  EXPECT_ERR(registry_client_groups(c, &g, NULL), REGISTRY_UNAVAILABLE, "registry_client_groups: unavailable");
  CHECK(s == NULL && l == NULL && g == NULL);

  registry_view *v = (registry_view *)1;
  EXPECT_ERR(registry_view_new(NULL, "g", &v, NULL), REGISTRY_INVALID_ARGUMENT, "registry_view_new: client is NULL");
  CHECK(v == NULL);
  EXPECT_ERR(registry_view_new(c, NULL, &v, NULL), REGISTRY_INVALID_ARGUMENT, "group is NULL");
  EXPECT_ERR(registry_view_new(c, "\xff", &v, NULL), REGISTRY_INVALID_ARGUMENT, "group is not valid UTF-8");
  EXPECT_ERR(registry_view_new(c, "g", NULL, NULL), REGISTRY_INVALID_ARGUMENT, "out is NULL");
  EXPECT_ERR(registry_view_new(c, "g", &v, NULL), REGISTRY_UNAVAILABLE, "no registry sent a snapshot");
  CHECK(v == NULL);
  registry_client_free(c);
}

static void test_view_bad_input(void) {
  current_test = "view_bad_input";
  const registry_service *s = (const registry_service *)1;
  registry_service_list *l = (registry_service_list *)1;
  uint64_t version = 7;
  bool connected = true;
  EXPECT_ERR(registry_view_match(NULL, "k", &s), REGISTRY_INVALID_ARGUMENT, "registry_view_match: view is NULL");
  CHECK(s == NULL);
  EXPECT_ERR(registry_view_match_len(NULL, "k", 1, &s), REGISTRY_INVALID_ARGUMENT, "view is NULL");
  EXPECT_ERR(registry_view_match_n(NULL, "k", 1, &l), REGISTRY_INVALID_ARGUMENT, "view is NULL");
  CHECK(l == NULL);
  EXPECT_ERR(registry_view_match_n_len(NULL, "k", 1, 1, &l), REGISTRY_INVALID_ARGUMENT, "view is NULL");
  EXPECT_ERR(registry_view_members(NULL, &l, &version, NULL), REGISTRY_INVALID_ARGUMENT, "view is NULL");
  EXPECT_ERR(registry_view_version(NULL, &version), REGISTRY_INVALID_ARGUMENT, "registry_view_version: view is NULL");
  EXPECT_ERR(registry_view_checksum(NULL, &version), REGISTRY_INVALID_ARGUMENT, "registry_view_checksum: view is NULL");
  EXPECT_ERR(registry_view_is_connected(NULL, &connected), REGISTRY_INVALID_ARGUMENT, "view is NULL");
  EXPECT_ERR(registry_view_staleness_ms(NULL, &version), REGISTRY_INVALID_ARGUMENT,
             "registry_view_staleness_ms: view is NULL");
  CHECK(version == 7 && connected == true); /* untouched on failure */
  EXPECT_ERR(registry_view_match(NULL, "k", NULL), REGISTRY_INVALID_ARGUMENT, "out is NULL");
  size_t index = 7;
  uint64_t generation = 7;
  EXPECT_ERR(registry_view_match_index(NULL, "k", 1, &index, &generation), REGISTRY_INVALID_ARGUMENT,
             "registry_view_match_index: view is NULL");
  EXPECT_ERR(registry_view_match_index(NULL, "k", 1, NULL, &generation), REGISTRY_INVALID_ARGUMENT, "index_out is NULL");
  EXPECT_ERR(registry_view_members_generation(NULL, &l, NULL, &generation), REGISTRY_INVALID_ARGUMENT, "view is NULL");
  EXPECT_ERR(registry_view_members_generation(NULL, &l, NULL, NULL), REGISTRY_INVALID_ARGUMENT, "generation_out is NULL");
  CHECK(index == 7 && generation == 7 && l == NULL);
}

static void test_result_objects_bad_input(void) {
  current_test = "result_objects_bad_input";
  CHECK(registry_service_id(NULL) == NULL);
  CHECK(registry_service_group(NULL) == NULL);
  CHECK(registry_service_addr(NULL) == NULL);
  CHECK(registry_service_weight(NULL) == 0);
  CHECK(registry_service_tag_count(NULL) == 0);
  CHECK(registry_service_tag_value(NULL, "k") == NULL);
  CHECK(registry_service_list_len(NULL) == 0);
  CHECK(registry_service_list_get(NULL, 0) == NULL);
  CHECK(registry_group_list_len(NULL) == 0);
  const char *k, *v;
  uint32_t members;
  uint64_t version;
  EXPECT_ERR(registry_service_tag(NULL, 0, &k, &v), REGISTRY_INVALID_ARGUMENT, "registry_service_tag: service is NULL");
  EXPECT_ERR(registry_group_list_get(NULL, 0, &k, &members, &version), REGISTRY_INVALID_ARGUMENT,
             "registry_group_list_get: list is NULL");
  EXPECT_ERR(registry_group_list_checksum(NULL, 0, &version), REGISTRY_INVALID_ARGUMENT,
             "registry_group_list_checksum: list is NULL");
}

static void test_ring_bad_input(void) {
  current_test = "ring_bad_input";
  const char *ids[] = {"a", "b", "c"};
  const char *with_null[] = {"a", NULL};
  const char *bad_utf8[] = {"a", "\xe2\x82"};
  const char *empty[] = {""};
  const char *dup[] = {"a", "b", "a"};
  uint32_t w0[] = {1, 0, 1}, wbig[] = {1, 1001, 1};
  registry_ring *r = (registry_ring *)1;
  EXPECT_ERR(registry_ring_new(ids, NULL, 3, NULL), REGISTRY_INVALID_ARGUMENT, "registry_ring_new: out is NULL");
  EXPECT_ERR(registry_ring_new(NULL, NULL, 3, &r), REGISTRY_INVALID_ARGUMENT, "ids is NULL but its length is 3");
  CHECK(r == NULL);
  EXPECT_ERR(registry_ring_new(with_null, NULL, 2, &r), REGISTRY_INVALID_ARGUMENT, "ids[1] is NULL");
  EXPECT_ERR(registry_ring_new(bad_utf8, NULL, 2, &r), REGISTRY_INVALID_ARGUMENT, "ids[1] is not valid UTF-8");
  EXPECT_ERR(registry_ring_new(empty, NULL, 1, &r), REGISTRY_INVALID_ARGUMENT, "ids[0] is empty");
  EXPECT_ERR(registry_ring_new(dup, NULL, 3, &r), REGISTRY_INVALID_ARGUMENT, "duplicate id \"a\"");
  EXPECT_ERR(registry_ring_new(ids, w0, 3, &r), REGISTRY_INVALID_ARGUMENT, "weights[1]: weight 0 is out of range");
  EXPECT_ERR(registry_ring_new(ids, wbig, 3, &r), REGISTRY_INVALID_ARGUMENT, "weights[1]: weight 1001 is out of range");
  CHECK(r == NULL);

  /* An empty ring builds, and owns no key. */
  const char *id = (const char *)1;
  if (EXPECT_OK(registry_ring_new(NULL, NULL, 0, &r))) {
    CHECK(registry_ring_len(r) == 0);
    EXPECT_ERR(registry_ring_locate(r, "k", &id), REGISTRY_NOT_FOUND, "registry_ring_locate: not found: the ring has no members");
    CHECK(id == NULL);
    registry_ring_free(r);
  }

  if (!EXPECT_OK(registry_ring_new(ids, NULL, 3, &r))) return;
  CHECK(registry_ring_len(r) == 3);
  const char *out[3];
  size_t count = 9;
  EXPECT_ERR(registry_ring_locate(NULL, "k", &id), REGISTRY_INVALID_ARGUMENT, "registry_ring_locate: ring is NULL");
  EXPECT_ERR(registry_ring_locate(r, NULL, &id), REGISTRY_INVALID_ARGUMENT, "key is NULL");
  EXPECT_ERR(registry_ring_locate(r, "k", NULL), REGISTRY_INVALID_ARGUMENT, "id_out is NULL");
  EXPECT_ERR(registry_ring_locate(r, "\xff", &id), REGISTRY_INVALID_ARGUMENT, "key is not valid UTF-8");
  EXPECT_ERR(registry_ring_locate(r, "", &id), REGISTRY_INVALID_ARGUMENT, "key is empty");
  EXPECT_ERR(registry_ring_locate_len(r, NULL, 3, &id), REGISTRY_INVALID_ARGUMENT, "key is NULL but its length is 3");
  EXPECT_ERR(registry_ring_locate_len(r, NULL, 0, &id), REGISTRY_INVALID_ARGUMENT, "key is empty");
  EXPECT_ERR(registry_ring_locate_n(r, "k", 0, out, &count), REGISTRY_INVALID_ARGUMENT, "n must be at least 1");
  CHECK(count == 0);
  EXPECT_ERR(registry_ring_locate_n(r, "k", 3, NULL, &count), REGISTRY_INVALID_ARGUMENT, "ids_out is NULL");
  EXPECT_ERR(registry_ring_locate_n(r, "k", 3, out, NULL), REGISTRY_INVALID_ARGUMENT, "count_out is NULL");
  EXPECT_ERR(registry_ring_locate_n(NULL, "k", 3, out, &count), REGISTRY_INVALID_ARGUMENT, "ring is NULL");
  uint64_t sum = 7;
  EXPECT_ERR(registry_ring_checksum(NULL, &sum), REGISTRY_INVALID_ARGUMENT, "registry_ring_checksum: ring is NULL");
  EXPECT_ERR(registry_ring_checksum(r, NULL), REGISTRY_INVALID_ARGUMENT, "out is NULL");
  CHECK(sum == 7); /* untouched on failure */
  registry_ring_free(r);
}

/* The checksum of a ring of `count` members (0 on failure). */
static uint64_t ring_sum(const char **ids, const uint32_t *weights, size_t count) {
  registry_ring *r = NULL;
  uint64_t sum = 0;
  if (EXPECT_OK(registry_ring_new(ids, weights, count, &r))) EXPECT_OK(registry_ring_checksum(r, &sum));
  registry_ring_free(r);
  return sum;
}

/* The checksum names the members and weights, not their order. */
static void test_ring_checksum(void) {
  current_test = "ring_checksum";
  const char *ab[] = {"a", "b"}, *ba[] = {"b", "a"}, *abc[] = {"a", "b", "c"};
  uint32_t ones[] = {1, 1, 1}, heavier_b[] = {1, 2};
  uint64_t two = ring_sum(ab, NULL, 2);
  CHECK(two != 0);
  CHECK(ring_sum(ba, ones, 2) == two);        /* order and explicit weight 1 do not matter */
  CHECK(ring_sum(abc, NULL, 3) != two);       /* a join */
  CHECK(ring_sum(ab, NULL, 1) != two);        /* a leave */
  CHECK(ring_sum(ab, heavier_b, 2) != two);   /* a weight change */
  CHECK(ring_sum(NULL, NULL, 0) != two);      /* the empty ring has its own */
}

static void test_ring_semantics(void) {
  current_test = "ring_semantics";
  const char *ids[] = {"c", "a", "b", "d"};
  uint32_t weights[] = {1, 2, 3, 4};
  registry_ring *r;
  if (!EXPECT_OK(registry_ring_new(ids, weights, 4, &r))) return;
  char key[32];
  int counts[4] = {0};
  for (int i = 0; i < 4000; i++) {
    snprintf(key, sizeof key, "user-%d", i);
    const char *id = NULL, *out[8];
    size_t n = 0;
    EXPECT_OK(registry_ring_locate(r, key, &id));
    EXPECT_OK(registry_ring_locate_n(r, key, 8, out, &n));
    CHECK(n == 4);                         /* n larger than the ring: every member once */
    CHECK(id && n > 0 && out[0] == id);    /* first of locate_n is locate */
    for (size_t a = 0; a < n; a++)
      for (size_t b = a + 1; b < n; b++) CHECK(strcmp(out[a], out[b]) != 0);
    const char *id2 = NULL;
    EXPECT_OK(registry_ring_locate_len(r, key, strlen(key), &id2));
    CHECK(id2 == id);
    for (int m = 0; m < 4; m++)
      if (id && !strcmp(id, ids[m])) counts[m]++;
  }
  /* Heavier members own more keys (weights 1..4 of 10). */
  CHECK(counts[0] + counts[1] + counts[2] + counts[3] == 4000);
  CHECK(counts[0] < counts[3]);
  registry_ring_free(r);
}

/* Shared ring vectors: every front door must give the answers listed there
 * (format: tests/vectors/README.md). */
static const char *error_kind(registry_status s) {
  switch (s) {
    case REGISTRY_OK: return "ok";
    case REGISTRY_INVALID_ARGUMENT: return "invalid_argument";
    case REGISTRY_NOT_FOUND: return "not_found";
    default: return registry_status_name((int)s);
  }
}

/* Builds a ring from a vectors "members" array. */
static registry_status ring_from_json(const json *members, registry_ring **out) {
  size_t n = members ? members->len : 0;
  const char **ids = calloc(n + 1, sizeof *ids);
  uint32_t *weights = calloc(n + 1, sizeof *weights);
  for (size_t m = 0; m < n; m++) {
    json *id = json_get(members->items[m], "id"), *w = json_get(members->items[m], "weight");
    ids[m] = id ? id->string : NULL;
    weights[m] = w ? (uint32_t)w->number : 1;
  }
  registry_status s = registry_ring_new(ids, weights, n, out);
  free(ids);
  free(weights);
  return s;
}

static void check_vectors(const char *path) {
  current_test = "ring_vectors";
  json *doc = json_read_file(path);
  if (!doc) {
    skip("vectors file missing or unreadable");
    printf("     (looked for %s; set REGISTRY_VECTORS)\n", path);
    return;
  }
  json *algorithm = json_get(doc, "algorithm");
  CHECK(algorithm && algorithm->type == JSON_STRING && !strcmp(algorithm->string, registry_ring_algorithm()));
  json *cases = json_get(doc, "cases");
  CHECK(cases && cases->type == JSON_ARRAY && cases->len > 0);
  size_t checked = 0;
  for (size_t c = 0; cases && c < cases->len; c++) {
    json *cs = cases->items[c];
    json *keys = json_get(cs, "keys"), *jn = json_get(cs, "n");
    size_t n = jn ? (size_t)jn->number : 1;
    registry_ring *r = NULL;
    if (!keys || !EXPECT_OK(ring_from_json(json_get(cs, "members"), &r))) continue;
    json *want_sum = json_get(cs, "checksum");
    uint64_t sum = 0;
    char hex[17];
    if (EXPECT_OK(registry_ring_checksum(r, &sum))) {
      snprintf(hex, sizeof hex, "%016llx", (unsigned long long)sum);
      if (!want_sum || want_sum->type != JSON_STRING || strcmp(hex, want_sum->string) != 0) {
        failed++;
        fprintf(stderr, "FAIL ring_vectors: case %zu checksum: got %s, want %s\n", c, hex,
                want_sum && want_sum->type == JSON_STRING ? want_sum->string : "(none)");
      } else {
        passed++;
      }
    }
    const char **top = calloc(n + 1, sizeof *top);
    for (size_t k = 0; k < keys->len; k++) {
      json *kv = keys->items[k];
      json *key = json_get(kv, "key"), *owner = json_get(kv, "owner"), *want = json_get(kv, "top");
      if (!key || !owner || !want) { CHECK(!"vector without key, owner or top"); continue; }
      const char *id = NULL;
      if (EXPECT_OK(registry_ring_locate(r, key->string, &id)) && strcmp(id, owner->string) != 0) {
        failed++;
        fprintf(stderr, "FAIL ring_vectors: case %zu key \"%s\": got %s, want %s\n", c, key->string, id, owner->string);
      }
      size_t got = 0;
      if (EXPECT_OK(registry_ring_locate_n(r, key->string, n, top, &got))) {
        int same = got == want->len;
        for (size_t i = 0; same && i < got; i++) same = !strcmp(top[i], want->items[i]->string);
        if (!same) {
          failed++;
          fprintf(stderr, "FAIL ring_vectors: case %zu key \"%s\": locate_n(%zu) differs\n", c, key->string, n);
        }
      }
      checked++;
    }
    free(top);
    registry_ring_free(r);
  }
  /* The error table: build, then locate_n(key, n); the kind must match. */
  json *errors = json_get(doc, "errors");
  size_t errors_checked = 0;
  for (size_t e = 0; errors && e < errors->len; e++) {
    json *ev = errors->items[e];
    json *name = json_get(ev, "name"), *key = json_get(ev, "key"), *jn = json_get(ev, "n"), *want = json_get(ev, "error");
    registry_ring *r = NULL;
    registry_status s = ring_from_json(json_get(ev, "members"), &r);
    size_t n = jn ? (size_t)jn->number : 1, got = 0;
    const char **top = calloc(n + 1, sizeof *top);
    if (s == REGISTRY_OK) s = registry_ring_locate_n(r, key->string, n, top, &got);
    if (strcmp(error_kind(s), want->string) != 0) {
      failed++;
      fprintf(stderr, "FAIL ring_vectors: error case \"%s\": got %s, want %s\n", name->string, error_kind(s), want->string);
    } else {
      passed++;
    }
    free(top);
    registry_ring_free(r);
    errors_checked++;
  }
  printf("ring_vectors: %zu keys and %zu error cases checked against %s\n", checked, errors_checked, path);
  json_free(doc);
}

/* ------------------------------------------------------------------ moves */

/* Reads range `i`; 0 (and a failed check) when it cannot. */
static int get_range(const registry_moves *m, size_t i, uint32_t *first, uint32_t *last, const char **from,
                     const char **to) {
  return EXPECT_OK(registry_moves_get(m, i, first, last, from, to));
}

static void test_moves_bad_input(void) {
  current_test = "moves_bad_input";
  const char *ids[] = {"a", "b", "c"};
  const char *bad_utf8[] = {"a", "\xe2\x82"};
  const bool drain_b[] = {false, true, false};
  uint32_t w0[] = {1, 0, 1};
  registry_ring *r = (registry_ring *)1;
  EXPECT_ERR(registry_ring_new_with_states(ids, NULL, drain_b, 3, NULL), REGISTRY_INVALID_ARGUMENT,
             "registry_ring_new_with_states: out is NULL");
  EXPECT_ERR(registry_ring_new_with_states(NULL, NULL, drain_b, 3, &r), REGISTRY_INVALID_ARGUMENT,
             "ids is NULL but its length is 3");
  CHECK(r == NULL);
  EXPECT_ERR(registry_ring_new_with_states(bad_utf8, NULL, drain_b, 2, &r), REGISTRY_INVALID_ARGUMENT,
             "ids[1] is not valid UTF-8");
  EXPECT_ERR(registry_ring_new_with_states(ids, w0, drain_b, 3, &r), REGISTRY_INVALID_ARGUMENT,
             "weights[1]: weight 0 is out of range");
  CHECK(r == NULL);

  EXPECT_ERR(registry_view_ring(NULL, &r), REGISTRY_INVALID_ARGUMENT, "registry_view_ring: view is NULL");
  CHECK(r == NULL);
  EXPECT_ERR(registry_view_ring(NULL, NULL), REGISTRY_INVALID_ARGUMENT, "registry_view_ring: out is NULL");

  registry_ring *old = NULL, *drained = NULL;
  registry_moves *m = (registry_moves *)1;
  EXPECT_OK(registry_ring_new(ids, NULL, 3, &old));
  EXPECT_OK(registry_ring_new_with_states(ids, NULL, drain_b, 3, &drained));
  EXPECT_ERR(registry_ring_moves(NULL, drained, &m), REGISTRY_INVALID_ARGUMENT, "registry_ring_moves: old_ring is NULL");
  CHECK(m == NULL);
  EXPECT_ERR(registry_ring_moves(old, NULL, &m), REGISTRY_INVALID_ARGUMENT, "new_ring is NULL");
  EXPECT_ERR(registry_ring_moves(old, drained, NULL), REGISTRY_INVALID_ARGUMENT, "out is NULL");
  CHECK(registry_moves_len(NULL) == 0 && registry_moves_positions(NULL) == 0);
  if (old && drained && EXPECT_OK(registry_ring_moves(old, drained, &m))) {
    size_t n = registry_moves_len(m), index = 7;
    uint32_t first = 7, last = 7;
    const char *from = (const char *)1, *to = (const char *)1;
    bool moved = true;
    EXPECT_ERR(registry_moves_get(NULL, 0, &first, &last, &from, &to), REGISTRY_INVALID_ARGUMENT,
               "registry_moves_get: moves is NULL");
    CHECK(from == NULL && to == NULL && first == 7 && last == 7);
    EXPECT_ERR(registry_moves_get(m, 0, NULL, &last, &from, &to), REGISTRY_INVALID_ARGUMENT, "first_out is NULL");
    EXPECT_ERR(registry_moves_get(m, 0, &first, NULL, &from, &to), REGISTRY_INVALID_ARGUMENT, "last_out is NULL");
    EXPECT_ERR(registry_moves_get(m, 0, &first, &last, NULL, &to), REGISTRY_INVALID_ARGUMENT, "from_out is NULL");
    EXPECT_ERR(registry_moves_get(m, 0, &first, &last, &from, NULL), REGISTRY_INVALID_ARGUMENT, "to_out is NULL");
    EXPECT_ERR(registry_moves_get(m, n, &first, &last, &from, &to), REGISTRY_NOT_FOUND,
               "registry_moves_get: not found: range index");
    EXPECT_ERR(registry_moves_of_key(NULL, "k", &moved, &index), REGISTRY_INVALID_ARGUMENT,
               "registry_moves_of_key: moves is NULL");
    EXPECT_ERR(registry_moves_of_key(m, NULL, &moved, &index), REGISTRY_INVALID_ARGUMENT, "key is NULL");
    EXPECT_ERR(registry_moves_of_key(m, "k", NULL, &index), REGISTRY_INVALID_ARGUMENT, "moved_out is NULL");
    EXPECT_ERR(registry_moves_of_key(m, "\xff", &moved, &index), REGISTRY_INVALID_ARGUMENT, "key is not valid UTF-8");
    EXPECT_ERR(registry_moves_of_key(m, "", &moved, &index), REGISTRY_INVALID_ARGUMENT, "key is empty");
    EXPECT_ERR(registry_moves_of_key_len(NULL, "k", 1, &moved, &index), REGISTRY_INVALID_ARGUMENT,
               "registry_moves_of_key_len: moves is NULL");
    EXPECT_ERR(registry_moves_of_key_len(m, NULL, 3, &moved, &index), REGISTRY_INVALID_ARGUMENT,
               "key is NULL but its length is 3");
    EXPECT_ERR(registry_moves_of_key_len(m, NULL, 0, &moved, &index), REGISTRY_INVALID_ARGUMENT, "key is empty");
    EXPECT_ERR(registry_moves_of_key_len(m, "\xc3\x28", 2, &moved, &index), REGISTRY_INVALID_ARGUMENT,
               "key is not valid UTF-8");
    CHECK(moved == true && index == 7); /* untouched on failure */
    EXPECT_OK(registry_moves_of_key_len(m, "k-and-more", 1, &moved, NULL)); /* the index is optional */
  }
  registry_moves_free(m);
  registry_ring_free(old);
  registry_ring_free(drained);
}

/* Owners of keys "user-0".."user-(count-1)" in `ring`; 0 when a lookup failed. */
#define MOVE_KEYS 3000
static int ring_owners(const registry_ring *ring, char out[][16], int count) {
  for (int i = 0; i < count; i++) {
    char key[32];
    const char *id = NULL;
    snprintf(key, sizeof key, "user-%d", i);
    if (!EXPECT_OK(registry_ring_locate(ring, key, &id))) return 0;
    snprintf(out[i], 16, "%s", id);
  }
  return 1;
}

/* The moves of a drain of `drained`: every range moved from it to another
 * member, sorted and disjoint, and together they are its lost positions;
 * key "user-<i>" moved iff its owner changed, from was[i] to now[i]. */
static void check_drain_moves(const registry_moves *m, const char *drained, char was[][16], char now[][16],
                              int count) {
  size_t n = registry_moves_len(m);
  uint64_t lost = 0;
  int from_drained = 1, sorted = 1, exact = 1, moved_keys = 0;
  uint32_t first = 0, last = 0, prev_last = 0;
  const char *from = NULL, *to = NULL;
  for (size_t i = 0; i < n && get_range(m, i, &first, &last, &from, &to); i++) {
    from_drained &= from && !strcmp(from, drained) && to && strcmp(to, drained) != 0;
    sorted &= first <= last && (i == 0 || prev_last < first);
    prev_last = last;
    if (from && !strcmp(from, drained)) lost += (uint64_t)(last - first) + 1;
  }
  CHECK(n > 0 && from_drained && sorted);
  CHECK(lost == registry_moves_positions(m)); /* lost_by(drained) covers every moved position */
  for (int i = 0; i < count; i++) {
    char key[32];
    bool moved = false;
    size_t index = 0;
    snprintf(key, sizeof key, "user-%d", i);
    if (!EXPECT_OK(registry_moves_of_key(m, key, &moved, &index))) return;
    exact &= moved == (strcmp(was[i], now[i]) != 0);
    if (moved) {
      moved_keys++;
      exact &= get_range(m, index, &first, &last, &from, &to) && !strcmp(from, was[i]) && !strcmp(to, now[i]);
    } else {
      exact &= index == n;
    }
  }
  CHECK(exact);
  CHECK(moved_keys > 0);
}

/* Draining on standalone rings: the drained member is listed and owns no
 * key; only its keys move; the moves outlive the rings (they own their ids). */
static void test_moves_semantics(void) {
  current_test = "moves_semantics";
  const char *ids[] = {"a", "b", "c"};
  const bool drain_b[] = {false, true, false}, drain_all[] = {true, true, true}, none[] = {false, false, false};
  registry_ring *old = NULL, *drained = NULL, *all = NULL, *serving = NULL, *empty = NULL;
  if (EXPECT_OK(registry_ring_new(ids, NULL, 3, &old)) &&
      EXPECT_OK(registry_ring_new_with_states(ids, NULL, drain_b, 3, &drained)) &&
      EXPECT_OK(registry_ring_new_with_states(ids, NULL, drain_all, 3, &all)) &&
      EXPECT_OK(registry_ring_new_with_states(ids, NULL, none, 3, &serving)) &&
      EXPECT_OK(registry_ring_new(NULL, NULL, 0, &empty))) {
    uint64_t sum_old = 0, sum_drained = 0, sum_serving = 0;
    EXPECT_OK(registry_ring_checksum(old, &sum_old));
    EXPECT_OK(registry_ring_checksum(drained, &sum_drained));
    EXPECT_OK(registry_ring_checksum(serving, &sum_serving));
    CHECK(sum_serving == sum_old && sum_drained != sum_old); /* the states are part of the checksum */
    CHECK(registry_ring_len(drained) == 3 && registry_ring_len(all) == 3);
    const char *id = NULL;
    EXPECT_ERR(registry_ring_locate(all, "k", &id), REGISTRY_NOT_FOUND, "registry_ring_locate: not found");

    registry_moves *same = NULL, *up = NULL, *down = NULL;
    uint32_t first = 0, last = 0;
    const char *from = "", *to = "";
    if (EXPECT_OK(registry_ring_moves(old, old, &same)))
      CHECK(registry_moves_len(same) == 0 && registry_moves_positions(same) == 0);
    if (EXPECT_OK(registry_ring_moves(empty, old, &up)) && get_range(up, 0, &first, &last, &from, &to))
      CHECK(registry_moves_positions(up) == ((uint64_t)1 << 32) && first == 0 && from == NULL && to != NULL);
    if (EXPECT_OK(registry_ring_moves(old, all, &down)) && get_range(down, 0, &first, &last, &from, &to))
      CHECK(registry_moves_positions(down) == ((uint64_t)1 << 32) && from != NULL && to == NULL);
    registry_moves_free(same);
    registry_moves_free(up);
    registry_moves_free(down);
  }
  static char was[MOVE_KEYS][16], now[MOVE_KEYS][16];
  registry_moves *m = NULL;
  int ready = old && drained && ring_owners(old, was, MOVE_KEYS) && ring_owners(drained, now, MOVE_KEYS) &&
              EXPECT_OK(registry_ring_moves(old, drained, &m));
  registry_ring_free(old);
  registry_ring_free(drained);
  registry_ring_free(all);
  registry_ring_free(serving);
  registry_ring_free(empty);
  if (ready) check_drain_moves(m, "b", was, now, MOVE_KEYS);
  registry_moves_free(m);
}

/* Builds a ring from a moves vectors member array ({id, weight, draining}). */
static registry_status ring_with_states_from_json(const json *members, registry_ring **out) {
  size_t n = members ? members->len : 0;
  const char **ids = calloc(n + 1, sizeof *ids);
  uint32_t *weights = calloc(n + 1, sizeof *weights);
  bool *draining = calloc(n + 1, sizeof *draining);
  for (size_t m = 0; m < n; m++) {
    json *id = json_get(members->items[m], "id"), *w = json_get(members->items[m], "weight");
    json *d = json_get(members->items[m], "draining");
    ids[m] = id ? id->string : NULL;
    weights[m] = w ? (uint32_t)w->number : 1;
    draining[m] = d && d->type == JSON_BOOL && d->number != 0;
  }
  registry_status s = registry_ring_new_with_states(ids, weights, draining, n, out);
  free(ids);
  free(weights);
  free(draining);
  return s;
}

/* Whether an owner from the moves (NULL: none) is the vectors' (null or absent: none). */
static int same_owner(const char *got, const json *want) {
  if (!want || want->type == JSON_NULL) return got == NULL;
  return got && want->type == JSON_STRING && !strcmp(got, want->string);
}

/* One range of moves, read into plain arrays. */
typedef struct {
  uint32_t first, last;
  const char *from, *to;
} moved_range;

static int range_is(const moved_range *r, const json *want) {
  json *first = json_get(want, "first"), *last = json_get(want, "last");
  return first && last && r->first == (uint32_t)first->number && r->last == (uint32_t)last->number &&
         same_owner(r->from, json_get(want, "from")) && same_owner(r->to, json_get(want, "to"));
}

/* Counts one check of a vectors case, naming the case when it fails. */
static void case_check(int ok, const char *name, const char *what) {
  if (ok) {
    passed++;
  } else {
    failed++;
    fprintf(stderr, "FAIL moves_vectors: case %s: %s\n", name, what);
  }
}

/* Checks one moves vectors case against `m`; returns the number of keys checked. */
static size_t check_moves_case(const char *name, const json *cs, const registry_moves *m) {
  json *ranges = json_get(cs, "ranges"), *positions = json_get(cs, "positions"), *pairs = json_get(cs, "pairs");
  json *head = json_get(cs, "head"), *tail = json_get(cs, "tail"), *keys = json_get(cs, "keys");
  if (!ranges || !positions || !pairs || !head || !tail || !keys) {
    case_check(0, name, "a field is missing");
    return 0;
  }
  size_t n = registry_moves_len(m);
  case_check(n == (size_t)ranges->number, name, "ranges");
  case_check(registry_moves_positions(m) == (uint64_t)positions->number, name, "positions");
  moved_range *all = calloc(n + 1, sizeof *all);
  for (size_t i = 0; i < n; i++)
    if (!get_range(m, i, &all[i].first, &all[i].last, &all[i].from, &all[i].to)) break;
  /* Per (from, to): its ranges and positions; the pairs cover every range. */
  size_t paired = 0;
  for (size_t p = 0; p < pairs->len; p++) {
    json *pair = pairs->items[p], *want_ranges = json_get(pair, "ranges"), *want_positions = json_get(pair, "positions");
    size_t count = 0;
    uint64_t covered = 0;
    for (size_t i = 0; i < n; i++) {
      if (same_owner(all[i].from, json_get(pair, "from")) && same_owner(all[i].to, json_get(pair, "to"))) {
        count++;
        covered += (uint64_t)(all[i].last - all[i].first) + 1;
      }
    }
    case_check(want_ranges && want_positions && count == (size_t)want_ranges->number &&
                   covered == (uint64_t)want_positions->number,
               name, "a pair's ranges or positions");
    paired += count;
  }
  case_check(paired == n, name, "ranges outside the listed pairs");
  int ends = head->len <= n && tail->len <= n;
  for (size_t i = 0; ends && i < head->len; i++) ends = range_is(&all[i], head->items[i]);
  for (size_t i = 0; ends && i < tail->len; i++) ends = range_is(&all[n - tail->len + i], tail->items[i]);
  case_check(ends, name, "head or tail ranges");
  for (size_t k = 0; k < keys->len; k++) {
    json *kv = keys->items[k], *key = json_get(kv, "key"), *want = json_get(kv, "moved"), *pos = json_get(kv, "position");
    bool moved = false, moved_len = true;
    size_t index = 0, index_len = 1;
    int ok = key && want && pos && EXPECT_OK(registry_moves_of_key(m, key->string, &moved, &index)) &&
             EXPECT_OK(registry_moves_of_key_len(m, key->string, strlen(key->string), &moved_len, &index_len)) &&
             moved == moved_len && index == index_len && moved == (want->number != 0);
    if (ok && moved) {
      uint32_t p = (uint32_t)pos->number;
      ok = index < n && all[index].first <= p && p <= all[index].last &&
           same_owner(all[index].from, json_get(kv, "from")) && same_owner(all[index].to, json_get(kv, "to"));
    } else if (ok) {
      ok = index == n;
    }
    if (!ok) {
      failed++;
      fprintf(stderr, "FAIL moves_vectors: case %s key \"%s\": moved %d index %zu\n", name,
              key ? key->string : "?", (int)moved, index);
    } else {
      passed++;
    }
  }
  free(all);
  return keys->len;
}

/* Shared moves vectors (tests/vectors/moves.json, format in its README):
 * every case's ranges, positions, pairs, head, tail and keys. */
static void check_moves_vectors(const char *path) {
  current_test = "moves_vectors";
  json *doc = json_read_file(path);
  if (!doc) {
    skip("moves vectors file missing or unreadable");
    printf("     (looked for %s, next to REGISTRY_VECTORS)\n", path);
    return;
  }
  json *algorithm = json_get(doc, "algorithm"), *cases = json_get(doc, "cases");
  CHECK(algorithm && algorithm->type == JSON_STRING && !strcmp(algorithm->string, registry_ring_algorithm()));
  CHECK(cases && cases->type == JSON_ARRAY && cases->len > 0);
  size_t keys = 0, used = 0;
  for (size_t c = 0; cases && c < cases->len; c++) {
    json *cs = cases->items[c], *jname = json_get(cs, "name");
    const char *name = jname && jname->type == JSON_STRING ? jname->string : "?";
    registry_ring *old = NULL, *new_ring = NULL;
    registry_moves *m = NULL;
    if (EXPECT_OK(ring_with_states_from_json(json_get(cs, "old"), &old)) &&
        EXPECT_OK(ring_with_states_from_json(json_get(cs, "new"), &new_ring)) &&
        EXPECT_OK(registry_ring_moves(old, new_ring, &m))) {
      keys += check_moves_case(name, cs, m);
      used++;
    }
    registry_moves_free(m);
    registry_ring_free(old);
    registry_ring_free(new_ring);
  }
  printf("moves_vectors: %zu case(s) and %zu keys checked against %s\n", used, keys, path);
  json_free(doc);
}

static void test_registration_bad_input(void) {
  current_test = "registration_bad_input";
  registry_registration *r = (registry_registration *)1;
  registry_registration_config cfg = {0};
  EXPECT_ERR(registry_registration_start(NULL, &r, NULL), REGISTRY_INVALID_ARGUMENT, "registry_registration_start: config is NULL");
  CHECK(r == NULL);
  EXPECT_ERR(registry_registration_start(&cfg, NULL, NULL), REGISTRY_INVALID_ARGUMENT, "out is NULL");
  EXPECT_ERR(registry_registration_start(&cfg, &r, NULL), REGISTRY_INVALID_ARGUMENT, "config.id is NULL");
  cfg.id = "svc-1";
  cfg.group = "web\xff";
  cfg.addr = "127.0.0.1:8080";
  EXPECT_ERR(registry_registration_start(&cfg, &r, NULL), REGISTRY_INVALID_ARGUMENT, "config.group is not valid UTF-8");
  cfg.group = "";
  EXPECT_ERR(registry_registration_start(&cfg, &r, NULL), REGISTRY_INVALID_ARGUMENT, "group is empty");
  cfg.group = "web";
  cfg.weight = 1001;
  EXPECT_ERR(registry_registration_start(&cfg, &r, NULL), REGISTRY_INVALID_ARGUMENT, "weight 1001 is out of range");
  cfg.weight = 0;
  cfg.registry_count = 1;
  EXPECT_ERR(registry_registration_start(&cfg, &r, NULL), REGISTRY_INVALID_ARGUMENT, "config.registries is NULL but its length is 1");
  cfg.registry_count = 0;
  cfg.tag_count = 1;
  EXPECT_ERR(registry_registration_start(&cfg, &r, NULL), REGISTRY_INVALID_ARGUMENT, "config.tag_keys is NULL");
  const char *tk[] = {"zone", "zone"}, *tv[] = {"a", "b"};
  cfg.tag_keys = tk;
  cfg.tag_values = tv;
  cfg.tag_count = 2;
  EXPECT_ERR(registry_registration_start(&cfg, &r, NULL), REGISTRY_INVALID_ARGUMENT, "config.tag_keys has a duplicate key");
  cfg.tag_count = 0;
  cfg.bind = "nowhere";
  EXPECT_ERR(registry_registration_start(&cfg, &r, NULL), REGISTRY_INVALID_ARGUMENT, "config.bind \"nowhere\" is not an ip:port address");
  cfg.bind = NULL;
  cfg.encrypt_key = "zz";
  EXPECT_ERR(registry_registration_start(&cfg, &r, NULL), REGISTRY_INVALID_ARGUMENT, "config.encrypt_key");
  CHECK(r == NULL);

  const registry_service *s = (const registry_service *)1;
  bool joined = true;
  EXPECT_ERR(registry_registration_set_weight(NULL, 2), REGISTRY_INVALID_ARGUMENT, "registration is NULL");
  EXPECT_ERR(registry_registration_set_addr(NULL, "x"), REGISTRY_INVALID_ARGUMENT, "registration is NULL");
  EXPECT_ERR(registry_registration_set_tags(NULL, NULL, NULL, 0), REGISTRY_INVALID_ARGUMENT, "registration is NULL");
  EXPECT_ERR(registry_registration_service(NULL, &s), REGISTRY_INVALID_ARGUMENT, "registration is NULL");
  CHECK(s == NULL);
  EXPECT_ERR(registry_registration_is_joined(NULL, &joined), REGISTRY_INVALID_ARGUMENT, "registration is NULL");
  EXPECT_ERR(registry_registration_stop(NULL), REGISTRY_INVALID_ARGUMENT, "registry_registration_stop: registration is NULL");
  registry_registration_free(NULL);

  /* A registration with no registry reachable still starts (it keeps
   * retrying); once stopped, every call says so, a second stop included. */
  const char *nowhere[] = {"127.0.0.1:1"};
  cfg.encrypt_key = NULL;
  cfg.registries = nowhere;
  cfg.registry_count = 1;
  if (!EXPECT_OK(registry_registration_start(&cfg, &r, NULL))) return;
  EXPECT_ERR(registry_registration_set_weight(r, 0), REGISTRY_INVALID_ARGUMENT, "weight 0 is out of range");
  EXPECT_ERR(registry_registration_set_addr(r, NULL), REGISTRY_INVALID_ARGUMENT, "addr is NULL");
  EXPECT_ERR(registry_registration_set_tags(r, NULL, tv, 1), REGISTRY_INVALID_ARGUMENT, "keys is NULL but its length is 1");
  EXPECT_ERR(registry_registration_set_tags(r, tk, tv, 2), REGISTRY_INVALID_ARGUMENT, "keys has a duplicate key");
  if (EXPECT_OK(registry_registration_service(r, &s))) {
    CHECK(!strcmp(registry_service_id(s), "svc-1") && registry_service_weight(s) == 1);
    registry_service_free(s);
  }
  EXPECT_OK(registry_registration_stop(r));
  EXPECT_ERR(registry_registration_stop(r), REGISTRY_UNAVAILABLE, "registry_registration_stop: unavailable: the registration is stopped");
  EXPECT_ERR(registry_registration_set_weight(r, 2), REGISTRY_UNAVAILABLE, "the registration is stopped");
  EXPECT_ERR(registry_registration_service(r, &s), REGISTRY_UNAVAILABLE, "the registration is stopped");
  EXPECT_ERR(registry_registration_is_joined(r, &joined), REGISTRY_UNAVAILABLE, "the registration is stopped");
  registry_registration_free(r);
}

/* Thread-local errors: a failure on one thread does not show on another. */
static void *fail_on_thread(void *arg) {
  (void)arg;
  registry_ring *r;
  registry_ring_new(NULL, NULL, 1, &r);
  return (void *)registry_last_error_message();
}

static void test_last_error_is_per_thread(void) {
  current_test = "last_error_is_per_thread";
  const registry_service *s;
  EXPECT_ERR(registry_view_match(NULL, "k", &s), REGISTRY_INVALID_ARGUMENT, "registry_view_match: view is NULL");
  pthread_t t;
  void *other = NULL;
  pthread_create(&t, NULL, fail_on_thread, NULL);
  pthread_join(t, &other);
  /* Ours is unchanged by the other thread's failure. */
  CHECK(strstr(registry_last_error_message(), "registry_view_match: view is NULL") != NULL);
}

/* Many handles created and freed: valgrind sees no leak, and it is fast. */
static void test_create_free_many(void) {
  current_test = "create_free_many";
  const char *ids[] = {"a", "b"};
  int ok = 1;
  const bool drain_b[] = {false, true};
  for (int i = 0; i < 200; i++) {
    registry_ring *r = NULL, *d = NULL;
    registry_moves *m = NULL;
    ok &= registry_ring_new(ids, NULL, 2, &r) == REGISTRY_OK;
    ok &= registry_ring_new_with_states(ids, NULL, drain_b, 2, &d) == REGISTRY_OK;
    ok &= registry_ring_moves(r, d, &m) == REGISTRY_OK && registry_moves_len(m) > 0;
    registry_ring_free(r);
    registry_ring_free(d);
    registry_moves_free(m);
  }
  const char *addrs[] = {"127.0.0.1:1", "127.0.0.1:2"};
  registry_client_options o = {0};
  o.no_registry_discovery = true;
  for (int i = 0; i < 50; i++) {
    registry_client *c = NULL;
    ok &= registry_client_new(addrs, 2, &o, &c, NULL) == REGISTRY_OK;
    registry_client_free(c);
  }
  CHECK(ok);
}

/* ------------------------------------------------------------------ server */

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Registers one service through the registry's gossip address. */
static registry_registration *register_service(const char *gossip, const char *group, const char *id,
                                               const char *addr, uint32_t weight, const char *zone) {
  const char *registries[] = {gossip};
  const char *tk[] = {"zone"}, *tv[] = {zone};
  registry_registration_config cfg = {0};
  cfg.id = id;
  cfg.group = group;
  cfg.addr = addr;
  cfg.registries = registries;
  cfg.registry_count = 1;
  cfg.weight = weight;
  if (zone) {
    cfg.tag_keys = tk;
    cfg.tag_values = tv;
    cfg.tag_count = 1;
  }
  registry_registration *r = NULL;
  EXPECT_OK(registry_registration_start(&cfg, &r, NULL));
  return r;
}

/* Waits (at most 20 s) until the view has `want` members and, when `id` is
 * set, until member `id` has weight `weight`. */
static int wait_view(registry_view *v, size_t want, const char *id, uint32_t weight) {
  for (int i = 0; i < 400; i++) {
    registry_service_list *l = NULL;
    if (registry_view_members(v, &l, NULL, NULL) == REGISTRY_OK) {
      int ok = registry_service_list_len(l) == want;
      for (size_t j = 0; ok && id && j < registry_service_list_len(l); j++) {
        const registry_service *s = registry_service_list_get(l, j);
        if (!strcmp(registry_service_id(s), id)) ok = registry_service_weight(s) == weight;
      }
      registry_service_list_free(l);
      if (ok) return 1;
    }
    sleep_ms(50);
  }
  return 0;
}

/* What a change callback saw (guarded by `lock`). */
struct seen_changes {
  pthread_mutex_t lock;
  int calls;
  registry_view_change last;
  size_t moved_ranges;
  pthread_t thread;
};

static void on_change(void *user_data, const registry_view_change *change) {
  struct seen_changes *seen = user_data;
  registry_moves *m = NULL;
  size_t moved = 0;
  if (registry_ring_moves(change->old_ring, change->new_ring, &m) == REGISTRY_OK) moved = registry_moves_len(m);
  registry_moves_free(m);
  pthread_mutex_lock(&seen->lock);
  seen->calls++;
  seen->last = *change;
  seen->last.old_ring = seen->last.new_ring = NULL; /* borrowed: only valid during the call */
  seen->moved_ranges = moved;
  seen->thread = pthread_self();
  pthread_mutex_unlock(&seen->lock);
}

static int calls_of(struct seen_changes *seen) {
  pthread_mutex_lock(&seen->lock);
  int n = seen->calls;
  pthread_mutex_unlock(&seen->lock);
  return n;
}

/* Change callbacks: one call per change, on a thread of their own, with
 * the versions, checksums and rings around it; none once the view is
 * freed. */
static void test_view_callbacks(const char *addr, const char *gossip) {
  current_test = "view_callbacks";
  const char *addrs[] = {addr};
  registry_client *c = NULL;
  registry_view *v = NULL;
  if (!EXPECT_OK(registry_client_new(addrs, 1, NULL, &c, NULL))) return;
  registry_registration *r1 = register_service(gossip, "ffi-changes", "c-1", "127.0.0.1:8401", 1, NULL);
  registry_registration *r2 = NULL;
  struct seen_changes seen = {.lock = PTHREAD_MUTEX_INITIALIZER};
  if (EXPECT_OK(registry_view_new(c, "ffi-changes", &v, NULL)) && CHECK_WAIT(wait_view(v, 1, NULL, 0))) {
    EXPECT_ERR(registry_view_on_change(v, NULL, &seen), REGISTRY_INVALID_ARGUMENT, "cb is NULL");
    EXPECT_ERR(registry_view_on_change(NULL, on_change, &seen), REGISTRY_INVALID_ARGUMENT, "view is NULL");
    uint64_t before_version = 0, before_sum = 0;
    EXPECT_OK(registry_view_version(v, &before_version));
    EXPECT_OK(registry_view_checksum(v, &before_sum));
    EXPECT_OK(registry_view_on_change(v, on_change, &seen));
    sleep_ms(300);
    CHECK(calls_of(&seen) == 0); /* no change, no call */
    r2 = register_service(gossip, "ffi-changes", "c-2", "127.0.0.1:8402", 1, NULL);
    for (int i = 0; i < 200 && calls_of(&seen) == 0; i++) sleep_ms(50);
    sleep_ms(500);
    uint64_t after_sum = 0;
    EXPECT_OK(registry_view_checksum(v, &after_sum));
    pthread_mutex_lock(&seen.lock);
    CHECK(seen.calls == 1);
    CHECK(seen.last.old_version == before_version && seen.last.new_version > before_version);
    CHECK(seen.last.old_checksum == before_sum && seen.last.new_checksum == after_sum);
    CHECK(seen.last.new_checksum != seen.last.old_checksum);
    CHECK(seen.moved_ranges > 0);
    CHECK(!pthread_equal(seen.thread, pthread_self()));
    pthread_mutex_unlock(&seen.lock);
  }
  registry_view_free(v);
  int at_free = calls_of(&seen);
  registry_registration_free(r2);
  sleep_ms(500);
  CHECK(calls_of(&seen) == at_free); /* none after registry_view_free returned */
  registry_registration_free(r1);
  registry_client_free(c);
}

static void test_server(const char *addr, const char *gossip) {
  current_test = "server";
  const char *addrs[] = {addr};
  registry_client *c = NULL;
  if (!EXPECT_OK(registry_client_new(addrs, 1, NULL, &c, NULL))) return;
  const char *group = "ffi-c";

  /* An unknown group: RPC Match says NOT_FOUND; a view of it is empty. */
  const registry_service *s = NULL;
  EXPECT_ERR(registry_client_match(c, "ffi-no-such-group", "k", &s, NULL), REGISTRY_NOT_FOUND, "ffi-no-such-group");
  registry_view *empty = NULL;
  if (EXPECT_OK(registry_view_new(c, "ffi-no-such-group", &empty, NULL))) {
    EXPECT_ERR(registry_view_match(empty, "k", &s), REGISTRY_NOT_FOUND, "has no members");
    registry_view_free(empty);
  }

  registry_view *v = NULL;
  if (!EXPECT_OK(registry_view_new(c, group, &v, NULL))) { registry_client_free(c); return; }
  registry_registration *regs[3];
  const char *ids[] = {"c-1", "c-2", "c-3"};
  uint32_t weights[] = {1, 2, 3};
  regs[0] = register_service(gossip, group, ids[0], "127.0.0.1:8001", 1, "z1");
  regs[1] = register_service(gossip, group, ids[1], "127.0.0.1:8002", 2, "z2");
  regs[2] = register_service(gossip, group, ids[2], "127.0.0.1:8003", 3, "z3");
  CHECK(wait_view(v, 3, NULL, 0));
  bool connected = false, joined = false;
  EXPECT_OK(registry_view_is_connected(v, &connected));
  CHECK(connected);
  EXPECT_OK(registry_registration_is_joined(regs[0], &joined));
  CHECK(joined);

  /* RPC members: sorted by id, with weights and tags. */
  registry_service_list *l = NULL;
  uint64_t version = 0, view_version = 0;
  if (EXPECT_OK(registry_client_members(c, group, &l, &version, NULL, NULL))) {
    CHECK(registry_service_list_len(l) == 3 && version > 0);
    for (size_t i = 0; i < registry_service_list_len(l) && i < 3; i++) {
      const registry_service *m = registry_service_list_get(l, i);
      char zone[4];
      snprintf(zone, sizeof zone, "z%zu", i + 1);
      CHECK(!strcmp(registry_service_id(m), ids[i]) && registry_service_weight(m) == weights[i]);
      CHECK(!strcmp(registry_service_group(m), group));
      CHECK(registry_service_tag_count(m) == 1 && !strcmp(registry_service_tag_value(m, "zone"), zone));
      CHECK(registry_service_tag_value(m, "nope") == NULL);
    }
    CHECK(registry_service_list_get(l, 3) == NULL);
    registry_service_list_free(l);
  }
  EXPECT_OK(registry_view_version(v, &view_version));
  CHECK(view_version > 0);

  /* The view's checksum is that of the standalone ring of the same
   * members, and the registry's Groups reports the same one. */
  uint64_t view_sum = 0, want_sum = ring_sum(ids, weights, 3);
  EXPECT_OK(registry_view_checksum(v, &view_sum));
  CHECK(view_sum == want_sum && want_sum != 0);
  /* Members answers carry it too, from the registry and from the view. */
  uint64_t rpc_sum = 0, members_sum = 0;
  if (EXPECT_OK(registry_client_members(c, group, &l, NULL, &rpc_sum, NULL))) registry_service_list_free(l);
  if (EXPECT_OK(registry_view_members(v, &l, NULL, &members_sum))) registry_service_list_free(l);
  CHECK(rpc_sum == want_sum && members_sum == want_sum);
  registry_group_list *gl = NULL;
  if (EXPECT_OK(registry_client_groups(c, &gl, NULL))) {
    int found = 0;
    for (size_t i = 0; i < registry_group_list_len(gl); i++) {
      const char *name;
      uint32_t members;
      uint64_t gv, gsum = 0;
      EXPECT_OK(registry_group_list_get(gl, i, &name, &members, &gv));
      EXPECT_OK(registry_group_list_checksum(gl, i, &gsum));
      if (!strcmp(name, group)) found = members == 3 && gv > 0 && gsum == want_sum;
    }
    CHECK(found);
    const char *name;
    uint32_t members;
    uint64_t gv;
    EXPECT_ERR(registry_group_list_get(gl, 999, &name, &members, &gv), REGISTRY_NOT_FOUND, "out of range");
    EXPECT_ERR(registry_group_list_checksum(gl, 999, &gv), REGISTRY_NOT_FOUND, "out of range");
    registry_group_list_free(gl);
  }

  /* The local view, the registry's Match and the standalone ring agree. */
  registry_ring *ring = NULL;
  EXPECT_OK(registry_ring_new(ids, weights, 3, &ring));
  int agree = 1, ring_agree = 1, n_agree = 1;
  for (int i = 0; i < 2000; i++) {
    char key[32];
    snprintf(key, sizeof key, "user-%d", i);
    const registry_service *local = NULL, *remote = NULL;
    const char *rid = NULL;
    if (!EXPECT_OK(registry_view_match(v, key, &local))) break;
    if (i < 300) {
      if (EXPECT_OK(registry_client_match(c, group, key, &remote, NULL)))
        agree &= !strcmp(registry_service_id(local), registry_service_id(remote));
      registry_service_free(remote);
      registry_service_list *a = NULL, *b = NULL;
      if (EXPECT_OK(registry_view_match_n(v, key, 3, &a)) && EXPECT_OK(registry_client_match_n(c, group, key, 3, &b, NULL))) {
        n_agree &= registry_service_list_len(a) == 3 && registry_service_list_len(b) == 3;
        for (size_t j = 0; j < 3 && n_agree; j++)
          n_agree &= !strcmp(registry_service_id(registry_service_list_get(a, j)),
                             registry_service_id(registry_service_list_get(b, j)));
      }
      registry_service_list_free(a);
      registry_service_list_free(b);
    }
    if (ring && EXPECT_OK(registry_ring_locate(ring, key, &rid))) ring_agree &= !strcmp(rid, registry_service_id(local));
    registry_service_free(local);
  }
  CHECK(agree);
  CHECK(n_agree);
  CHECK(ring_agree);

  /* match_index: positions in the members list of the same generation. */
  registry_service_list *snap = NULL;
  uint64_t gen = 0;
  int index_agree = 1;
  if (EXPECT_OK(registry_view_members_generation(v, &snap, NULL, &gen))) {
    CHECK(gen > 0 && registry_service_list_len(snap) == 3);
    for (int i = 0; i < 500; i++) {
      char key[32];
      snprintf(key, sizeof key, "user-%d", i);
      size_t index = 99;
      uint64_t g = 0;
      const registry_service *owner = NULL;
      if (EXPECT_OK(registry_view_match_index(v, key, strlen(key), &index, &g)) &&
          EXPECT_OK(registry_view_match(v, key, &owner)))
        index_agree &= g == gen && index < 3 &&
                       !strcmp(registry_service_id(registry_service_list_get(snap, index)), registry_service_id(owner));
      registry_service_free(owner);
    }
    registry_service_list_free(snap);
  }
  CHECK(index_agree);
  registry_ring_free(ring);

  /* Updates reach the view; a stopped registration leaves at once. */
  EXPECT_OK(registry_registration_set_weight(regs[0], 5));
  CHECK(wait_view(v, 3, "c-1", 5));
  uint64_t v2 = 0;
  EXPECT_OK(registry_view_version(v, &v2));
  CHECK(v2 > view_version);
  const char *tk[] = {"zone", "tier"}, *tv[] = {"z9", "gold"};
  EXPECT_OK(registry_registration_set_tags(regs[1], tk, tv, 2));
  EXPECT_OK(registry_registration_set_addr(regs[1], "127.0.0.1:9002"));
  int seen = 0;
  for (int i = 0; i < 400 && !seen; i++) {
    const registry_service *m = NULL;
    registry_service_list *all = NULL;
    if (registry_view_members(v, &all, NULL, NULL) == REGISTRY_OK && registry_service_list_len(all) == 3) {
      m = registry_service_list_get(all, 1);
      seen = !strcmp(registry_service_addr(m), "127.0.0.1:9002") && registry_service_tag_count(m) == 2 &&
             !strcmp(registry_service_tag_value(m, "tier"), "gold");
    }
    registry_service_list_free(all);
    if (!seen) sleep_ms(50);
  }
  CHECK(seen);
  EXPECT_OK(registry_registration_stop(regs[2]));
  CHECK(wait_view(v, 2, NULL, 0));
  EXPECT_ERR(registry_registration_stop(regs[2]), REGISTRY_UNAVAILABLE, "the registration is stopped");
  for (int i = 0; i < 3; i++) registry_registration_free(regs[i]);
  CHECK(wait_view(v, 0, NULL, 0));
  EXPECT_ERR(registry_view_match(v, "k", &s), REGISTRY_NOT_FOUND, "has no members");
  registry_view_free(v);
  registry_client_free(c);
}

/* Waits (at most 20 s) until the view lists `want` members, member `id`
 * among them with draining flag `draining`. */
static int wait_draining(registry_view *v, size_t want, const char *id, bool draining) {
  for (int i = 0; i < 400; i++) {
    registry_service_list *l = NULL;
    int ok = 0;
    if (registry_view_members(v, &l, NULL, NULL) == REGISTRY_OK && registry_service_list_len(l) == want) {
      for (size_t j = 0; j < want; j++) {
        const registry_service *s = registry_service_list_get(l, j);
        if (!strcmp(registry_service_id(s), id)) ok = registry_service_draining(s) == draining;
      }
    }
    registry_service_list_free(l);
    if (ok) return 1;
    sleep_ms(50);
  }
  return 0;
}

/* Owner ids of keys "user-0".."user-(n-1)" from the view (local) and the
 * registry (remote); 0 when any lookup failed. */
#define DRAIN_KEYS 400
static int owners(registry_client *c, registry_view *v, const char *group, char out[][16], char remote[][16]) {
  for (int i = 0; i < DRAIN_KEYS; i++) {
    char key[32];
    snprintf(key, sizeof key, "user-%d", i);
    const registry_service *a = NULL, *b = NULL;
    if (!EXPECT_OK(registry_view_match(v, key, &a))) return 0;
    snprintf(out[i], 16, "%s", registry_service_id(a));
    registry_service_free(a);
    if (!EXPECT_OK(registry_client_match(c, group, key, &b, NULL))) return 0;
    snprintf(remote[i], 16, "%s", registry_service_id(b));
    registry_service_free(b);
  }
  return 1;
}

/* What moved when cd-2 drained, from the view's rings taken before and
 * after: each ring is a snapshot (its checksum and owners are those of
 * its time), and the moves are the drain's, for the keys the view and the
 * registry answered (`was`, `now`) and for MOVE_KEYS more from the rings. */
static void check_view_ring_moves(const registry_ring *ring_before, const registry_ring *ring_after,
                                  char was[][16], char now[][16], uint64_t serving_sum, uint64_t draining_sum) {
  uint64_t sum_before = 0, sum_after = 0;
  EXPECT_OK(registry_ring_checksum(ring_before, &sum_before));
  EXPECT_OK(registry_ring_checksum(ring_after, &sum_after));
  CHECK(sum_before == serving_sum && sum_after == draining_sum);
  CHECK(registry_ring_len(ring_before) == 3 && registry_ring_len(ring_after) == 3);
  static char ring_was[MOVE_KEYS][16], ring_now[MOVE_KEYS][16];
  if (!ring_owners(ring_before, ring_was, MOVE_KEYS) || !ring_owners(ring_after, ring_now, MOVE_KEYS)) return;
  int snapshot = 1;
  for (int i = 0; i < DRAIN_KEYS; i++) snapshot &= !strcmp(ring_was[i], was[i]) && !strcmp(ring_now[i], now[i]);
  CHECK(snapshot);
  registry_moves *m = NULL;
  if (!EXPECT_OK(registry_ring_moves(ring_before, ring_after, &m))) return;
  check_drain_moves(m, "cd-2", was, now, DRAIN_KEYS);
  check_drain_moves(m, "cd-2", ring_was, ring_now, MOVE_KEYS);
  registry_moves_free(m);
}

/* A draining member stays listed (with its flag) and owns no keys, on the
 * registry and in the view; only its keys move; serving again restores
 * exactly the owners it had. */
static void test_draining(const char *addr, const char *gossip) {
  current_test = "draining";
  const char *group = "ffi-c-drain";
  const char *addrs[] = {addr};
  registry_client *c = NULL;
  registry_view *v = NULL;
  EXPECT_ERR(registry_registration_set_draining(NULL, true), REGISTRY_INVALID_ARGUMENT, "registration is NULL");
  if (!EXPECT_OK(registry_client_new(addrs, 1, NULL, &c, NULL))) return;
  if (!EXPECT_OK(registry_view_new(c, group, &v, NULL))) { registry_client_free(c); return; }
  const char *ids[] = {"cd-1", "cd-2", "cd-3"};
  registry_registration *regs[3];
  for (int i = 0; i < 3; i++) regs[i] = register_service(gossip, group, ids[i], "127.0.0.1:9301", 1, NULL);
  static char before[DRAIN_KEYS][16], after[DRAIN_KEYS][16], back[DRAIN_KEYS][16], remote[DRAIN_KEYS][16];
  registry_ring *ring_before = NULL, *ring_after = NULL, *ring_back = NULL;
  if (CHECK_WAIT(wait_draining(v, 3, "cd-2", false)) && EXPECT_OK(registry_view_ring(v, &ring_before)) &&
      owners(c, v, group, before, remote)) {
    uint64_t serving_sum = 0, draining_sum = 0;
    EXPECT_OK(registry_view_checksum(v, &serving_sum));
    EXPECT_OK(registry_registration_set_draining(regs[1], true));
    if (CHECK_WAIT(wait_draining(v, 3, "cd-2", true)) && EXPECT_OK(registry_view_ring(v, &ring_after)) &&
        owners(c, v, group, after, remote)) {
      int owned_before = 0, none = 1, others_stay = 1, agree = 1;
      for (int i = 0; i < DRAIN_KEYS; i++) {
        owned_before += !strcmp(before[i], "cd-2");
        none &= strcmp(after[i], "cd-2") != 0;
        if (strcmp(before[i], "cd-2")) others_stay &= !strcmp(before[i], after[i]);
        agree &= !strcmp(after[i], remote[i]);
      }
      CHECK(owned_before > 0);
      CHECK(none);
      CHECK(others_stay);
      CHECK(agree);
      EXPECT_OK(registry_view_checksum(v, &draining_sum));
      CHECK(draining_sum != serving_sum);
      registry_service_list *n = NULL;
      if (EXPECT_OK(registry_view_match_n(v, "user-1", 3, &n))) {
        CHECK(registry_service_list_len(n) == 2);
        for (size_t j = 0; j < registry_service_list_len(n); j++)
          CHECK(strcmp(registry_service_id(registry_service_list_get(n, j)), "cd-2") != 0);
      }
      registry_service_list_free(n);
      check_view_ring_moves(ring_before, ring_after, before, after, serving_sum, draining_sum);
    }
    EXPECT_OK(registry_registration_set_draining(regs[1], false));
    if (CHECK_WAIT(wait_draining(v, 3, "cd-2", false)) && owners(c, v, group, back, remote)) {
      int same = 1;
      for (int i = 0; i < DRAIN_KEYS; i++) same &= !strcmp(before[i], back[i]) && !strcmp(back[i], remote[i]);
      CHECK(same);
      uint64_t sum = 0;
      EXPECT_OK(registry_view_checksum(v, &sum));
      CHECK(sum == serving_sum);
      /* Serving again gives back exactly the keys it had: nothing moved in all. */
      registry_moves *none = NULL;
      if (EXPECT_OK(registry_view_ring(v, &ring_back)) && EXPECT_OK(registry_ring_moves(ring_before, ring_back, &none)))
        CHECK(registry_moves_len(none) == 0);
      registry_moves_free(none);
    }
  }
  registry_ring_free(ring_before);
  registry_ring_free(ring_after);
  registry_ring_free(ring_back);
  for (int i = 0; i < 3; i++) registry_registration_free(regs[i]);
  registry_view_free(v);
  registry_client_free(c);
}

/* The shared vectors through a local view: each small case's members are
 * registered in their own group, and the view must give the listed owners. */
static void check_vectors_view(const char *path, const char *addr, const char *gossip) {
  current_test = "ring_vectors_view";
  json *doc = json_read_file(path);
  if (!doc) {
    skip("vectors file missing or unreadable");
    return;
  }
  const char *addrs[] = {addr};
  registry_client *c = NULL;
  if (!EXPECT_OK(registry_client_new(addrs, 1, NULL, &c, NULL))) { json_free(doc); return; }
  json *cases = json_get(doc, "cases");
  size_t checked = 0, used = 0;
  for (size_t ci = 0; cases && ci < cases->len; ci++) {
    json *members = json_get(cases->items[ci], "members"), *keys = json_get(cases->items[ci], "keys");
    if (!members || !keys || members->len == 0 || members->len > 16) continue; /* keep the cluster small */
    char group[48];
    snprintf(group, sizeof group, "ffi-vectors-%zu", ci);
    registry_view *v = NULL;
    if (!EXPECT_OK(registry_view_new(c, group, &v, NULL))) continue;
    registry_registration **regs = calloc(members->len, sizeof *regs);
    for (size_t m = 0; m < members->len; m++) {
      json *id = json_get(members->items[m], "id"), *w = json_get(members->items[m], "weight");
      regs[m] = register_service(gossip, group, id->string, "127.0.0.1:1", w ? (uint32_t)w->number : 1, NULL);
    }
    if (CHECK_WAIT(wait_view(v, members->len, NULL, 0))) {
      /* The view's checksum is the case's: the registry's ring and the
       * view's local one are the vectors' ring. */
      json *want_sum = json_get(cases->items[ci], "checksum");
      uint64_t sum = 0;
      char hex[17];
      if (EXPECT_OK(registry_view_checksum(v, &sum))) {
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)sum);
        CHECK(want_sum && want_sum->type == JSON_STRING && !strcmp(hex, want_sum->string));
      }
      for (size_t k = 0; k < keys->len; k++) {
        json *key = json_get(keys->items[k], "key"), *owner = json_get(keys->items[k], "owner");
        json *top = json_get(keys->items[k], "top"), *jn = json_get(cases->items[ci], "n");
        registry_service_list *pref = NULL;
        if (top && jn && EXPECT_OK(registry_view_match_n(v, key->string, (size_t)jn->number, &pref))) {
          int same = registry_service_list_len(pref) == top->len;
          for (size_t i = 0; same && i < top->len; i++)
            same = !strcmp(registry_service_id(registry_service_list_get(pref, i)), top->items[i]->string);
          CHECK(same);
        }
        registry_service_list_free(pref);
        const registry_service *svc = NULL;
        if (EXPECT_OK(registry_view_match(v, key->string, &svc)) && strcmp(registry_service_id(svc), owner->string)) {
          failed++;
          fprintf(stderr, "FAIL ring_vectors_view: case %zu key \"%s\": got %s, want %s\n", ci, key->string,
                  registry_service_id(svc), owner->string);
        }
        registry_service_free(svc);
        checked++;
      }
    }
    for (size_t m = 0; m < members->len; m++) registry_registration_free(regs[m]);
    free(regs);
    registry_view_free(v);
    used++;
  }
  printf("ring_vectors_view: %zu keys of %zu case(s) checked through a local view\n", checked, used);
  CHECK(used > 0);
  registry_client_free(c);
  json_free(doc);
}

/* A registry that stops under a client: the view keeps answering from its
 * last snapshot and reports that it is disconnected; RPCs fail with
 * REGISTRY_UNAVAILABLE; nothing crashes. Stops the server (SIGTERM). */
static void test_stopped_registry(const char *addr, const char *gossip, int server_pid) {
  current_test = "stopped_registry";
  const char *addrs[] = {addr};
  registry_client_options o = {0};
  o.connect_timeout_ms = 300;
  o.request_timeout_ms = 1000;
  o.max_backoff_ms = 100;
  registry_client *c = NULL, *bounded_client = NULL;
  registry_view *v = NULL, *bounded = NULL;
  if (!EXPECT_OK(registry_client_new(addrs, 1, &o, &c, NULL))) return;
  o.max_staleness_ms = 600;
  if (!EXPECT_OK(registry_client_new(addrs, 1, &o, &bounded_client, NULL))) return;
  registry_registration *reg = register_service(gossip, "ffi-stopped", "s-1", "127.0.0.1:8201", 1, NULL);
  if (EXPECT_OK(registry_view_new(c, "ffi-stopped", &v, NULL)) && CHECK_WAIT(wait_view(v, 1, NULL, 0)) &&
      EXPECT_OK(registry_view_new(bounded_client, "ffi-stopped", &bounded, NULL)) &&
      CHECK_WAIT(wait_view(bounded, 1, NULL, 0))) {
    uint64_t stale_ms = 1;
    EXPECT_OK(registry_view_staleness_ms(bounded, &stale_ms));
    CHECK(stale_ms == 0);
    kill(server_pid, SIGTERM);
    int disconnected = 0;
    for (int i = 0; i < 200 && !disconnected; i++) {
      bool connected = true, bounded_connected = true;
      EXPECT_OK(registry_view_is_connected(v, &connected));
      EXPECT_OK(registry_view_is_connected(bounded, &bounded_connected));
      disconnected = !connected && !bounded_connected;
      if (!disconnected) sleep_ms(50);
    }
    CHECK_WAIT(disconnected);
    const registry_service *s = NULL;
    if (EXPECT_OK(registry_view_match(v, "user-1", &s))) CHECK(!strcmp(registry_service_id(s), "s-1"));
    registry_service_free(s);
    EXPECT_ERR(registry_client_match(c, "ffi-stopped", "user-1", &s, NULL), REGISTRY_UNAVAILABLE, "no registry reachable");
    CHECK(s == NULL);
    /* Past max_staleness_ms the bounded view refuses; the other answers. */
    EXPECT_OK(registry_view_staleness_ms(bounded, &stale_ms));
    if (stale_ms < 700) sleep_ms((int)(700 - stale_ms));
    EXPECT_OK(registry_view_staleness_ms(bounded, &stale_ms));
    CHECK(stale_ms >= 700);
    s = NULL;
    EXPECT_ERR(registry_view_match(bounded, "user-1", &s), REGISTRY_UNAVAILABLE, "max_staleness");
    CHECK(s == NULL);
    size_t index = 0;
    uint64_t generation = 0;
    EXPECT_ERR(registry_view_match_index(bounded, "user-1", 6, &index, &generation), REGISTRY_UNAVAILABLE,
               "max_staleness");
    uint64_t free_stale_ms = 0;
    EXPECT_OK(registry_view_staleness_ms(v, &free_stale_ms));
    CHECK(free_stale_ms >= 500);
    if (EXPECT_OK(registry_view_match(v, "user-1", &s))) CHECK(!strcmp(registry_service_id(s), "s-1"));
    registry_service_free(s);
  }
  registry_view_free(bounded);
  registry_view_free(v);
  registry_registration_free(reg);
  registry_client_free(bounded_client);
  registry_client_free(c);
}

/* A client of the TLS registry at `addr` with the certificates in `dir`:
 * `ca` (file name or NULL: no TLS), client `cert`/`key` (or NULL). Returns
 * the status of registry_client_match on the reserved registry group. */
/* The whole file dir/name as a NUL-terminated string (malloc'd), or NULL. */
static char *read_text(const char *dir, const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  long n = -1;
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
    if (fread(buf, 1, (size_t)n, f) == (size_t)n) {
      buf[n] = '\0';
    } else {
      free(buf);
      buf = NULL;
    }
  }
  fclose(f);
  return buf;
}

static registry_status tls_match(const char *addr, const char *dir, const char *ca, const char *cert,
                                 const char *key, const registry_service **s) {
  char ca_path[512], cert_path[512], key_path[512];
  const char *addrs[] = {addr};
  registry_client_options o = {0};
  o.attempts = 1;
  o.no_registry_discovery = true;
  if (ca) {
    snprintf(ca_path, sizeof ca_path, "%s/%s", dir, ca);
    o.tls_ca_file = ca_path;
  }
  if (cert) {
    snprintf(cert_path, sizeof cert_path, "%s/%s", dir, cert);
    snprintf(key_path, sizeof key_path, "%s/%s", dir, key);
    o.tls_cert_file = cert_path;
    o.tls_key_file = key_path;
  }
  registry_client *c = NULL;
  registry_status st = registry_client_new(addrs, 1, &o, &c, NULL);
  if (st != REGISTRY_OK) return st;
  st = registry_client_match(c, "registry-group", "k", s, NULL);
  registry_client_free(c);
  return st;
}

/* TLS with client certificates: the right CA and certificate work; no
 * TLS, no certificate, or a certificate from another CA are refused. */
static void test_tls(const char *addr, const char *dir) {
  current_test = "tls";
  const registry_service *s = NULL;
  if (EXPECT_OK(tls_match(addr, dir, "ca.pem", "client.pem", "client-key.pem", &s))) {
    CHECK(s != NULL && !strcmp(registry_service_group(s), "registry-group"));
    registry_service_free(s);
  }
  EXPECT_ERR(tls_match(addr, dir, NULL, NULL, NULL, &s), REGISTRY_UNAVAILABLE, "registry_client_match");
  EXPECT_ERR(tls_match(addr, dir, "ca.pem", NULL, NULL, &s), REGISTRY_UNAVAILABLE, "registry_client_match");
  EXPECT_ERR(tls_match(addr, dir, "ca.pem", "other-client.pem", "other-client-key.pem", &s), REGISTRY_UNAVAILABLE,
             "registry_client_match");
  EXPECT_ERR(tls_match(addr, dir, "other-ca.pem", "client.pem", "client-key.pem", &s), REGISTRY_UNAVAILABLE,
             "certificate");
  CHECK(s == NULL);

  /* Bad settings fail at creation, naming the file or the field. */
  EXPECT_ERR(tls_match(addr, dir, "no-such-ca.pem", NULL, NULL, &s), REGISTRY_INVALID_ARGUMENT, "no-such-ca.pem");
  EXPECT_ERR(tls_match(addr, dir, "client-key.pem", NULL, NULL, &s), REGISTRY_INVALID_ARGUMENT, "no CA certificate");
  const char *addrs[] = {addr};
  registry_client_options o = {0};
  o.tls_domain = "localhost";
  registry_client *c = NULL;
  EXPECT_ERR(registry_client_new(addrs, 1, &o, &c, NULL), REGISTRY_INVALID_ARGUMENT, "tls_ca_file");
  CHECK(c == NULL);

  /* The same certificates given as PEM text instead of files. */
  char *ca_pem = read_text(dir, "ca.pem"), *cert_pem = read_text(dir, "client.pem"),
       *key_pem = read_text(dir, "client-key.pem"), *other_ca_pem = read_text(dir, "other-ca.pem");
  CHECK(ca_pem && cert_pem && key_pem && other_ca_pem);
  if (ca_pem && cert_pem && key_pem && other_ca_pem) {
    registry_client_options p = {0};
    p.attempts = 1;
    p.no_registry_discovery = true;
    p.tls_ca_pem = ca_pem;
    p.tls_cert_pem = cert_pem;
    p.tls_key_pem = key_pem;
    if (EXPECT_OK(registry_client_new(addrs, 1, &p, &c, NULL))) {
      if (EXPECT_OK(registry_client_match(c, "registry-group", "k", &s, NULL))) registry_service_free(s);
      registry_client_free(c);
    }
    p.tls_ca_pem = other_ca_pem;
    if (EXPECT_OK(registry_client_new(addrs, 1, &p, &c, NULL))) {
      EXPECT_ERR(registry_client_match(c, "registry-group", "k", &s, NULL), REGISTRY_UNAVAILABLE, "certificate");
      registry_client_free(c);
    }
    /* A file and its text together, or text that is not PEM, are refused. */
    p.tls_ca_pem = ca_pem;
    p.tls_ca_file = "ca.pem";
    c = NULL;
    EXPECT_ERR(registry_client_new(addrs, 1, &p, &c, NULL), REGISTRY_INVALID_ARGUMENT, "tls_ca_pem are both set");
    p.tls_ca_file = NULL;
    p.tls_ca_pem = "not a certificate";
    EXPECT_ERR(registry_client_new(addrs, 1, &p, &c, NULL), REGISTRY_INVALID_ARGUMENT, "no CA certificate");
    CHECK(c == NULL);
  }
  free(ca_pem);
  free(cert_pem);
  free(key_pem);
  free(other_ca_pem);
}

/* ---------------------------------------------------------------- messages */

/* The core's hint after the addresses it could not connect to. */
#define NOT_RUNNING "is a registry-server running there? (its gRPC port is its --addr)"

/* What the calls of the message table use. */
typedef struct {
  char dead1[32], dead2[32];              /* loopback addresses nothing listens on */
  const char *addr, *gossip;              /* the registry-server, or NULL */
  const char *tls_addr, *tls_dir;         /* the TLS registry-server and its certificates, or NULL */
  registry_client *dead, *live;           /* clients of dead1+dead2, and of addr */
} msg_ctx;

/* A loopback address where nothing listens: bound, noted, closed. */
static void dead_addr(char *out, size_t cap) {
  out[0] = '\0';
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
    snprintf(out, cap, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
  if (fd >= 0) close(fd);
}

static registry_status msg_no_registry_match(msg_ctx *x) {
  const registry_service *s = NULL;
  return registry_client_match(x->dead, "web", "k", &s, NULL);
}
static registry_status msg_no_registry_view(msg_ctx *x) {
  registry_view *v = NULL;
  return registry_view_new(x->dead, "web", &v, NULL);
}
static registry_status msg_empty_name(msg_ctx *x) {
  const registry_service *s = NULL;
  return registry_client_match(x->dead, "", "k", &s, NULL);
}
static registry_status new_client_of(const char *addr) {
  const char *addrs[] = {addr};
  registry_client *c = NULL;
  registry_status st = registry_client_new(addrs, 1, NULL, &c, NULL);
  registry_client_free(c);
  return st;
}
static registry_status msg_no_port(msg_ctx *x) {
  (void)x;
  return new_client_of("127.0.0.1");
}
static registry_status msg_bad_port(msg_ctx *x) {
  (void)x;
  return new_client_of("127.0.0.1:99999");
}
static registry_status msg_unknown_group(msg_ctx *x) {
  const registry_service *s = NULL;
  return registry_client_match(x->live, "ffi-c-errors-unknown", "k", &s, NULL);
}
static registry_status msg_emptied_group(msg_ctx *x) {
  const registry_service *s = NULL;
  return registry_client_match(x->live, "ffi-c-errors-emptied", "k", &s, NULL);
}
static registry_status msg_view_of_empty_group(msg_ctx *x) {
  registry_view *v = NULL;
  registry_status st = registry_view_new(x->live, "ffi-c-errors-unknown", &v, NULL);
  if (st != REGISTRY_OK) return st;
  const registry_service *s = NULL;
  st = registry_view_match(v, "k", &s);
  registry_service_free(s);
  registry_view_free(v);
  return st;
}
static registry_status msg_tls_plain_client(msg_ctx *x) {
  const registry_service *s = NULL;
  return tls_match(x->tls_addr, x->tls_dir, NULL, NULL, NULL, &s);
}
static registry_status msg_tls_other_ca(msg_ctx *x) {
  const registry_service *s = NULL;
  return tls_match(x->tls_addr, x->tls_dir, "other-ca.pem", "client.pem", "client-key.pem", &s);
}
static registry_status msg_tls_no_client_cert(msg_ctx *x) {
  const registry_service *s = NULL;
  return tls_match(x->tls_addr, x->tls_dir, "ca.pem", NULL, NULL, &s);
}
static registry_status msg_tls_client_plain_registry(msg_ctx *x) {
  const registry_service *s = NULL;
  return tls_match(x->addr, x->tls_dir, "ca.pem", NULL, NULL, &s);
}

/* One row: the call, the status it must return, substrings its last error
 * message must contain ({dead1}, {dead2}, {addr} and {tls} stand for those
 * addresses), and one it must not. `needs`: "server", "tls", "both" or NULL. */
typedef struct {
  const char *name;
  const char *needs;
  registry_status (*call)(msg_ctx *);
  registry_status want;
  const char *has[3];
  const char *not_has;
} msg_row;

static const msg_row MESSAGE_TABLE[] = {
    {"no registry: match", NULL, msg_no_registry_match, REGISTRY_UNAVAILABLE,
     {"registry_client_match: unavailable: no registry reachable: tried {dead1} (connection refused), {dead2} "
      "(connection refused)",
      NOT_RUNNING},
     "transport error"},
    {"no registry: view", NULL, msg_no_registry_view, REGISTRY_UNAVAILABLE,
     {"registry_view_new: unavailable: no registry sent a snapshot of group \"web\"", "tried {dead1} (connection refused)",
      NOT_RUNNING},
     NULL},
    {"empty group name", NULL, msg_empty_name, REGISTRY_INVALID_ARGUMENT,
     {"registry_client_match: invalid argument: group is empty: a name is required"}, NULL},
    {"bad address: no port", NULL, msg_no_port, REGISTRY_INVALID_ARGUMENT,
     {"registry_client_new: invalid argument: bad registry address \"127.0.0.1\": no port; expected host:port, e.g. "
      "127.0.0.1:9800"},
     NULL},
    {"bad address: port out of range", NULL, msg_bad_port, REGISTRY_INVALID_ARGUMENT,
     {"bad registry address \"127.0.0.1:99999\": port \"99999\" is not 1 to 65535", "expected host:port"}, NULL},
    {"unknown group", "server", msg_unknown_group, REGISTRY_NOT_FOUND,
     {"registry_client_match: not found: group \"ffi-c-errors-unknown\" has no members: none has registered"}, NULL},
    {"empty group (last member left)", "server", msg_emptied_group, REGISTRY_NOT_FOUND,
     {"registry_client_match: not found: group \"ffi-c-errors-emptied\" has no members: its last member left"}, NULL},
    {"empty group: view match", "server", msg_view_of_empty_group, REGISTRY_NOT_FOUND,
     {"registry_view_match: not found: group \"ffi-c-errors-unknown\" has no members"}, NULL},
    {"TLS mismatch: plain client, TLS registry", "tls", msg_tls_plain_client, REGISTRY_UNAVAILABLE,
     {"no registry reachable: tried {tls} (", "does the registry serve TLS only? then the client needs its CA"},
     NOT_RUNNING},
    {"TLS mismatch: CA that did not sign it", "tls", msg_tls_other_ca, REGISTRY_UNAVAILABLE,
     {"tried https://{tls} (TLS: invalid peer certificate: UnknownIssuer", "not signed by the client's TLS CA"},
     NOT_RUNNING},
    {"TLS mismatch: no client certificate", "tls", msg_tls_no_client_cert, REGISTRY_UNAVAILABLE,
     {"registry_client_match: unavailable: no registry reachable: tried https://{tls} (", "client certificate"},
     NOT_RUNNING},
    {"TLS mismatch: TLS client, plain registry", "both", msg_tls_client_plain_registry, REGISTRY_UNAVAILABLE,
     {"tried https://{addr} (TLS:", "does the registry serve plain text? then the client needs no TLS settings"},
     NOT_RUNNING},
};

/* `pattern` with {dead1}, {dead2}, {addr} and {tls} replaced, into out. */
static void expand(const char *pattern, const msg_ctx *x, char *out, size_t cap) {
  const struct {
    const char *token, *value;
  } subs[] = {{"{dead1}", x->dead1}, {"{dead2}", x->dead2}, {"{addr}", x->addr}, {"{tls}", x->tls_addr}};
  size_t n = 0;
  while (*pattern && n + 1 < cap) {
    size_t i = 0;
    for (; i < sizeof subs / sizeof subs[0]; i++) {
      size_t len = strlen(subs[i].token);
      if (!strncmp(pattern, subs[i].token, len)) {
        n += (size_t)snprintf(out + n, cap - n, "%s", subs[i].value ? subs[i].value : "(unset)");
        if (n >= cap) n = cap - 1;
        pattern += len;
        break;
      }
    }
    if (i == sizeof subs / sizeof subs[0]) out[n++] = *pattern++;
  }
  out[n] = '\0';
}

/* Registers a member of `group`, waits until the registry answers for it,
 * stops it and waits until the group is empty: the registry then knows
 * that the group lost its last member. */
static void empty_a_group(registry_client *live, const char *gossip, const char *group) {
  registry_registration *r = register_service(gossip, group, "c-errors-1", "127.0.0.1:9", 1, NULL);
  const registry_service *s = NULL;
  int seen = 0, gone = 0;
  for (int i = 0; i < 400 && !seen; i++) {
    seen = registry_client_match(live, group, "k", &s, NULL) == REGISTRY_OK;
    registry_service_free(s);
    s = NULL;
    if (!seen) sleep_ms(50);
  }
  CHECK_WAIT(seen);
  EXPECT_OK(registry_registration_stop(r));
  for (int i = 0; i < 400 && !gone; i++) {
    gone = registry_client_match(live, group, "k", &s, NULL) == REGISTRY_NOT_FOUND;
    registry_service_free(s);
    s = NULL;
    if (!gone) sleep_ms(50);
  }
  CHECK_WAIT(gone);
  registry_registration_free(r);
}

/* What a C caller reads in registry_last_error_message() for the common
 * failures: the function, the kind, what was tried and what to do. Rows
 * that need a registry-server or a TLS one are skipped without them. */
static void test_error_messages(const char *addr, const char *gossip, const char *tls_addr, const char *tls_dir) {
  current_test = "error_messages";
  msg_ctx x = {.addr = addr, .gossip = gossip, .tls_addr = tls_addr, .tls_dir = tls_dir};
  dead_addr(x.dead1, sizeof x.dead1);
  dead_addr(x.dead2, sizeof x.dead2);
  CHECK(x.dead1[0] && x.dead2[0]);
  const char *dead[] = {x.dead1, x.dead2};
  registry_client_options o = {0};
  o.connect_timeout_ms = 200;
  o.request_timeout_ms = 3000; /* refused at once; generous for valgrind */
  o.max_backoff_ms = 10;
  o.no_registry_discovery = true;
  if (!EXPECT_OK(registry_client_new(dead, 2, &o, &x.dead, NULL))) return;
  int have_server = addr && *addr && gossip && *gossip, have_tls = tls_addr && *tls_addr && tls_dir && *tls_dir;
  if (have_server) {
    const char *addrs[] = {addr};
    if (EXPECT_OK(registry_client_new(addrs, 1, &o, &x.live, NULL)))
      empty_a_group(x.live, gossip, "ffi-c-errors-emptied");
    else
      have_server = 0;
  }
  int skipped_rows = 0;
  for (size_t i = 0; i < sizeof MESSAGE_TABLE / sizeof MESSAGE_TABLE[0]; i++) {
    const msg_row *row = &MESSAGE_TABLE[i];
    int server = row->needs && (!strcmp(row->needs, "server") || !strcmp(row->needs, "both"));
    int tls = row->needs && (!strcmp(row->needs, "tls") || !strcmp(row->needs, "both"));
    if ((server && !have_server) || (tls && !have_tls)) {
      skipped_rows++;
      continue;
    }
    registry_status got = row->call(&x);
    const char *last = registry_last_error_message();
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", last ? last : "");
    int ok = got == row->want;
    for (size_t h = 0; h < 3 && row->has[h]; h++) {
      char want[512];
      expand(row->has[h], &x, want, sizeof want);
      if (!strstr(msg, want)) {
        ok = 0;
        fprintf(stderr, "  %s: message lacks \"%s\"\n", row->name, want);
      }
    }
    if (row->not_has && strstr(msg, row->not_has)) {
      ok = 0;
      fprintf(stderr, "  %s: message should not say \"%s\"\n", row->name, row->not_has);
    }
    if (ok) {
      passed++;
    } else {
      failed++;
      fprintf(stderr, "FAIL error_messages: %s: got %s \"%s\", want %s\n", row->name, registry_status_name((int)got), msg,
              registry_status_name((int)row->want));
    }
  }
  if (skipped_rows) printf("error_messages: %d row(s) skipped (no registry-server or no TLS one)\n", skipped_rows);
  registry_client_free(x.dead);
  registry_client_free(x.live);
}

/* Milliseconds on the monotonic clock. */
static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *fire_later(void *token) {
  usleep(300 * 1000);
  registry_cancel_fire((const registry_cancel *)token);
  return NULL;
}

/* Cancellation tokens against a registry that accepts connections (the
 * kernel's backlog) but never answers, with a client that would wait 20 s:
 * a token's deadline and a fire from another thread each end the call at
 * once, and a fired token ends every later call before it starts. */
static void test_cancel(void) {
  current_test = "cancel";
  registry_cancel *t = NULL;
  EXPECT_ERR(registry_cancel_new(0, NULL), REGISTRY_INVALID_ARGUMENT, "registry_cancel_new: out is NULL");
  CHECK(!strcmp(registry_status_name(REGISTRY_CANCELLED), "REGISTRY_CANCELLED"));
  registry_cancel_fire(NULL);
  registry_cancel_free(NULL);

  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 16) || getsockname(l, (struct sockaddr *)&a, &alen)) {
    CHECK(!"a silent loopback listener");
    if (l >= 0) close(l);
    return;
  }
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(a.sin_port));
  const char *addrs[] = {addr};
  registry_client_options o = {0};
  o.connect_timeout_ms = 20000;
  o.request_timeout_ms = 20000;
  o.attempts = 1;
  o.no_registry_discovery = true;
  registry_client *c = NULL;
  if (!EXPECT_OK(registry_client_new(addrs, 1, &o, &c, NULL))) {
    close(l);
    return;
  }
  const registry_service *s = NULL;
  registry_service_list *list = NULL;
  registry_view *v = NULL;

  /* A deadline of 200 ms. */
  double t0 = mono_ms();
  if (EXPECT_OK(registry_cancel_new(200, &t))) {
    EXPECT_ERR(registry_client_match(c, "web", "k", &s, t), REGISTRY_TIMEOUT, "deadline");
    double took = mono_ms() - t0;
    CHECK(took >= 200 && took < 1500);
    /* Past its deadline, the token ends the next call at once. */
    t0 = mono_ms();
    EXPECT_ERR(registry_view_new(c, "web", &v, t), REGISTRY_TIMEOUT, "deadline");
    CHECK(mono_ms() - t0 < 500);
    registry_cancel_free(t);
  }

  /* Fired from another thread while the call waits. */
  if (EXPECT_OK(registry_cancel_new(0, &t))) {
    pthread_t th;
    t0 = mono_ms();
    pthread_create(&th, NULL, fire_later, t);
    EXPECT_ERR(registry_client_members(c, "web", &list, NULL, NULL, t), REGISTRY_CANCELLED, "cancelled");
    double took = mono_ms() - t0;
    CHECK(took >= 300 && took < 1500);
    pthread_join(th, NULL);
    /* Fired stays fired. */
    t0 = mono_ms();
    EXPECT_ERR(registry_client_match_n(c, "web", "k", 2, &list, t), REGISTRY_CANCELLED, "cancelled");
    EXPECT_ERR(registry_client_groups(c, (registry_group_list **)&list, t), REGISTRY_CANCELLED, "cancelled");
    CHECK(mono_ms() - t0 < 500);
    registry_cancel_free(t);
  }
  CHECK(s == NULL && list == NULL && v == NULL);
  registry_client_free(c);
  close(l);
}

int main(int argc, char **argv) {
  const char *vectors = getenv("REGISTRY_VECTORS");
  if (!vectors || !*vectors) vectors = "tests/vectors/ring.json";
  /* moves.json lives next to ring.json. */
  char moves_vectors[4096];
  const char *slash = strrchr(vectors, '/');
  snprintf(moves_vectors, sizeof moves_vectors, "%.*smoves.json", slash ? (int)(slash - vectors + 1) : 0, vectors);
  const char *addr = getenv("REGISTRY_ADDR");
  if (argc > 1 && !strcmp(argv[1], "stopped-registry")) {
    const char *gossip = getenv("REGISTRY_GOSSIP_ADDR"), *pid = getenv("REGISTRY_SERVER_PID");
    if (addr && *addr && gossip && *gossip && pid && atoi(pid) > 0) {
      test_stopped_registry(addr, gossip, atoi(pid));
    } else {
      current_test = "stopped_registry";
      skip("REGISTRY_ADDR, REGISTRY_GOSSIP_ADDR and REGISTRY_SERVER_PID not set");
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
  }

  test_version_and_names();
  test_free_null_is_noop();
  test_client_bad_input();
  test_view_bad_input();
  test_result_objects_bad_input();
  test_ring_bad_input();
  test_ring_semantics();
  test_ring_checksum();
  check_vectors(vectors);
  test_moves_bad_input();
  test_moves_semantics();
  check_moves_vectors(moves_vectors);
  test_registration_bad_input();
  test_last_error_is_per_thread();
  test_create_free_many();
  test_cancel();
  const char *gossip = getenv("REGISTRY_GOSSIP_ADDR");
  if (addr && *addr && gossip && *gossip) {
    test_server(addr, gossip);
    test_draining(addr, gossip);
    test_view_callbacks(addr, gossip);
    check_vectors_view(vectors, addr, gossip);
  } else {
    current_test = "server";
    skip("REGISTRY_ADDR and REGISTRY_GOSSIP_ADDR not set: no registry-server to test against");
  }
  const char *tls_addr = getenv("REGISTRY_TLS_ADDR"), *tls_dir = getenv("REGISTRY_TLS_DIR");
  if (tls_addr && *tls_addr && tls_dir && *tls_dir) {
    test_tls(tls_addr, tls_dir);
  } else {
    current_test = "tls";
    skip("REGISTRY_TLS_ADDR and REGISTRY_TLS_DIR not set: no TLS registry-server to test against");
  }
  test_error_messages(addr, gossip, tls_addr, tls_dir);

  printf("%d passed, %d failed\n", passed, failed);
  if (skipped) printf("(%d test group(s) skipped, see SKIP lines)\n", skipped);
  return failed == 0 ? 0 : 1;
}
