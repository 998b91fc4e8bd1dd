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

// MovedRange is a range of key positions, First to Last inclusive, whose
// owner changed from From to To. "" is no owner: that ring had no serving
// member (ids are never empty).
type MovedRange struct {
	// First is the first key position of the range.
	First uint32
	// Last is the last key position of the range (inclusive).
	Last uint32
	// From is the owner before the change ("" for none).
	From string
	// To is the owner after the change ("" for none).
	To string
}

// Positions is the number of key positions in the range.
func (r MovedRange) Positions() uint64 { return uint64(r.Last-r.First) + 1 }

// Moves is what moved between two rings: every range of key positions
// whose owner changed, exact (from the rings' points, no sampling). Get
// it with Ring.MovesTo. Safe for concurrent use; Close releases the
// library's part (OfKey needs it; Ranges stay readable).
type Moves struct {
	// Ranges are the moved ranges, sorted by position, never wrapping
	// (a range across position 0 is two), and no two adjacent ones have
	// the same owners.
	Ranges []MovedRange

	mu sync.RWMutex
	p  *C.registry_moves
}

// MovesTo returns what moved from r to newer: the key ranges whose owner
// differs, with the old and the new owner (draining members own nothing,
// as in the rings' answers). Take a view's ring before and after a change
// (GroupView.Ring) to see which keys a member must hand off, and to whom.
func (r *Ring) MovesTo(newer *Ring) (*Moves, error) {
	if newer == nil {
		return nil, &Error{Code: CodeInvalidArgument, Op: "moves", Message: "newer ring is nil"}
	}
	defer readLockBoth(r, newer)()
	if r.p == nil || newer.p == nil {
		return nil, closed("ring")
	}
	var p *C.registry_moves
	var msg *C.char
	if err := check(C.gr_ring_moves(r.p, newer.p, &p, &msg), msg); err != nil {
		return nil, failed("moves", err)
	}
	return newMoves(p)
}

// newMoves takes ownership of p: a Moves with its ranges read.
func newMoves(p *C.registry_moves) (*Moves, error) {
	m := &Moves{p: p}
	if err := m.readRanges(); err != nil {
		C.registry_moves_free(p)
		return nil, failed("moves", err)
	}
	runtime.SetFinalizer(m, (*Moves).Close)
	return m, nil
}

// readLockBoth read-locks two rings (one lock when they are the same) in
// the order of their addresses, so that two calls never wait on each
// other; it returns the unlock.
func readLockBoth(a, b *Ring) func() {
	if a == b {
		a.mu.RLock()
		return a.mu.RUnlock
	}
	if uintptr(unsafe.Pointer(a)) > uintptr(unsafe.Pointer(b)) {
		a, b = b, a
	}
	a.mu.RLock()
	b.mu.RLock()
	return func() {
		b.mu.RUnlock()
		a.mu.RUnlock()
	}
}

// readRanges copies every range into m.Ranges, in one cgo call.
func (m *Moves) readRanges() error {
	n := int(C.registry_moves_len(m.p))
	if n == 0 {
		return nil
	}
	// C memory: C writes C pointers into it.
	buf := (*C.gr_range)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.gr_range{}))))
	defer C.free(unsafe.Pointer(buf))
	var msg *C.char
	if err := check(C.gr_moves_ranges(m.p, buf, C.size_t(n), &msg), msg); err != nil {
		return err
	}
	// The moves hold one C string per id: copy each once.
	names := map[*C.char]string{}
	name := func(p *C.char) string {
		if p == nil {
			return ""
		}
		s, ok := names[p]
		if !ok {
			s = C.GoString(p)
			names[p] = s
		}
		return s
	}
	m.Ranges = make([]MovedRange, n)
	for i, r := range unsafe.Slice(buf, n) {
		m.Ranges[i] = MovedRange{First: uint32(r.first), Last: uint32(r.last), From: name(r.from), To: name(r.to)}
	}
	return nil
}

// Close releases the library's part of the moves (Ranges stay readable;
// OfKey then gives ErrInvalidArgument). Closing twice is harmless.
func (m *Moves) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.p != nil {
		C.registry_moves_free(m.p)
		m.p = nil
		runtime.SetFinalizer(m, nil)
	}
	return nil
}

// OfKey says whether key moved, and if so its range (from whom to whom).
// ErrInvalidArgument for an empty key.
func (m *Moves) OfKey(key string) (MovedRange, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.p == nil {
		return MovedRange{}, false, closed("moves")
	}
	k, klen := keyArg(key)
	var moved C.bool
	var index C.size_t
	var msg *C.char
	if err := check(C.gr_moves_of_key(m.p, k, klen, &moved, &index, &msg), msg); err != nil {
		return MovedRange{}, false, failed("moves of key", err)
	}
	if !moved {
		return MovedRange{}, false, nil
	}
	if int(index) >= len(m.Ranges) {
		return MovedRange{}, false, &Error{Code: CodeInternal, Op: "moves of key", Message: "range index out of range"}
	}
	return m.Ranges[int(index)], true, nil
}

// LostBy returns the ranges id owned before and no longer owns: the keys
// it must hand off (each range says to whom). None for "" (no id).
func (m *Moves) LostBy(id string) []MovedRange {
	return m.filter(func(r MovedRange) bool { return id != "" && r.From == id })
}

// GainedBy returns the ranges id owns now and did not before: the keys it
// takes over (each range says from whom). None for "" (no id).
func (m *Moves) GainedBy(id string) []MovedRange {
	return m.filter(func(r MovedRange) bool { return id != "" && r.To == id })
}

// filter returns the ranges keep accepts, in order.
func (m *Moves) filter(keep func(MovedRange) bool) []MovedRange {
	var out []MovedRange
	for _, r := range m.Ranges {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// Positions is the number of key positions that changed owner, over all
// ranges (at most 2^32, the whole key space).
func (m *Moves) Positions() uint64 {
	var n uint64
	for _, r := range m.Ranges {
		n += r.Positions()
	}
	return n
}

// Fraction is the fraction of the key space that changed owner (0 to 1).
func (m *Moves) Fraction() float64 { return float64(m.Positions()) / (1 << 32) }
