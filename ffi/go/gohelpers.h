// C helpers of the Go package, included by every cgo preamble (each file
// gets its own static copies). See cgo.go.
#ifndef REGISTRY_GO_HELPERS_H
#define REGISTRY_GO_HELPERS_H
#include <stdlib.h>
#include <string.h>
#include "registry.h"

// Each gr_* helper makes one registry_* call and, on failure, copies the
// thread-local error message in the same cgo call (a goroutine may move
// to another OS thread between two cgo calls). The caller frees *err.
#define GR_CALL(expr)                                               \
	do {                                                            \
		registry_status s_ = (expr);                                \
		if (s_ != REGISTRY_OK) {                                    \
			const char *m_ = registry_last_error_message();         \
			*err = strdup(m_ ? m_ : "");                            \
		}                                                           \
		return s_;                                                  \
	} while (0)

static void gr_put32(unsigned char *p, uint32_t v) {
	p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}

static size_t gr_put_str(unsigned char *buf, size_t cap, size_t at, const char *s) {
	size_t n = s ? strlen(s) : 0;
	if (at + 4 + n <= cap) {
		gr_put32(buf + at, (uint32_t)n);
		if (n) memcpy(buf + at + 4, s, n);
	}
	return at + 4 + n;
}

// Packs one service at buf[at..]: weight, tag count, then id, group, addr
// and each tag's key and value, as (u32 little-endian length, bytes).
// Returns the end offset; writes nothing past cap.
static size_t gr_pack(const registry_service *svc, unsigned char *buf, size_t cap, size_t at) {
	size_t ntags = registry_service_tag_count(svc);
	if (at + 12 <= cap) {
		gr_put32(buf + at, registry_service_weight(svc));
		gr_put32(buf + at + 4, (uint32_t)ntags);
		gr_put32(buf + at + 8, registry_service_draining(svc) ? 1u : 0u);
	}
	at += 12;
	at = gr_put_str(buf, cap, at, registry_service_id(svc));
	at = gr_put_str(buf, cap, at, registry_service_group(svc));
	at = gr_put_str(buf, cap, at, registry_service_addr(svc));
	for (size_t i = 0; i < ntags; i++) {
		const char *k = NULL, *v = NULL;
		registry_service_tag(svc, i, &k, &v);
		at = gr_put_str(buf, cap, at, k);
		at = gr_put_str(buf, cap, at, v);
	}
	return at;
}

// Packs every service of a list (after a u32 count); returns the size needed.
static size_t gr_pack_list(const registry_service_list *l, unsigned char *buf, size_t cap) {
	size_t n = registry_service_list_len(l), at = 4;
	if (cap >= 4) gr_put32(buf, (uint32_t)n);
	for (size_t i = 0; i < n; i++) at = gr_pack(registry_service_list_get(l, i), buf, cap, at);
	return at;
}

// Packs a service and releases it.
static size_t gr_pack_free(const registry_service *svc, unsigned char *buf, size_t cap) {
	size_t need = gr_pack(svc, buf, cap, 0);
	registry_service_free(svc);
	return need;
}

// Result of the hot-path helpers, returned by value so that Go passes no
// pointer to its own variables (which would make them escape to the heap).
typedef struct {
	registry_status status;
	size_t need;                 // bytes the packed service takes
	const registry_service *keep; // set when need > cap: pack it with gr_pack_free
	const char *id;              // gr_ring_locate1: the owner's id (owned by the ring)
	uint64_t generation;         // gr_view_match_index: the snapshot generation (need = index)
	char *err;                   // on failure: the message, for the caller to free
} gr_result;

static gr_result gr_fail(registry_status s) {
	gr_result r = {0};
	const char *m = registry_last_error_message();
	r.status = s;
	r.err = strdup(m ? m : "");
	return r;
}

