package registry

/*
// libregistry and registry.h are found through pkg-config (registry.pc,
// installed by scripts/install; see README.md, "Build and link").
#cgo pkg-config: registry
#include "gohelpers.h"
*/
import "C"

import (
	"encoding/binary"
	"unsafe"
)

// readU64 calls read for one uint64_t; 0 when it fails (a closed handle).
func readU64(read func(out *C.uint64_t, msg **C.char) C.registry_status) uint64 {
	var out C.uint64_t
	var msg *C.char
	if check(read(&out, &msg), msg) != nil {
		return 0
	}
	return uint64(out)
}

// check turns a status and the message copied by a gr_* helper into an
// error (nil on REGISTRY_OK), freeing the message.
func check(status C.registry_status, msg *C.char) error {
	if status == C.REGISTRY_OK {
		return nil
	}
	text := ""
	if msg != nil {
		text = C.GoString(msg)
		C.free(unsafe.Pointer(msg))
	}
	return &Error{Code: Code(status), Message: text}
}

// cStrings copies Go strings to C; free releases them.
type cStrings []*C.char

func newCStrings(ss []string) cStrings {
	out := make(cStrings, len(ss))
	for i, s := range ss {
		out[i] = C.CString(s)
	}
	return out
}

func (cs cStrings) ptr() **C.char {
	if len(cs) == 0 {
		return nil
	}
	return &cs[0]
}

func (cs cStrings) free() {
	for _, p := range cs {
		C.free(unsafe.Pointer(p))
	}
}

// keyArg is a Go string passed to C as pointer and length, without a copy
// (C reads it during the call only and keeps no pointer).
func keyArg(s string) (*C.char, C.size_t) {
	return (*C.char)(stringData(s)), C.size_t(len(s))
}

// decoder reads services packed by gr_pack.
type decoder struct {
	buf []byte
	all string // buf as a string: fields are substrings of it (one allocation)
	at  int
}

func newDecoder(buf []byte) *decoder { return &decoder{buf: buf, all: bytesToString(buf)} }

func (d *decoder) u32() uint32 {
	v := binary.LittleEndian.Uint32(d.buf[d.at:])
	d.at += 4
	return v
}

func (d *decoder) str() string {
	n := int(d.u32())
	s := d.all[d.at : d.at+n]
	d.at += n
	return s
}

func (d *decoder) service() Service {
	var s Service
	s.Weight = d.u32()
	ntags := int(d.u32())
	s.Draining = d.u32()&1 != 0
	s.ID, s.Group, s.Addr = d.str(), d.str(), d.str()
	if ntags > 0 {
		s.Tags = make(map[string]string, ntags)
		for t := 0; t < ntags; t++ {
			k := d.str()
			s.Tags[k] = d.str()
		}
	}
	return s
}

// unpack decodes count services packed by gr_pack from buf (which it keeps).
func unpack(buf []byte, count int) []Service {
	d := newDecoder(buf)
	out := make([]Service, count)
	for i := range out {
		out[i] = d.service()
	}
	return out
}

// unpackList copies every service of a C list into Go and frees the list.
func unpackList(l *C.registry_service_list) []Service {
	defer C.registry_service_list_free(l)
	n := int(C.registry_service_list_len(l))
	buf := make([]byte, 64+n*96)
	need := int(C.gr_pack_list(l, (*C.uchar)(unsafe.Pointer(&buf[0])), C.size_t(len(buf))))
	if need > len(buf) {
		buf = make([]byte, need)
		C.gr_pack_list(l, (*C.uchar)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	}
	return unpack(buf[4:need], n)
}
