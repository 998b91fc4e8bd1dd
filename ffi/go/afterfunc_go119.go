//go:build !go1.21

package registry

import "context"

// afterFunc runs f once ctx is done, unless stop is called first (Go
// before 1.21 has no context.AfterFunc: one goroutine waits for either).
func afterFunc(ctx context.Context, f func()) (stop func()) {
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			f()
		case <-stopped:
		}
	}()
	return func() { close(stopped) }
}
