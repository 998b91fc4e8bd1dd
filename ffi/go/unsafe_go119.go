//go:build !go1.20

package registry

import (
	"reflect"
	"unsafe"
)

// stringData is the address of a string's bytes (nil for "").
func stringData(s string) unsafe.Pointer {
	return unsafe.Pointer((*reflect.StringHeader)(unsafe.Pointer(&s)).Data)
}

// bytesToString copies b into a string (Go 1.19 has no unsafe.String).
func bytesToString(b []byte) string { return string(b) }
