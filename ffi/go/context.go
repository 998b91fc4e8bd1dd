package registry

/*
#include "gohelpers.h"
*/
import "C"

import (
	"context"
	"sync"
)

// cancelToken is the C cancellation token of one call, fired when the
// call's context is done. Firing and freeing take mu, so a fire that races
// with the end of the call never touches a freed token.
type cancelToken struct {
	mu sync.Mutex
	p  *C.registry_cancel
}

func (t *cancelToken) fire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.p != nil {
		C.registry_cancel_fire(t.p)
	}
}

func (t *cancelToken) free() {
	t.mu.Lock()
	defer t.mu.Unlock()
	C.registry_cancel_free(t.p)
	t.p = nil
}

// withContext runs call, which makes one blocking C call given the token,
// so that ctx bounds it: a context already done returns at once, and one
// that ends during the call fires the token, which stops the call's work
// in the library. An error caused by the context wraps ctx.Err() (so
// errors.Is(err, context.Canceled) and context.DeadlineExceeded work) and
// is of kind CodeCancelled, or CodeTimeout for a deadline. A context that
// can never be done (context.Background) costs nothing. op names the
// operation in errors.
func withContext(ctx context.Context, op string, call func(tok *C.registry_cancel) error) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return contextError(op, err)
	}
	if ctx.Done() == nil {
		return call(nil)
	}
	t := &cancelToken{}
	var msg *C.char
	if err := check(C.gr_cancel_new(&t.p, &msg), msg); err != nil {
		return failed(op, err)
	}
	stop := afterFunc(ctx, t.fire)
	err := call(t.p)
	stop()
	t.free()
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return contextError(op, cerr)
		}
	}
	return err
}
