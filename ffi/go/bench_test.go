package registry

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// benchKeys are the keys every benchmark cycles through.
var benchKeys = func() []string {
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%d", i)
	}
	return keys
}()

// BenchmarkRingLocate: standalone ring of 100 weight-1 members, one goroutine.
func BenchmarkRingLocate(b *testing.B) {
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprintf("svc-%d", i)
	}
	r, err := NewRing(ids, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Locate("k"); err != nil {
		b.Skipf("ring unusable: %v", err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := r.Locate(benchKeys[i&(len(benchKeys)-1)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}

// benchView is the view BenchmarkViewMatch uses, set up once per process
// (the benchmark function runs several times).
var benchView = struct {
	once sync.Once
	view *GroupView
	regs []*Registration // kept: a dropped Registration is closed by its finalizer
	size int
	err  error
}{}

// setupBenchView follows $REGISTRY_BENCH_GROUP on $REGISTRY_ADDR, first
// registering $REGISTRY_BENCH_MEMBERS services through
// $REGISTRY_GOSSIP_ADDR when set. Handles live until the process exits.
func setupBenchView() {
	addr, group := os.Getenv("REGISTRY_ADDR"), os.Getenv("REGISTRY_BENCH_GROUP")
	c, err := NewClient(context.Background(), []string{addr}, nil)
	if err != nil {
		benchView.err = err
		return
	}
	v, err := c.Group(context.Background(), group)
	if err != nil {
		benchView.err = err
		return
	}
	want, _ := strconv.Atoi(os.Getenv("REGISTRY_BENCH_MEMBERS"))
	gossip := os.Getenv("REGISTRY_GOSSIP_ADDR")
	for i := 0; i < want && gossip != ""; i++ {
		r, err := Register(context.Background(), RegistrationConfig{ID: fmt.Sprintf("bench-%d", i), Group: group,
			Addr: fmt.Sprintf("127.0.0.1:%d", 21000+i), Registries: []string{gossip}})
		if err != nil {
			benchView.err = err
			return
		}
		benchView.regs = append(benchView.regs, r)
	}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if m, err := v.Members(); err == nil && len(m.Services) >= want && len(m.Services) > 0 {
			benchView.view, benchView.size = v, len(m.Services)
			return
		}
	}
	benchView.err = fmt.Errorf("group %q did not reach %d members", group, want)
}

// BenchmarkViewMatch: local view of group $REGISTRY_BENCH_GROUP on the
// registry at $REGISTRY_ADDR, one goroutine.
func BenchmarkViewMatch(b *testing.B) {
	if os.Getenv("REGISTRY_ADDR") == "" || os.Getenv("REGISTRY_BENCH_GROUP") == "" {
		b.Skip("set REGISTRY_ADDR and REGISTRY_BENCH_GROUP (and REGISTRY_GOSSIP_ADDR, REGISTRY_BENCH_MEMBERS)")
	}
	benchView.once.Do(setupBenchView)
	if benchView.err != nil {
		b.Fatal(benchView.err)
	}
	v := benchView.view
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := v.Match(benchKeys[i&(len(benchKeys)-1)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	b.ReportMetric(float64(benchView.size), "members")
}
