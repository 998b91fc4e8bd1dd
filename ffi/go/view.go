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

// GroupView is a local view of one group, kept current through a Watch
// stream: Match answers from a local ring with no round trip. Safe for
// concurrent use; lookups never wait for an update.
type GroupView struct {
	mu sync.RWMutex
	p  *C.registry_view
}

// Close stops following the group and releases the view. Closing twice is
// harmless.
func (v *GroupView) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.p != nil {
		C.registry_view_free(v.p)
		v.p = nil
		runtime.SetFinalizer(v, nil)
	}
	return nil
}

// Match returns the member that owns key (ErrNotFound when the group has
// no members, ErrInvalidArgument for an empty key).
func (v *GroupView) Match(key string) (Service, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.p == nil {
		return Service{}, closed("group view")
	}
	k, klen := keyArg(key)
	buf := make([]byte, 128)
	var need C.size_t
	var keep *C.registry_service
	var msg *C.char
	status := C.gr_view_match(v.p, k, klen, (*C.uchar)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &need, &keep, &msg)
	if err := check(status, msg); err != nil {
		return Service{}, err
	}
	if keep != nil { // did not fit: pack again into a buffer of the right size
		buf = make([]byte, int(need))
		C.gr_pack_free(keep, (*C.uchar)(unsafe.Pointer(&buf[0])), need)
	}
	return unpack(buf[:int(need)], 1)[0], nil
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
		return nil, err
	}
	return unpackList(l), nil
}

// Members returns the members of the local snapshot and its version.
func (v *GroupView) Members() (Members, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.p == nil {
		return Members{}, closed("group view")
	}
	var l *C.registry_service_list
	var version C.uint64_t
	var msg *C.char
	if err := check(C.gr_view_members(v.p, &l, &version, &msg), msg); err != nil {
		return Members{}, err
	}
	return Members{Services: unpackList(l), Version: uint64(version)}, nil
}

// Version is the ring version of the snapshot the view answers from
// (0 once closed).
func (v *GroupView) Version() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.p == nil {
		return 0
	}
	var out C.uint64_t
	var msg *C.char
	if check(C.gr_view_version(v.p, &out, &msg), msg) != nil {
		return 0
	}
	return uint64(out)
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
