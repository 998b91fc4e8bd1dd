/* registry_example: discover the instances of a service group and route
 * keys to them, from C.
 *
 *   registry_example [-r host:port]... [-g group] [-n keys]
 *
 * It connects to the registries (default 127.0.0.1:9800), prints the
 * group's members, follows the group with a local view and assigns user
 * ids to members with no round trip, checks a few answers against the
 * registry's own Match, and frees everything it got. Without a reachable
 * registry it still shows the standalone ring, then says so and exits 2.
 *
 * Build: cc -I include examples/c/registry_example.c -L target/debug -lregistry -o registry_example
 * Run:   LD_LIBRARY_PATH=target/debug ./registry_example -r 127.0.0.1:9800 -g web */
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints the failed call and the library's message; returns 0. */
static int ok(registry_status s, const char *what) {
  if (s == REGISTRY_OK) return 1;
  fprintf(stderr, "%s: %s (%s)\n", what, registry_status_name((int)s), registry_last_error_message());
  return 0;
}

static void print_service(const char *prefix, const registry_service *svc) {
  printf("%s%s  addr=%s  weight=%u", prefix, registry_service_id(svc), registry_service_addr(svc),
         registry_service_weight(svc));
  for (size_t i = 0; i < registry_service_tag_count(svc); i++) {
    const char *k, *v;
    if (registry_service_tag(svc, i, &k, &v) == REGISTRY_OK) printf("  %s=%s", k, v);
  }
  printf("\n");
}

/* The standalone ring: the same hashing as every registry, no server. */
static void ring_demo(void) {
  const char *ids[] = {"cache-a", "cache-b", "cache-c"};
  uint32_t weights[] = {1, 1, 2};
  registry_ring *ring = NULL;
  if (!ok(registry_ring_new(ids, weights, 3, &ring), "registry_ring_new")) return;
  printf("standalone ring of %zu members:\n", registry_ring_len(ring));
  for (int i = 0; i < 5; i++) {
    char key[32];
    snprintf(key, sizeof key, "user-%d", i);
    const char *owner = NULL, *pref[2];
    size_t n = 0;
    if (ok(registry_ring_locate(ring, key, &owner), "registry_ring_locate") &&
        ok(registry_ring_locate_n(ring, key, 2, pref, &n), "registry_ring_locate_n"))
      printf("  %s -> %s (fallback %s)\n", key, owner, n > 1 ? pref[1] : "-");
  }
  registry_ring_free(ring);
}

int main(int argc, char **argv) {
  const char *registries[16];
  size_t count = 0;
  const char *group = "web";
  int keys = 1000;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-r") && i + 1 < argc && count < 16) registries[count++] = argv[++i];
    else if (!strcmp(argv[i], "-g") && i + 1 < argc) group = argv[++i];
    else if (!strcmp(argv[i], "-n") && i + 1 < argc) keys = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [-r host:port]... [-g group] [-n keys]\n", argv[0]);
      return 1;
    }
  }
  if (count == 0) registries[count++] = "127.0.0.1:9800";
  printf("libregistry %s\n", registry_version());
  ring_demo();

  registry_client_options options = {0};
  options.request_timeout_ms = 3000;
  registry_client *client = NULL;
  if (!ok(registry_client_new(registries, count, &options, &client), "registry_client_new")) return 1;

  int rc = 0;
  registry_service_list *members = NULL;
  registry_view *view = NULL;
  uint64_t version = 0;
  if (!ok(registry_client_members(client, group, &members, &version), "registry_client_members")) {
    rc = 2;
    goto out;
  }
  printf("group %s, version %llu, %zu member(s):\n", group, (unsigned long long)version,
         registry_service_list_len(members));
  for (size_t i = 0; i < registry_service_list_len(members); i++)
    print_service("  ", registry_service_list_get(members, i));
  if (registry_service_list_len(members) == 0) goto out;

  if (!ok(registry_view_new(client, group, &view), "registry_view_new")) {
    rc = 2;
    goto out;
  }
  /* Assign user ids with no round trip, and count them per member. */
  size_t n = registry_service_list_len(members);
  int *per_member = calloc(n, sizeof *per_member);
  int mismatches = 0;
  for (int i = 0; i < keys; i++) {
    char key[32];
    snprintf(key, sizeof key, "user-%d", i);
    const registry_service *local = NULL;
    if (!ok(registry_view_match(view, key, &local), "registry_view_match")) {
      rc = 3;
      break;
    }
    for (size_t m = 0; m < n; m++)
      if (!strcmp(registry_service_id(local), registry_service_id(registry_service_list_get(members, m))))
        per_member[m]++;
    if (i < 20) { /* the registry's own answer must be the same */
      const registry_service *remote = NULL;
      if (ok(registry_client_match(client, group, key, &remote), "registry_client_match") &&
          strcmp(registry_service_id(remote), registry_service_id(local)) != 0)
        mismatches++;
      registry_service_free(remote);
    }
    registry_service_free(local);
  }
  printf("%d user ids assigned locally:\n", keys);
  for (size_t m = 0; m < n; m++)
    printf("  %-20s %d\n", registry_service_id(registry_service_list_get(members, m)), per_member[m]);
  printf("local view and registry Match agree on the first 20 keys: %s\n", mismatches ? "NO" : "yes");
  if (mismatches) rc = 3;
  free(per_member);

out:
  registry_view_free(view);
  registry_service_list_free(members);
  registry_client_free(client);
  return rc;
}
