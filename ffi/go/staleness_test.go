package registry

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// freePort returns a loopback port free for both TCP and UDP.
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// ownServer starts a registry-server of its own (REGISTRY_SERVER_BIN) on
// free loopback ports, for a test that stops it; returns its gRPC and
// gossip addresses and the process, which the test must kill.
func ownServer(t *testing.T) (string, string, *os.Process) {
	bin := os.Getenv("REGISTRY_SERVER_BIN")
	if bin == "" {
		t.Skip("SKIP: set REGISTRY_SERVER_BIN to a registry-server binary")
	}
	grpc := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	gossip := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	http := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "--id", "go-stale", "--addr", grpc, "--http-addr", http, "--bind", gossip)
	cmd.Env = append(os.Environ(), "RUST_LOG=warn")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", grpc); err == nil {
			c.Close()
			return grpc, gossip, cmd.Process
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("registry-server did not listen on %s", grpc)
		}
	}
}

// A view reports how long its snapshot has gone unconfirmed once its
// registry dies; with MaxStaleness its lookups fail with ErrUnavailable
// past that bound, not before, and without it they keep answering.
func TestViewStaleness(t *testing.T) {
	addr, gossip, proc := ownServer(t)
	defer func() { _ = proc.Kill() }()
	const group = "ffi-go-stale"
	reg, err := Register(context.Background(), RegistrationConfig{ID: "stale-1", Group: group, Addr: "127.0.0.1:8301",
		Registries: []string{gossip}})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	const bound = 600 * time.Millisecond
	views := make([]*GroupView, 2)
	for i, maxStale := range []time.Duration{0, bound} {
		c, err := NewClient(context.Background(), []string{addr}, &ClientOptions{NoRegistryDiscovery: true,
			MaxBackoff: 100 * time.Millisecond, MaxStaleness: maxStale})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if views[i], err = c.Group(context.Background(), group); err != nil {
			t.Fatal(err)
		}
		defer views[i].Close()
	}
	free, bounded := views[0], views[1]
	eventually(t, "stale-1 in both views", func() bool {
		a, errA := free.Members()
		b, errB := bounded.Members()
		return errA == nil && errB == nil && len(a.Services) == 1 && len(b.Services) == 1
	})
	if s := bounded.Staleness(); s != 0 || !bounded.IsConnected() {
		t.Fatalf("connected view: staleness %v, connected %v", s, bounded.IsConnected())
	}
	if _, err := bounded.Match("user-1"); err != nil {
		t.Fatal(err)
	}

	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both views to notice the registry is gone", func() bool {
		return !free.IsConnected() && !bounded.IsConnected()
	})
	noticed := bounded.Staleness()
	if noticed >= bound {
		t.Fatalf("noticed only after %v", noticed)
	}
	if s, err := bounded.Match("user-1"); err != nil || s.ID != "stale-1" {
		t.Fatalf("within the bound: %v, %v", s, err)
	}
	time.Sleep(bound + 100*time.Millisecond - noticed)
	if s := bounded.Staleness(); s <= bound {
		t.Fatalf("staleness %v after the bound", s)
	}
	_, err = bounded.Match("user-1")
	wantErr(t, "Match past the bound", err, ErrUnavailable, "max_staleness")
	_, err = bounded.MatchN("user-1", 1)
	wantErr(t, "MatchN past the bound", err, ErrUnavailable, "max_staleness")
	if s, err := free.Match("user-1"); err != nil || s.ID != "stale-1" {
		t.Fatalf("no bound: %v, %v", s, err)
	}
	if s := free.Staleness(); s < bound {
		t.Fatalf("the unbounded view's staleness is %v", s)
	}
}
