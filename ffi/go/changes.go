package registry

/*
#include "gohelpers.h"
*/
import "C"

import (
	"runtime/cgo"
)

// ViewChange is one change of a view's snapshot: from the snapshot the
// channel delivered last (or the one in use when Changes was called) to
// the one in use now.
type ViewChange struct {
	// OldVersion is the ring version before the change.
	OldVersion uint64
	// NewVersion is the ring version after it.
	NewVersion uint64
	// OldChecksum is the ring checksum before the change.
	OldChecksum uint64
	// NewChecksum is the ring checksum after it.
	NewChecksum uint64
	// Moves is what moved: the key ranges whose owner changed, and to
	// whom (nil if it could not be computed). Close it when done, or
	// leave it to the garbage collector.
	Moves *Moves
}

// changeSub is one Changes channel: the library's callback thread sends on
// ch until done is closed (by GroupView.Close, before the view is freed).
type changeSub struct {
	ch   chan ViewChange
	done chan struct{}
}

// deliver sends one change, or gives up once the view is closing. While
// the receiver lags it blocks the callback thread, and the library merges
// the changes meanwhile into the next one.
func (s *changeSub) deliver(c *C.registry_view_change) {
	ev := ViewChange{
		OldVersion:  uint64(c.old_version),
		NewVersion:  uint64(c.new_version),
		OldChecksum: uint64(c.old_checksum),
		NewChecksum: uint64(c.new_checksum),
	}
	var p *C.registry_moves
	var msg *C.char
	if check(C.gr_ring_moves(c.old_ring, c.new_ring, &p, &msg), msg) == nil {
		ev.Moves, _ = newMoves(p)
	}
	select {
	case s.ch <- ev:
	case <-s.done:
		if ev.Moves != nil {
			ev.Moves.Close()
		}
	}
}

// Changes returns a channel that receives one ViewChange per change of
// the view's snapshot from now on, in order. A receiver slower than the
// changes gets them merged: each value goes from the last snapshot it
// received to the newest, so its Moves is exactly what moved meanwhile.
// The channel is closed by Close. Each call makes a new channel (and a
// library thread that feeds it).
func (v *GroupView) Changes() (<-chan ViewChange, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.p == nil {
		return nil, closed("view")
	}
	if v.done == nil {
		v.done = make(chan struct{})
	}
	sub := &changeSub{ch: make(chan ViewChange, 1), done: v.done}
	h := cgo.NewHandle(sub)
	var msg *C.char
	if err := check(C.gr_view_on_change(v.p, C.uintptr_t(h), &msg), msg); err != nil {
		h.Delete()
		return nil, failed("changes", err)
	}
	v.subs = append(v.subs, h)
	return sub.ch, nil
}

// closeChanges closes the Changes channels once the view is freed (its
// callback threads joined). v.mu is held.
func (v *GroupView) closeChanges() {
	for _, h := range v.subs {
		close(h.Value().(*changeSub).ch)
		h.Delete()
	}
	v.subs = nil
}
