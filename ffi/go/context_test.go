package registry

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// silentRegistry accepts gRPC connections on loopback and never answers,
// recording the type of every HTTP/2 frame clients send, so a test can see
// a call's stream being reset when its context ends.
type silentRegistry struct {
	l      net.Listener
	mu     sync.Mutex
	frames map[byte]int
	conns  []net.Conn
}

func newSilentRegistry(t *testing.T) *silentRegistry {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentRegistry{l: l, frames: map[byte]int{}}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go s.read(c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.Close()
		}
	})
	return s
}

// read skips the client preface and counts frames by type.
func (s *silentRegistry) read(c net.Conn) {
	if _, err := io.ReadFull(c, make([]byte, 24)); err != nil {
		return
	}
	head := make([]byte, 9)
	for {
		if _, err := io.ReadFull(c, head); err != nil {
			return
		}
		n := int(head[0])<<16 | int(head[1])<<8 | int(head[2])
		if _, err := io.CopyN(io.Discard, c, int64(n)); err != nil {
			return
		}
		s.mu.Lock()
		s.frames[head[3]]++
		s.mu.Unlock()
	}
}

// count returns how many frames of type typ clients have sent.
func (s *silentRegistry) count(typ byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frames[typ]
}

const (
	frameHeaders   = 0x1
	frameRstStream = 0x3
)

// patientClient waits 20 s for a registry, far longer than the contexts
// of the tests below.
func patientClient(t *testing.T, addr string) *Client {
	t.Helper()
	c, err := NewClient(context.Background(), []string{addr}, &ClientOptions{
		ConnectTimeout: 20 * time.Second, RequestTimeout: 20 * time.Second, Attempts: 1,
		NoRegistryDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantContextErr checks that err is ctxErr's kind and wraps it, and that
// the call returned within a second of when the context ended.
func wantContextErr(t *testing.T, what string, err, ctxErr, kind error, ended time.Time) {
	t.Helper()
	if !errors.Is(err, ctxErr) || !errors.Is(err, kind) {
		t.Errorf("%s: got %v, want an error wrapping %v of kind %v", what, err, ctxErr, kind)
	}
	if late := time.Since(ended); late > time.Second {
		t.Errorf("%s: returned %v after its context ended", what, late)
	}
}

func TestContextCancelStopsTheCall(t *testing.T) {
	reg := newSilentRegistry(t)
	c := patientClient(t, reg.l.Addr().String())

	// A context already cancelled: every call returns at once.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	_, err := c.Match(done, "web", "k")
	wantContextErr(t, "match on a cancelled context", err, context.Canceled, ErrCancelled, start)
	_, err = c.Members(done, "web")
	wantContextErr(t, "members on a cancelled context", err, context.Canceled, ErrCancelled, start)
	_, err = c.Groups(done)
	wantContextErr(t, "groups on a cancelled context", err, context.Canceled, ErrCancelled, start)
	_, err = Register(done, RegistrationConfig{ID: "go-ctx-1", Group: "web", Addr: "127.0.0.1:1", Registries: []string{"127.0.0.1:1"}})
	wantContextErr(t, "register on a cancelled context", err, context.Canceled, ErrCancelled, start)

	// Cancelled while the registry keeps it waiting: the call returns, and
	// the library resets its HTTP/2 stream (the work stops, it is not
	// merely abandoned).
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan time.Time, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		ended <- time.Now()
		cancel()
	}()
	_, err = c.MatchN(ctx, "web", "k", 2)
	wantContextErr(t, "match n cancelled in flight", err, context.Canceled, ErrCancelled, <-ended)
	if reg.count(frameHeaders) == 0 {
		t.Fatal("the call never reached the registry")
	}
	eventually(t, "the cancelled call's stream is reset", func() bool { return reg.count(frameRstStream) > 0 })
}

func TestContextDeadlineIsHonoured(t *testing.T) {
	reg := newSilentRegistry(t)
	c := patientClient(t, reg.l.Addr().String())
	for _, tc := range []struct {
		what string
		call func(ctx context.Context) error
	}{
		{"match", func(ctx context.Context) error { _, err := c.Match(ctx, "web", "k"); return err }},
		{"members", func(ctx context.Context) error { _, err := c.Members(ctx, "web"); return err }},
		{"group", func(ctx context.Context) error { _, err := c.Group(ctx, "web"); return err }},
		{"new client with discovery", func(ctx context.Context) error {
			d, err := NewClient(ctx, []string{reg.l.Addr().String()}, &ClientOptions{
				ConnectTimeout: 20 * time.Second, RequestTimeout: 20 * time.Second,
			})
			if err == nil {
				d.Close()
			}
			return err
		}},
	} {
		const timeout = 250 * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		start := time.Now()
		err := tc.call(ctx)
		cancel()
		if took := time.Since(start); took < timeout {
			t.Errorf("%s: returned after %v, before its %v deadline: %v", tc.what, took, timeout, err)
		}
		wantContextErr(t, tc.what, err, context.DeadlineExceeded, ErrTimeout, start.Add(timeout))
	}
}

func TestBackgroundContextChangesNothing(t *testing.T) {
	// Background can never be done: the call runs to the library's own
	// timeout and reports the library's error, not a context error.
	c := quickClient(t, []string{deadAddr(t)}, ClientOptions{})
	_, err := c.Match(context.Background(), "web", "k")
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want ErrUnavailable only", err)
	}
}