// Matches on a view and packs the answer into buf, in one cgo call. When
// buf is too small (need > cap), keep holds the service for gr_pack_free.
static gr_result gr_view_match(const registry_view *v, const char *key, size_t key_len, unsigned char *buf,
		size_t cap) {
	const registry_service *svc = NULL;
	registry_status s = registry_view_match_len(v, key, key_len, &svc);
	if (s != REGISTRY_OK) return gr_fail(s);
	gr_result r = {0};
	r.need = gr_pack(svc, buf, cap, 0);
	if (r.need <= cap) registry_service_free(svc); else r.keep = svc;
	return r;
}

// Matches on a view as an index into the members of a snapshot generation.
static gr_result gr_view_match_index(const registry_view *v, const char *key, size_t key_len) {
	gr_result r = {0};
	uint64_t generation = 0;
	registry_status s = registry_view_match_index(v, key, key_len, &r.need, &generation);
	if (s != REGISTRY_OK) return gr_fail(s);
	r.generation = generation;
	return r;
}

static registry_status gr_view_members_generation(const registry_view *v, registry_service_list **out,
		uint64_t *version, uint64_t *generation, char **err) {
	GR_CALL(registry_view_members_generation(v, out, version, generation));
}

// Locates key on a ring, in one cgo call.
static gr_result gr_ring_locate1(const registry_ring *ring, const char *key, size_t key_len) {
	gr_result r = {0};
	registry_status s = registry_ring_locate_len(ring, key, key_len, &r.id);
	if (s != REGISTRY_OK) return gr_fail(s);
	return r;
}

static registry_status gr_cancel_new(registry_cancel **out, char **err) {
	GR_CALL(registry_cancel_new(0, out));
}
static registry_status gr_client_new(const char *const *addrs, size_t n, const registry_client_options *o,
		registry_client **out, const registry_cancel *x, char **err) {
	GR_CALL(registry_client_new(addrs, n, o, out, x));
}
static registry_status gr_client_match(const registry_client *c, const char *g, const char *k,
		const registry_service **out, const registry_cancel *x, char **err) {
	GR_CALL(registry_client_match(c, g, k, out, x));
}
static registry_status gr_client_match_n(const registry_client *c, const char *g, const char *k, size_t n,
		registry_service_list **out, const registry_cancel *x, char **err) {
	GR_CALL(registry_client_match_n(c, g, k, n, out, x));
}
static registry_status gr_client_members(const registry_client *c, const char *g, registry_service_list **out,
		uint64_t *version, uint64_t *checksum, const registry_cancel *x, char **err) {
	GR_CALL(registry_client_members(c, g, out, version, checksum, x));
}
static registry_status gr_client_groups(const registry_client *c, registry_group_list **out, const registry_cancel *x,
		char **err) {
	GR_CALL(registry_client_groups(c, out, x));
}
static registry_status gr_group_list_get(const registry_group_list *l, size_t i, const char **name,
		uint32_t *members, uint64_t *version, char **err) {
	GR_CALL(registry_group_list_get(l, i, name, members, version));
}
static registry_status gr_view_new(const registry_client *c, const char *g, registry_view **out,
		const registry_cancel *x, char **err) {
	GR_CALL(registry_view_new(c, g, out, x));
}
static registry_status gr_view_match_n(const registry_view *v, const char *k, size_t klen, size_t n,
		registry_service_list **out, char **err) {
	GR_CALL(registry_view_match_n_len(v, k, klen, n, out));
}
static registry_status gr_view_members(const registry_view *v, registry_service_list **out, uint64_t *version,
		uint64_t *checksum, char **err) {
	GR_CALL(registry_view_members(v, out, version, checksum));
}
static registry_status gr_view_version(const registry_view *v, uint64_t *out, char **err) {
	GR_CALL(registry_view_version(v, out));
}
static registry_status gr_view_checksum(const registry_view *v, uint64_t *out, char **err) {
	GR_CALL(registry_view_checksum(v, out));
}
static registry_status gr_ring_checksum(const registry_ring *r, uint64_t *out, char **err) {
	GR_CALL(registry_ring_checksum(r, out));
}
static registry_status gr_group_list_checksum(const registry_group_list *l, size_t i, uint64_t *out, char **err) {
	GR_CALL(registry_group_list_checksum(l, i, out));
}
static registry_status gr_view_is_connected(const registry_view *v, bool *out, char **err) {
	GR_CALL(registry_view_is_connected(v, out));
}
// Defined in export.go (cgo //export).
extern void goViewChanged(void *user_data, registry_view_change *change);
static void gr_view_changed(void *user_data, const registry_view_change *change) {
	goViewChanged(user_data, (registry_view_change *)change);
}
static registry_status gr_view_on_change(const registry_view *v, uintptr_t handle, char **err) {
	GR_CALL(registry_view_on_change(v, gr_view_changed, (void *)handle));
}
static registry_status gr_view_staleness_ms(const registry_view *v, uint64_t *out, char **err) {
	GR_CALL(registry_view_staleness_ms(v, out));
}
static registry_status gr_ring_new_with_states(const char *const *ids, const uint32_t *weights, const bool *draining,
		size_t n, registry_ring **out, char **err) {
	GR_CALL(registry_ring_new_with_states(ids, weights, draining, n, out));
}
static registry_status gr_view_ring(const registry_view *v, registry_ring **out, char **err) {
	GR_CALL(registry_view_ring(v, out));
}
static registry_status gr_ring_moves(const registry_ring *old_ring, const registry_ring *new_ring,
		registry_moves **out, char **err) {
	GR_CALL(registry_ring_moves(old_ring, new_ring, out));
}
static registry_status gr_moves_of_key(const registry_moves *m, const char *k, size_t klen, bool *moved,
		size_t *index, char **err) {
	GR_CALL(registry_moves_of_key_len(m, k, klen, moved, index));
}

