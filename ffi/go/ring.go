package registry

/*
#include "gohelpers.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// RingAlgorithm names the ring algorithm ("xxh3-vnode-v2"), as the
// registries and the shared test vectors do.
func RingAlgorithm() string { return C.GoString(C.registry_ring_algorithm()) }

// Ring is a standalone consistent-hash ring: the very ring the registry
// servers and every group view use, built from ids and weights you give
// (NewRing, NewRingWithStates) or taken from a view (GroupView.Ring).
// Safe for concurrent use.
type Ring struct {
	mu  sync.RWMutex
	p   *C.registry_ring
	ids map[*C.char]string // the ring's C ids → Go copies; read-only
}

// NewRing builds a ring of members ids[i] with weight weights[i] (1..1000).
// weights may be nil for weight 1 everywhere; otherwise it must be as long
// as ids.
func NewRing(ids []string, weights []uint32) (*Ring, error) {
	return NewRingWithStates(ids, weights, nil)
}

// NewRingWithStates is NewRing with a state per member: draining[i] true
// makes member ids[i] draining (listed, but owning no keys: the ring
// answers as that of the serving members alone). draining may be nil for
// every member serving; otherwise it must be as long as ids.
func NewRingWithStates(ids []string, weights []uint32, draining []bool) (*Ring, error) {
	if weights != nil && len(weights) != len(ids) {
		return nil, &Error{Code: CodeInvalidArgument, Op: "new ring", Message: "weights and ids differ in length"}
	}
	if draining != nil && len(draining) != len(ids) {
		return nil, &Error{Code: CodeInvalidArgument, Op: "new ring", Message: "draining and ids differ in length"}
	}
	cids := newCStrings(ids)
	defer cids.free()
	var w *C.uint32_t
	if len(weights) > 0 {
		w = (*C.uint32_t)(unsafe.Pointer(&weights[0]))
	}
	var d *C.bool
	if len(draining) > 0 {
		d = (*C.bool)(unsafe.Pointer(&draining[0]))
	}
	var p *C.registry_ring
	var msg *C.char
	if err := check(C.gr_ring_new_with_states(cids.ptr(), w, d, C.size_t(len(ids)), &p, &msg), msg); err != nil {
		return nil, failed("new ring", err)
	}
	return wrapRing(p, "new ring")
}

// wrapRing makes a Ring of the C ring p (freed on failure), mapping the
// ring's own id pointers to Go strings once, so that lookups allocate
// nothing.
func wrapRing(p *C.registry_ring, op string) (*Ring, error) {
	n := int(C.registry_ring_len(p))
	r := &Ring{p: p, ids: make(map[*C.char]string, n)}
	for i := 0; i < n; i++ {
		var id *C.char
		var weight C.uint32_t
		var msg *C.char
		if err := check(C.gr_ring_member(p, C.size_t(i), &id, &weight, &msg), msg); err != nil {
			C.registry_ring_free(p)
			return nil, failed(op, err)
		}
		r.ids[id] = C.GoString(id)
	}
	runtime.SetFinalizer(r, (*Ring).Close)
	return r, nil
}

// Close releases the ring. Closing twice is harmless.
func (r *Ring) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p != nil {
		C.registry_ring_free(r.p)
		r.p = nil
		r.ids = nil
		runtime.SetFinalizer(r, nil)
	}
	return nil
}

// Len is the number of members (0 once closed).
func (r *Ring) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.p == nil {
		return 0
	}
	return int(C.registry_ring_len(r.p))
}

// Checksum is the ring's checksum (0 once closed): an xxh3-64 of the
// algorithm name and the members' ids and weights, the same a registry
// reports for a group with these members (tests/vectors/README.md).
func (r *Ring) Checksum() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.p == nil {
		return 0
	}
	return readU64(func(out *C.uint64_t, msg **C.char) C.registry_status {
		return C.gr_ring_checksum(r.p, out, msg)
	})
}

// id is the Go copy of an id pointer the ring returned.
func (r *Ring) id(p *C.char) string {
	if s, ok := r.ids[p]; ok {
		return s
	}
	return C.GoString(p) // never happens: every member is in the map
}

// Locate returns the id of the member that owns key.
func (r *Ring) Locate(key string) (string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.p == nil {
		return "", closed("ring")
	}
	k, klen := keyArg(key)
	res := C.gr_ring_locate1(r.p, k, klen)
	if err := check(res.status, res.err); err != nil {
		return "", failed("locate", err)
	}
	return r.id(res.id), nil
}

// LocateN returns up to n distinct member ids for key, in preference order
// (the first is Locate's answer); fewer when the ring is smaller.
func (r *Ring) LocateN(key string, n int) ([]string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.p == nil {
		return nil, closed("ring")
	}
	if n < 0 {
		n = 0
	}
	if size := int(C.registry_ring_len(r.p)); n > size && size > 0 {
		n = size
	}
	k, klen := keyArg(key)
	// C memory: the ids array must not live in Go memory while C writes C
	// pointers into it.
	ids := (**C.char)(C.malloc(C.size_t(n+1) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	defer C.free(unsafe.Pointer(ids))
	var count C.size_t
	var msg *C.char
	if err := check(C.gr_ring_locate_n(r.p, k, klen, C.size_t(n), ids, &count, &msg), msg); err != nil {
		return nil, failed("locate n", err)
	}
	arr := (*[1 << 28]*C.char)(unsafe.Pointer(ids))[:int(count):int(count)]
	out := make([]string, len(arr))
	for i, p := range arr {
		out[i] = r.id(p)
	}
	return out, nil
}
