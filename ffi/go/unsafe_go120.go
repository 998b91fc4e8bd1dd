//go:build go1.20

package registry

import "unsafe"

// stringData is the address of a string's bytes (nil for "").
func stringData(s string) unsafe.Pointer { return unsafe.Pointer(unsafe.StringData(s)) }

// bytesToString views b as a string without a copy; b must not change.
func bytesToString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
