package registry

import (
	"context"
	"fmt"
	"os"
	"sort"
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

// changeLatency registers a service in group bench-latency through
// $REGISTRY_GOSSIP_ADDR, follows the group with a view on $REGISTRY_ADDR
// and times b.N changes, each from the call that makes it (change, on the
// registration) to its ViewChange arriving on the view's channel: the
// delay a Go program sees from a membership change to its own code.
// Reports the median and p99 in ms.
func changeLatency(b *testing.B, change func(i int, reg **Registration, cfg RegistrationConfig) error) {
	addr, gossip := os.Getenv("REGISTRY_ADDR"), os.Getenv("REGISTRY_GOSSIP_ADDR")
	if addr == "" || gossip == "" {
		b.Skip("set REGISTRY_ADDR and REGISTRY_GOSSIP_ADDR")
	}
	ctx := context.Background()
	c, err := NewClient(ctx, []string{addr}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	cfg := RegistrationConfig{ID: fmt.Sprintf("lat-%d", os.Getpid()), Group: "bench-latency",
		Addr: "127.0.0.1:1", Registries: []string{gossip}}
	reg, err := Register(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { reg.Close() }()
	v, err := c.Group(ctx, cfg.Group)
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m, err := v.Members(); err == nil && len(m.Services) == 1 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the registered service never reached the view")
		}
	}
	ch, err := v.Changes()
	if err != nil {
		b.Fatal(err)
	}
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := change(i, &reg, cfg); err != nil {
			b.Fatal(err)
		}
		select {
		case ev := <-ch:
			took = append(took, time.Since(start))
			if ev.Moves != nil {
				ev.Moves.Close()
			}
		case <-time.After(20 * time.Second):
			b.Fatalf("change %d never reached the view", i)
		}
		b.StopTimer()
		// Let the gossip settle so that each change is timed alone.
		time.Sleep(50 * time.Millisecond)
		for len(ch) > 0 {
			<-ch
		}
		b.StartTimer()
	}
	b.StopTimer()
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	ms := func(q float64) float64 { return float64(took[int(q*float64(len(took)-1))]) / 1e6 }
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}

// BenchmarkChangeLatencyUpdate: a registered service changes its weight.
func BenchmarkChangeLatencyUpdate(b *testing.B) {
	changeLatency(b, func(i int, reg **Registration, _ RegistrationConfig) error {
		return (*reg).SetWeight(uint32(2 + i%2))
	})
}

// BenchmarkChangeLatencyLeaveJoin: the registered service leaves (even
// changes) and registers again (odd ones).
func BenchmarkChangeLatencyLeaveJoin(b *testing.B) {
	changeLatency(b, func(i int, reg **Registration, cfg RegistrationConfig) error {
		if i%2 == 0 {
			return (*reg).Stop()
		}
		(*reg).Close()
		r, err := Register(context.Background(), cfg)
		if err == nil {
			*reg = r
		}
		return err
	})
}
