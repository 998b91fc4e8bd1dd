package registry

// The Go functions that C calls back. A file with //export may only
// declare in its preamble, so it holds nothing else.

/*
#include "registry.h"
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// goViewChanged is the registry_view_change_fn of GroupView.Changes
// (through gr_view_changed); userData is the cgo.Handle of its changeSub.
//
//export goViewChanged
func goViewChanged(userData unsafe.Pointer, change *C.registry_view_change) {
	sub, ok := cgo.Handle(uintptr(userData)).Value().(*changeSub)
	if ok {
		sub.deliver(change)
	}
}
