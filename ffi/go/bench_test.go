package registry

import (
	"fmt"
	"os"
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

// BenchmarkViewMatch: local view of group $REGISTRY_BENCH_GROUP on the
// registry at $REGISTRY_ADDR, one goroutine.
func BenchmarkViewMatch(b *testing.B) {
	addr, group := os.Getenv("REGISTRY_ADDR"), os.Getenv("REGISTRY_BENCH_GROUP")
	if addr == "" || group == "" {
		b.Skip("set REGISTRY_ADDR and REGISTRY_BENCH_GROUP to a group with members")
	}
	c, err := NewClient([]string{addr}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	v, err := c.Group(group)
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	m, err := v.Members()
	if err != nil || len(m.Services) == 0 {
		b.Fatalf("group %q has no members (%v)", group, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := v.Match(benchKeys[i&(len(benchKeys)-1)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	b.ReportMetric(float64(len(m.Services)), "members")
}
