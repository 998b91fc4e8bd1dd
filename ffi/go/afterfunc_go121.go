//go:build go1.21

package registry

import "context"

// afterFunc runs f in its own goroutine once ctx is done, unless stop is
// called first.
func afterFunc(ctx context.Context, f func()) (stop func()) {
	s := context.AfterFunc(ctx, f)
	return func() { s() }
}
