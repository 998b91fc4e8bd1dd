package registry

/*
#include "gohelpers.h"
*/
import "C"

import (
	"runtime"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// GroupView is a local view of one group, kept current through a Watch
// stream: Match answers from a local ring with no round trip. Safe for
// concurrent use; lookups never wait for an update.
type GroupView struct {
	mu    sync.RWMutex
	p     *C.registry_view
	cache atomic.Pointer[viewCache] // Go copies of one snapshot's members
	// Changes channels: their handles, and what stops their senders.
	subs []cgo.Handle
	done chan struct{}
}

// viewCache holds the members of one snapshot generation of the view, so
// that Match copies no string across cgo.
type viewCache struct {
	generation uint64
	members    []Service
	version    uint64
}

// Close stops following the group and releases the view. Closing twice is
// harmless.
func (v *GroupView) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.p != nil {
		// Unblock the Changes callbacks, free the view (which joins
		// their threads), then close the channels nothing sends on now.
		if v.done != nil {
			close(v.done)
		}
		C.registry_view_free(v.p)
		v.closeChanges()
		v.p = nil
		runtime.SetFinalizer(v, nil)
	}
	return nil
}

// Route is handle-or-forward for the member selfID, from the local ring:
// forward is false when selfID owns key (handle the request here), true
// when owner is another member (forward the request to owner.Addr). A
// draining member owns no key, so it forwards every request.
func (v *GroupView) Route(key, selfID string) (owner Service, forward bool, err error) {
	owner, err = v.Match(key)
	if err != nil {
		return Service{}, false, err
	}
	return owner, owner.ID != selfID, nil
}

// Match returns the member that owns key (ErrNotFound when the group has
// no members, ErrInvalidArgument for an empty key). Its Tags map is the
// caller's own copy.
func (v *GroupView) Match(key string) (Service, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.p == nil {
		return Service{}, closed("group view")
	}
	k, klen := keyArg(key)
	for attempt := 0; ; attempt++ {
		r := C.gr_view_match_index(v.p, k, klen)
		if err := check(r.status, r.err); err != nil {
			return Service{}, failed("view match", err)
		}
		index, generation := int(r.need), uint64(r.generation)
		c := v.cache.Load()
		if c == nil || c.generation != generation {
			var err error
			if c, err = v.refresh(); err != nil {
				return Service{}, failed("view match", err)
			}
		}
		if c.generation == generation && index < len(c.members) {
			s := c.members[index]
			if s.Tags != nil {
				s.Tags = copyTags(s.Tags)
			}
			return s, nil
		}
		if attempt >= 3 { // the snapshot keeps changing: copy the answer itself
			return v.matchCopy(key)
		}
	}
}

// refresh loads the members of the view's current snapshot generation.
// Called with v.mu held for reading.
func (v *GroupView) refresh() (*viewCache, error) {
	var l *C.registry_service_list
	var version, generation C.uint64_t
	var msg *C.char
	if err := check(C.gr_view_members_generation(v.p, &l, &version, &generation, &msg), msg); err != nil {
		return nil, err
	}
	c := &viewCache{generation: uint64(generation), members: unpackList(l), version: uint64(version)}
	v.cache.Store(c)
	return c, nil
}

// matchCopy matches and copies the owner across cgo (no cache).
func (v *GroupView) matchCopy(key string) (Service, error) {
	k, klen := keyArg(key)
	buf := make([]byte, 128)
	r := C.gr_view_match(v.p, k, klen, (*C.uchar)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	if err := check(r.status, r.err); err != nil {
		return Service{}, failed("view match", err)
	}
	if r.keep != nil { // did not fit: pack again into a buffer of the right size
		buf = make([]byte, int(r.need))
		C.gr_pack_free(r.keep, (*C.uchar)(unsafe.Pointer(&buf[0])), r.need)
	}
	d := decoder{buf: buf[:int(r.need)], all: bytesToString(buf[:int(r.need)])}
	return d.service(), nil
}

func copyTags(tags map[string]string) map[string]string {
	out := make(map[string]string, len(tags))
	for k, v := range tags {
		out[k] = v
	}
	return out
}

// MatchN returns up to n distinct members for key, in preference order;
// fewer when the group is smaller.
func (v *GroupView) MatchN(key string, n int) ([]Service, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.p == nil {
		return nil, closed("group view")
	}
	if n < 0 {
		n = 0
	}
	k, klen := keyArg(key)
	var l *C.registry_service_list
	var msg *C.char
	if err := check(C.gr_view_match_n(v.p, k, klen, C.size_t(n), &l, &msg), msg); err != nil {
		return nil, failed("view match n", err)
	}
	return unpackList(l), nil
}

// Ring returns the ring the view answers from now: a snapshot that later
// changes of the group do not alter (it shares the view's ring; nothing is
// copied), draining members listed. Take one before and one after a
// change and compare them with MovesTo. Close it when done.
func (v *GroupView) Ring() (*Ring, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.p == nil {
		return nil, closed("group view")
	}
	var p *C.registry_ring
	var msg *C.char
	if err := check(C.gr_view_ring(v.p, &p, &msg), msg); err != nil {
		return nil, failed("view ring", err)
	}
	return wrapRing(p, "view ring")
}

// Members returns the members of the local snapshot, its version and its
// checksum.
func (v *GroupView) Members() (Members, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.p == nil {
		return Members{}, closed("group view")
	}
	var l *C.registry_service_list
	var version, sum C.uint64_t
	var msg *C.char
	if err := check(C.gr_view_members(v.p, &l, &version, &sum, &msg), msg); err != nil {
		return Members{}, failed("view members", err)
	}
	return Members{Services: unpackList(l), Version: uint64(version), Checksum: uint64(sum)}, nil
}

// Checksum is the ring checksum of the snapshot the view answers from
// (0 once closed): that of the ring the view built, equal to the one the
// registry reported for those members (the view refuses a snapshot whose
// checksums differ).
func (v *GroupView) Checksum() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.p == nil {
		return 0
	}
	return readU64(func(out *C.uint64_t, msg **C.char) C.registry_status {
		return C.gr_view_checksum(v.p, out, msg)
	})
}

// Version is the ring version of the snapshot the view answers from
// (0 once closed).
func (v *GroupView) Version() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.p == nil {
		return 0
	}
	return readU64(func(out *C.uint64_t, msg **C.char) C.registry_status {
		return C.gr_view_version(v.p, out, msg)
	})
}

// IsConnected reports whether the view's Watch stream is open; when false
// it answers from its last snapshot while it resubscribes.
func (v *GroupView) IsConnected() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.p == nil {
		return false
	}
	var out C.bool
	var msg *C.char
	if check(C.gr_view_is_connected(v.p, &out, &msg), msg) != nil {
		return false
	}
	return bool(out)
}

// Staleness is how long the view's snapshot has gone unconfirmed: zero
// while its Watch stream is open (the registry sends every change on it),
// else the time since the last stream closed. A registry that stops
// answering without closing the stream is found out by pings within about
// 5 s plus the request timeout. Zero once the view is closed.
func (v *GroupView) Staleness() time.Duration {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.p == nil {
		return 0
	}
	ms := readU64(func(out *C.uint64_t, msg **C.char) C.registry_status {
		return C.gr_view_staleness_ms(v.p, out, msg)
	})
	return time.Duration(ms) * time.Millisecond
}
