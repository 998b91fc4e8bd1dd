/* registry_example: discover the instances of a service group and route
 * keys to them, from C.
 *
 *   registry_example [-r host:port]... [-g group] [-n keys] [-j gossip -s id=addr...]
 *
 * With -j and -s it first registers service instances (as a service
 * process would register itself) through the registry's gossip address,
 * and waits until the registry lists them. It connects to the registries
 * (gRPC, default 127.0.0.1:9800), prints the
 * group's members, follows the group with a local view and assigns user
 * ids to members with no round trip, checks a few answers against the
 * registry's own Match, stops the registrations, and frees everything. Without a reachable
 * registry it still shows the standalone ring, then says so and exits 2.
 *
 * Build (libregistry installed: ./scripts/dist && ./scripts/install PREFIX, see ffi/README.md):
 *   cc examples/c/registry_example.c $(pkg-config --cflags --libs registry) -o registry_example
 * Run:   ./registry_example -r 127.0.0.1:9800 -g web */
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Registers "id=addr" in `group` through gossip address `gossip`. */
static registry_registration *register_one(const char *spec, const char *group, const char *gossip) {
  char id[128];
  const char *eq = strchr(spec, '=');
  if (!eq || eq == spec || (size_t)(eq - spec) >= sizeof id) {
    fprintf(stderr, "-s wants id=addr, got %s\n", spec);
    return NULL;
  }
  memcpy(id, spec, (size_t)(eq - spec));
  id[eq - spec] = 0;
  const char *registries[] = {gossip};
  const char *tag_keys[] = {"started-by"}, *tag_values[] = {"registry_example"};
  registry_registration_config cfg = {0}; /* zero = defaults: weight 1, bind 127.0.0.1:0 */
  cfg.id = id;
  cfg.group = group;
  cfg.addr = eq + 1;
  cfg.registries = registries;
  cfg.registry_count = 1;
  cfg.tag_keys = tag_keys;
  cfg.tag_values = tag_values;
  cfg.tag_count = 1;
  registry_registration *reg = NULL;
  if (!ok(registry_registration_start(&cfg, &reg, NULL), "registry_registration_start")) return NULL;
  printf("registered %s at %s in group %s\n", id, eq + 1, group);
  return reg;
}

int main(int argc, char **argv) {
  const char *registries[16], *services[16];
  size_t count = 0, nservices = 0;
  const char *gossip = NULL;
  registry_registration *regs[16] = {0};
  const char *group = "web";
  int keys = 1000;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-r") && i + 1 < argc && count < 16) registries[count++] = argv[++i];
    else if (!strcmp(argv[i], "-g") && i + 1 < argc) group = argv[++i];
    else if (!strcmp(argv[i], "-n") && i + 1 < argc) keys = atoi(argv[++i]);
    else if (!strcmp(argv[i], "-j") && i + 1 < argc) gossip = argv[++i];
    else if (!strcmp(argv[i], "-s") && i + 1 < argc && nservices < 16) services[nservices++] = argv[++i];
    else {
      fprintf(stderr, "usage: %s [-r host:port]... [-g group] [-n keys] [-j gossip -s id=addr...]\n", argv[0]);
      return 1;
    }
  }
  if (count == 0) registries[count++] = "127.0.0.1:9800";
  printf("libregistry %s\n", registry_version());
  ring_demo();

  registry_client_options options = {0};
  options.request_timeout_ms = 3000;
  registry_client *client = NULL;
  if (!ok(registry_client_new(registries, count, &options, &client, NULL), "registry_client_new")) return 1;

  int rc = 0;
  registry_service_list *members = NULL;
  registry_view *view = NULL;
  uint64_t version = 0;
  if (nservices > 0 && !gossip) {
    fprintf(stderr, "-s needs -j gossip-address\n");
    rc = 1;
    goto out;
  }
  for (size_t i = 0; i < nservices; i++) {
    if (!(regs[i] = register_one(services[i], group, gossip))) {
      rc = 1;
      goto out;
    }
  }
  /* Wait (at most 10 s) until the registry lists every registered service. */
  for (int tries = 0;; tries++) {
    registry_service_list_free(members);
    members = NULL;
    if (!ok(registry_client_members(client, group, &members, &version, NULL, NULL), "registry_client_members")) {
      rc = 2;
      goto out;
    }
    if (registry_service_list_len(members) >= nservices || tries >= 100) break;
    struct timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  printf("group %s, version %llu, %zu member(s):\n", group, (unsigned long long)version,
         registry_service_list_len(members));
  for (size_t i = 0; i < registry_service_list_len(members); i++)
    print_service("  ", registry_service_list_get(members, i));
  if (registry_service_list_len(members) == 0) goto out;

  if (!ok(registry_view_new(client, group, &view, NULL), "registry_view_new")) {
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
      if (ok(registry_client_match(client, group, key, &remote, NULL), "registry_client_match") &&
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
  for (size_t i = 0; i < nservices; i++) {
    if (regs[i] && ok(registry_registration_stop(regs[i]), "registry_registration_stop"))
      printf("stopped %s\n", services[i]);
    registry_registration_free(regs[i]);
  }
  registry_view_free(view);
  registry_service_list_free(members);
  registry_client_free(client);
  return rc;
}
