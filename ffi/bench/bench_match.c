/* Single-thread lookup throughput from C.
 *
 *   bench_match ring                      standalone ring of 100 members (weight 1)
 *   bench_match view host:port group [members]
 *                                         local view of a running registry's group
 *                                         (waits until it has that many members)
 *   bench_match members gossip group count
 *                                         registers count services (weight 1) and
 *                                         holds them until killed (run it as a
 *                                         separate process: its gossip then does
 *                                         not share the benchmark's process)
 *
 * Each mode runs registry_*_match on keys "user-0".."user-65535" (built
 * beforehand) for about 2 seconds, 3 times, and prints the best calls/s.
 * A view match returns a registry_service that is freed every call, as a
 * real caller would; view_match_index returns the owner's index in the
 * snapshot's member list instead (nothing to free). Build against a release library for real figures:
 *   cargo build -p registry-ffi --release
 *   cc -O2 -I include ffi/bench/bench_match.c -L target/release -lregistry -o bench_match
 *   LD_LIBRARY_PATH=target/release ./bench_match ring */
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NKEYS 65536

static char keys[NKEYS][16];
static size_t key_lens[NKEYS];

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(registry_status s, const char *what) {
  fprintf(stderr, "%s: %s: %s\n", what, registry_status_name((int)s), registry_last_error_message());
  exit(1);
}

/* Runs `body` in batches until `seconds` pass; returns calls per second. */
#define MEASURE(seconds, body)                                  \
  ({                                                            \
    size_t calls_ = 0;                                          \
    double t0_ = now(), t_;                                     \
    do {                                                        \
      for (size_t i = 0; i < NKEYS; i++) { body; }              \
      calls_ += NKEYS;                                          \
    } while ((t_ = now()) - t0_ < (seconds));                   \
    (double)calls_ / (t_ - t0_);                                \
  })

int main(int argc, char **argv) {
  for (size_t i = 0; i < NKEYS; i++) key_lens[i] = (size_t)snprintf(keys[i], sizeof keys[i], "user-%zu", i);
  const char *mode = argc > 1 ? argv[1] : "ring";
  double best = 0;
  size_t sink = 0;

  if (!strcmp(mode, "ring")) {
    const char *ids[100];
    char names[100][16];
    for (int i = 0; i < 100; i++) {
      snprintf(names[i], sizeof names[i], "svc-%d", i);
      ids[i] = names[i];
    }
    registry_ring *ring;
    registry_status s = registry_ring_new(ids, NULL, 100, &ring);
    if (s) die(s, "registry_ring_new");
    for (int run = 0; run < 3; run++) {
      double r = MEASURE(2.0, {
        const char *id;
        if (registry_ring_locate(ring, keys[i], &id) != REGISTRY_OK) die(REGISTRY_INTERNAL, "locate");
        sink += (size_t)id[0];
      });
      if (r > best) best = r;
    }
    registry_ring_free(ring);
    printf("ring_locate  100 members  1 thread  %.2f M calls/s  (%.0f ns/call)\n", best / 1e6, 1e9 / best);
  } else if (!strcmp(mode, "view") && argc > 3) {
    const char *addrs[] = {argv[2]};
    registry_client *client;
    registry_view *view;
    registry_status s = registry_client_new(addrs, 1, NULL, &client, NULL);
    if (s) die(s, "registry_client_new");
    s = registry_view_new(client, argv[3], &view, NULL);
    if (s) die(s, "registry_view_new");
    int want = argc > 4 ? atoi(argv[4]) : 1;
    size_t n = 0;
    for (int tries = 0; tries < 600; tries++) { /* wait up to 60 s for every member */
      registry_service_list *members;
      s = registry_view_members(view, &members, NULL, NULL);
      if (s) die(s, "registry_view_members");
      n = registry_service_list_len(members);
      registry_service_list_free(members);
      if ((int)n >= want) break;
      struct timespec pause = {0, 100 * 1000 * 1000};
      nanosleep(&pause, NULL);
    }
    if (n == 0) {
      fprintf(stderr, "group %s has no members\n", argv[3]);
      return 1;
    }
    for (int run = 0; run < 3; run++) {
      double r = MEASURE(2.0, {
        const registry_service *svc;
        if (registry_view_match(view, keys[i], &svc) != REGISTRY_OK) die(REGISTRY_INTERNAL, "match");
        sink += (size_t)registry_service_id(svc)[0];
        registry_service_free(svc);
      });
      if (r > best) best = r;
    }
    printf("view_match   %zu members  1 thread  %.2f M calls/s  (%.0f ns/call)\n", n, best / 1e6, 1e9 / best);
    best = 0;
    for (int run = 0; run < 3; run++) {
      double r = MEASURE(2.0, {
        size_t index;
        uint64_t generation;
        if (registry_view_match_index(view, keys[i], key_lens[i], &index, &generation) != REGISTRY_OK)
          die(REGISTRY_INTERNAL, "match_index");
        sink += index;
      });
      if (r > best) best = r;
    }
    printf("view_match_index %zu members  1 thread  %.2f M calls/s  (%.0f ns/call)\n", n, best / 1e6, 1e9 / best);
    registry_view_free(view);
    registry_client_free(client);
  } else if (!strcmp(mode, "members") && argc > 4) {
    int count = atoi(argv[4]);
    for (int i = 0; i < count; i++) {
      char id[32], addr[32];
      snprintf(id, sizeof id, "bench-%d", i);
      snprintf(addr, sizeof addr, "127.0.0.1:%d", 20000 + i);
      const char *gossip[] = {argv[2]};
      registry_registration_config cfg = {0};
      cfg.id = id;
      cfg.group = argv[3];
      cfg.addr = addr;
      cfg.registries = gossip;
      cfg.registry_count = 1;
      registry_registration *reg; /* held until the process is killed */
      registry_status s = registry_registration_start(&cfg, &reg, NULL);
      if (s) die(s, "registry_registration_start");
    }
    printf("registered %d members in %s\n", count, argv[3]);
    fflush(stdout);
    for (;;) {
      struct timespec pause = {3600, 0};
      nanosleep(&pause, NULL);
    }
  } else {
    fprintf(stderr, "usage: %s ring | view host:port group [members] | members gossip group count\n", argv[0]);
    return 2;
  }
  return sink == 42 ? 3 : 0; /* keep `sink` alive */
}
