package registry

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// notRunning is the core's hint after the addresses it could not connect to.
const notRunning = "is a registry-server running there? (its gRPC port is its --addr)"

// cSymbol matches a C function name of libregistry in a message.
var cSymbol = regexp.MustCompile(`registry_[a-z_]+`)

// deadAddr is a loopback address nothing listens on: bound, noted, closed.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// quickClient is a client of addrs alone that gives up fast; opts may add
// TLS settings.
func quickClient(t *testing.T, addrs []string, opts ClientOptions) *Client {
	t.Helper()
	opts.ConnectTimeout = 500 * time.Millisecond
	opts.RequestTimeout = time.Second
	opts.MaxBackoff = 10 * time.Millisecond
	opts.NoRegistryDiscovery = true
	c, err := NewClient(context.Background(), addrs, &opts)
	if err != nil {
		t.Fatalf("NewClient(context.Background(), %v): %v", addrs, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// emptiedGroup registers one member in group through the registry's
// gossip address, waits until the registry answers for it, stops it and
// waits until the group is empty again: the registry then knows the group
// lost its last member.
func emptiedGroup(t *testing.T, c *Client, gossip, group string) {
	t.Helper()
	r, err := Register(context.Background(), RegistrationConfig{ID: group + "-1", Group: group, Addr: "127.0.0.1:9", Registries: []string{gossip}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	eventually(t, "the member in "+group, func() bool {
		_, err := c.Match(context.Background(), group, "k")
		return err == nil
	})
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	eventually(t, group+" empty again", func() bool {
		_, err := c.Match(context.Background(), group, "k")
		return errors.Is(err, ErrNotFound)
	})
}

// TestErrorMessages: what a Go user reads for the common failures. Every
// message names the Go operation (never a C function), and says what was
// tried and what to do. Rows that need a registry-server (REGISTRY_ADDR,
// REGISTRY_GOSSIP_ADDR) or a TLS one (REGISTRY_TLS_ADDR, REGISTRY_TLS_DIR)
// are skipped without them.
func TestErrorMessages(t *testing.T) {
	addr, gossip := os.Getenv("REGISTRY_ADDR"), os.Getenv("REGISTRY_GOSSIP_ADDR")
	tlsAddr, tlsDir := os.Getenv("REGISTRY_TLS_ADDR"), os.Getenv("REGISTRY_TLS_DIR")
	haveServer, haveTLS := addr != "" && gossip != "", tlsAddr != "" && tlsDir != ""
	file := func(name string) string { return filepath.Join(tlsDir, name) }
	d1, d2 := deadAddr(t), deadAddr(t)
	dead := quickClient(t, []string{d1, d2}, ClientOptions{})

	var live *Client
	if haveServer {
		live = quickClient(t, []string{addr}, ClientOptions{})
		emptiedGroup(t, live, gossip, "go-errors-emptied")
	}
	// match asks addrs with opts for a member of registry-group.
	match := func(addrs []string, opts ClientOptions) func() error {
		return func() error {
			_, err := quickClient(t, addrs, opts).Match(context.Background(), "registry-group", "k")
			return err
		}
	}

	rows := []struct {
		name  string
		needs string // "", "server", "tls", "both"
		call  func() error
		kind  error
		want  []string
		not   []string
	}{
		{
			name: "no registry: Match",
			call: func() error { _, err := dead.Match(context.Background(), "web", "k"); return err },
			kind: ErrUnavailable,
			want: []string{
				"registry: match: unavailable: no registry reachable: tried " + d1 + " (connection refused), " + d2 + " (connection refused)",
				notRunning,
			},
		},
		{
			name: "no registry: Group",
			call: func() error { _, err := dead.Group(context.Background(), "web"); return err },
			kind: ErrUnavailable,
			want: []string{
				`registry: group: unavailable: no registry sent a snapshot of group "web"`,
				"tried " + d1 + " (connection refused)",
				notRunning,
			},
		},
		{
			name: "empty group name",
			call: func() error { _, err := dead.Match(context.Background(), "", "k"); return err },
			kind: ErrInvalidArgument,
			want: []string{"registry: match: invalid argument: group is empty: a name is required"},
		},
		{
			name: "bad address: no port",
			call: func() error { _, err := NewClient(context.Background(), []string{"127.0.0.1"}, nil); return err },
			kind: ErrInvalidArgument,
			want: []string{`registry: new client: invalid argument: bad registry address "127.0.0.1": no port; expected host:port, e.g. 127.0.0.1:9800`},
		},
		{
			name: "bad address: malformed",
			call: func() error { _, err := NewClient(context.Background(), []string{"exa mple:: /x"}, nil); return err },
			kind: ErrInvalidArgument,
			want: []string{`bad registry address "exa mple:: /x"`, "expected host:port"},
		},
		{
			name:  "unknown group",
			needs: "server",
			call:  func() error { _, err := live.Match(context.Background(), "go-errors-unknown", "k"); return err },
			kind:  ErrNotFound,
			want:  []string{`registry: match: not found: group "go-errors-unknown" has no members: none has registered`},
		},
		{
			name:  "empty group (last member left)",
			needs: "server",
			call:  func() error { _, err := live.Match(context.Background(), "go-errors-emptied", "k"); return err },
			kind:  ErrNotFound,
			want:  []string{`registry: match: not found: group "go-errors-emptied" has no members: its last member left`},
		},
		{
			name:  "empty group: view Match",
			needs: "server",
			call: func() error {
				v, err := live.Group(context.Background(), "go-errors-unknown")
				if err != nil {
					return err
				}
				defer v.Close()
				_, err = v.Match("k")
				return err
			},
			kind: ErrNotFound,
			want: []string{`registry: view match: not found: group "go-errors-unknown" has no members`},
		},
		{
			name:  "TLS mismatch: plain client, TLS registry",
			needs: "tls",
			call:  match([]string{tlsAddr}, ClientOptions{}),
			kind:  ErrUnavailable,
			want:  []string{"no registry reachable: tried " + tlsAddr + " (", "does the registry serve TLS only? then the client needs its CA"},
			not:   []string{notRunning},
		},
		{
			name:  "TLS mismatch: CA that did not sign it",
			needs: "tls",
			call:  match([]string{tlsAddr}, ClientOptions{TLSCAFile: file("other-ca.pem"), TLSCertFile: file("client.pem"), TLSKeyFile: file("client-key.pem")}),
			kind:  ErrUnavailable,
			want:  []string{"tried https://" + tlsAddr + " (TLS: invalid peer certificate: UnknownIssuer", "not signed by the client's TLS CA"},
			not:   []string{notRunning},
		},
		{
			name:  "TLS mismatch: no client certificate",
			needs: "tls",
			call:  match([]string{tlsAddr}, ClientOptions{TLSCAFile: file("ca.pem")}),
			kind:  ErrUnavailable,
			want:  []string{"registry: match: unavailable: no registry reachable: tried https://" + tlsAddr + " (", "client certificate"},
			not:   []string{notRunning},
		},
		{
			name:  "TLS mismatch: TLS client, plain registry",
			needs: "both",
			call:  match([]string{addr}, ClientOptions{TLSCAFile: file("ca.pem")}),
			kind:  ErrUnavailable,
			want:  []string{"tried https://" + addr + " (TLS:", "does the registry serve plain text? then the client needs no TLS settings"},
		},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			switch {
			case (row.needs == "server" || row.needs == "both") && !haveServer:
				t.Skip("SKIP: set REGISTRY_ADDR and REGISTRY_GOSSIP_ADDR to test against a registry-server")
			case (row.needs == "tls" || row.needs == "both") && !haveTLS:
				t.Skip("SKIP: set REGISTRY_TLS_ADDR and REGISTRY_TLS_DIR to test against a TLS registry-server")
			}
			err := row.call()
			if err == nil {
				t.Fatalf("got no error, want %v", row.kind)
			}
			text := err.Error()
			t.Logf("%s", text)
			if !errors.Is(err, row.kind) {
				t.Errorf("kind: got %q, want %v", text, row.kind)
			}
			for _, w := range row.want {
				if !strings.Contains(text, w) {
					t.Errorf("%q lacks %q", text, w)
				}
			}
			for _, n := range row.not {
				if strings.Contains(text, n) {
					t.Errorf("%q should not say %q", text, n)
				}
			}
			if sym := cSymbol.FindString(text); sym != "" {
				t.Errorf("%q names the C function %s", text, sym)
			}
			var e *Error
			if !errors.As(err, &e) || e.Op == "" {
				t.Errorf("want an *Error naming the operation, got %#v", err)
			}
		})
	}
}