// One moved range, as registry_moves_get gives it (ids owned by the moves).
typedef struct {
	uint32_t first, last;
	const char *from, *to;
} gr_range;

// Reads ranges 0..n-1 of moves into out (C memory), in one cgo call.
static registry_status gr_moves_ranges(const registry_moves *m, gr_range *out, size_t n, char **err) {
	for (size_t i = 0; i < n; i++) {
		registry_status s = registry_moves_get(m, i, &out[i].first, &out[i].last, &out[i].from, &out[i].to);
		if (s != REGISTRY_OK) GR_CALL(s);
	}
	return REGISTRY_OK;
}
static registry_status gr_ring_locate_n(const registry_ring *r, const char *k, size_t klen, size_t n,
		const char **ids, size_t *count, char **err) {
	GR_CALL(registry_ring_locate_n_len(r, k, klen, n, ids, count));
}

static registry_status gr_ring_member(const registry_ring *r, size_t i, const char **id, uint32_t *weight,
		char **err) {
	GR_CALL(registry_ring_member(r, i, id, weight));
}
static registry_status gr_registration_start(const registry_registration_config *c, registry_registration **out,
		const registry_cancel *x, char **err) {
	GR_CALL(registry_registration_start(c, out, x));
}
static registry_status gr_registration_set_weight(const registry_registration *r, uint32_t w, char **err) {
	GR_CALL(registry_registration_set_weight(r, w));
}
static registry_status gr_registration_set_draining(const registry_registration *r, bool d, char **err) {
	GR_CALL(registry_registration_set_draining(r, d));
}
static registry_status gr_registration_set_addr(const registry_registration *r, const char *a, char **err) {
	GR_CALL(registry_registration_set_addr(r, a));
}
static registry_status gr_registration_set_tags(const registry_registration *r, const char *const *k,
		const char *const *v, size_t n, char **err) {
	GR_CALL(registry_registration_set_tags(r, k, v, n));
}
static registry_status gr_registration_service(const registry_registration *r, const registry_service **out,
		char **err) {
	GR_CALL(registry_registration_service(r, out));
}
static registry_status gr_registration_is_joined(const registry_registration *r, bool *out, char **err) {
	GR_CALL(registry_registration_is_joined(r, out));
}
static registry_status gr_registration_stop(const registry_registration *r, char **err) {
	GR_CALL(registry_registration_stop(r));
}
#endif
