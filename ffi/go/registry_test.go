package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// unreachable is a client for an address where nothing listens.
func unreachable(t *testing.T) *Client {
	t.Helper()
	c, err := NewClient(context.Background(), []string{"127.0.0.1:1"}, &ClientOptions{
		ConnectTimeout:      500 * time.Millisecond,
		RequestTimeout:      time.Second,
		Attempts:            1,
		MaxBackoff:          10 * time.Millisecond,
		NoRegistryDiscovery: true,
	})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantErr fails unless err is of kind `kind` and its message contains msg.
func wantErr(t *testing.T, what string, err error, kind error, msg string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: got no error, want %v", what, kind)
		return
	}
	if !errors.Is(err, kind) {
		t.Errorf("%s: got %v, want kind %v", what, err, kind)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("%s: message %q does not contain %q", what, err.Error(), msg)
	}
}

func TestVersion(t *testing.T) {
	if v := Version(); !strings.Contains(v, ".") {
		t.Fatalf("Version() = %q", v)
	}
}

func TestErrorKinds(t *testing.T) {
	err := error(&Error{Code: CodeNotFound, Message: "x: not found: y"})
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
		t.Fatal("errors.Is must compare kinds")
	}
	wrapped := fmt.Errorf("routing: %w", err)
	if !errors.Is(wrapped, ErrNotFound) {
		t.Fatal("errors.Is must see through wrapping")
	}
	var e *Error
	if !errors.As(wrapped, &e) || e.Code != CodeNotFound || e.Code.String() != "not found" {
		t.Fatalf("errors.As: %+v", e)
	}
	if ErrTimeout.Error() != "registry: timeout" {
		t.Fatalf("sentinel message: %q", ErrTimeout.Error())
	}
}

func TestClientBadInput(t *testing.T) {
	_, err := NewClient(context.Background(), nil, nil)
	wantErr(t, "no address", err, ErrInvalidArgument, "no registry address given")
	_, err = NewClient(context.Background(), []string{"127.0.0.1:\xff"}, nil)
	wantErr(t, "bad UTF-8", err, ErrInvalidArgument, "registries[0] is not valid UTF-8")
	_, err = NewClient(context.Background(), []string{"exa mple:: /x"}, nil)
	wantErr(t, "malformed", err, ErrInvalidArgument, "bad registry address")

	c := unreachable(t)
	_, err = c.Match(context.Background(), "", "k")
	wantErr(t, "empty group", err, ErrInvalidArgument, "group is empty")
	_, err = c.Match(context.Background(), "g", "")
	wantErr(t, "empty key", err, ErrInvalidArgument, "key is empty")
	_, err = c.Match(context.Background(), "g\xff", "k")
	wantErr(t, "bad UTF-8 group", err, ErrInvalidArgument, "group is not valid UTF-8")
	_, err = c.MatchN(context.Background(), "g", "k", 0)
	wantErr(t, "n = 0", err, ErrInvalidArgument, "n must be at least 1")

	_, err = c.Match(context.Background(), "g", "k")
	wantErr(t, "unreachable Match", err, ErrUnavailable, "no registry reachable: tried 127.0.0.1:1 (connection refused)")
	_, err = c.MatchN(context.Background(), "g", "k", 2)
	wantErr(t, "unreachable MatchN", err, ErrUnavailable, "no registry reachable: tried 127.0.0.1:1 (connection refused)")
	_, err = c.Members(context.Background(), "g")
	wantErr(t, "unreachable Members", err, ErrUnavailable, "no registry reachable: tried 127.0.0.1:1 (connection refused)")
	_, err = c.Groups(context.Background())
	wantErr(t, "unreachable Groups", err, ErrUnavailable, "no registry reachable: tried 127.0.0.1:1 (connection refused)")
	_, err = c.Group(context.Background(), "g")
	wantErr(t, "unreachable Group", err, ErrUnavailable, "no registry sent a snapshot")

	c.Close()
	c.Close() // twice is harmless
	_, err = c.Match(context.Background(), "g", "k")
	wantErr(t, "closed", err, ErrInvalidArgument, "client is closed")
	_, err = c.Group(context.Background(), "g")
	wantErr(t, "closed Group", err, ErrInvalidArgument, "client is closed")
}

func TestRingBadInput(t *testing.T) {
	_, err := NewRing([]string{"a", "a"}, nil)
	wantErr(t, "duplicate", err, ErrInvalidArgument, `duplicate id "a"`)
	_, err = NewRing([]string{"a", "\xe2\x82"}, nil)
	wantErr(t, "bad UTF-8 id", err, ErrInvalidArgument, "ids[1] is not valid UTF-8")
	_, err = NewRing([]string{"a", ""}, nil)
	wantErr(t, "empty id", err, ErrInvalidArgument, "ids[1] is empty")
	_, err = NewRing([]string{"a", "b"}, []uint32{1, 0})
	wantErr(t, "weight 0", err, ErrInvalidArgument, "weights[1]: weight 0 is out of range")
	_, err = NewRing([]string{"a", "b"}, []uint32{1})
	wantErr(t, "short weights", err, ErrInvalidArgument, "differ in length")

	empty, err := NewRing(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = empty.Locate("k")
	wantErr(t, "empty ring", err, ErrNotFound, "the ring has no members")
	empty.Close()

	r, err := NewRing([]string{"a", "b", "c"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 3 {
		t.Fatalf("Len = %d", r.Len())
	}
	_, err = r.Locate("")
	wantErr(t, "empty key", err, ErrInvalidArgument, "key is empty")
	_, err = r.Locate("\xff")
	wantErr(t, "bad UTF-8 key", err, ErrInvalidArgument, "key is not valid UTF-8")
	_, err = r.LocateN("k", 0)
	wantErr(t, "n = 0", err, ErrInvalidArgument, "n must be at least 1")
	r.Close()
	r.Close()
	_, err = r.Locate("k")
	wantErr(t, "closed", err, ErrInvalidArgument, "ring is closed")
	if r.Len() != 0 {
		t.Fatal("closed ring has members")
	}
}

func TestRingSemantics(t *testing.T) {
	ids := []string{"c", "a", "b", "d"}
	r, err := NewRing(ids, []uint32{1, 2, 3, 4})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	counts := map[string]int{}
	for i := 0; i < 4000; i++ {
		key := fmt.Sprintf("user-%d", i)
		id, err := r.Locate(key)
		if err != nil {
			t.Fatal(err)
		}
		all, err := r.LocateN(key, 8)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 4 || all[0] != id {
			t.Fatalf("LocateN(%q, 8) = %v, Locate = %q", key, all, id)
		}
		seen := map[string]bool{}
		for _, x := range all {
			if seen[x] {
				t.Fatalf("LocateN(%q) repeats %q", key, x)
			}
			seen[x] = true
		}
		counts[id]++
	}
	if counts["c"] >= counts["d"] {
		t.Fatalf("weight 1 owns %d keys, weight 4 owns %d", counts["c"], counts["d"])
	}
	// Concurrent lookups agree with sequential ones.
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				key := fmt.Sprintf("user-%d", i)
				a, _ := r.Locate(key)
				b, _ := r.LocateN(key, 1)
				if len(b) != 1 || a != b[0] {
					t.Errorf("concurrent lookups disagree on %q", key)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// vectorsFile is the shared ring vectors file.
func vectorsFile() string {
	if p := os.Getenv("REGISTRY_VECTORS"); p != "" {
		return p
	}
	return filepath.Join("..", "..", "tests", "vectors", "ring.json")
}

// ringVectors is tests/vectors/ring.json (format: tests/vectors/README.md).
type ringVectors struct {
	Algorithm string `json:"algorithm"`
	Cases     []struct {
		Name     string         `json:"name"`
		Members  []vectorMember `json:"members"`
		Checksum string         `json:"checksum"`
		N        int            `json:"n"`
		Keys     []struct {
			Key   string   `json:"key"`
			Owner string   `json:"owner"`
			Top   []string `json:"top"`
		} `json:"keys"`
	} `json:"cases"`
	Errors []struct {
		Name    string         `json:"name"`
		Members []vectorMember `json:"members"`
		Key     string         `json:"key"`
		N       int            `json:"n"`
		Error   string         `json:"error"`
	} `json:"errors"`
}

// vectorMember is one {id, weight} of a vectors member set.
type vectorMember struct {
	ID     string `json:"id"`
	Weight uint32 `json:"weight"`
}

func vectorRing(members []vectorMember) (*Ring, error) {
	ids := make([]string, len(members))
	weights := make([]uint32, len(members))
	for i, m := range members {
		ids[i], weights[i] = m.ID, m.Weight
	}
	return NewRing(ids, weights)
}

// readVectors loads the vectors file or skips the test.
func readVectors(t *testing.T) ringVectors {
	data, err := os.ReadFile(vectorsFile())
	if err != nil {
		t.Skipf("SKIP: no vectors file: %v (set REGISTRY_VECTORS)", err)
	}
	var v ringVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("vectors file: %v", err)
	}
	if len(v.Cases) == 0 || len(v.Errors) == 0 {
		t.Fatal("vectors file has no cases or no error cases")
	}
	if v.Algorithm != RingAlgorithm() {
		t.Fatalf("vectors are for ring %q, the library has %q", v.Algorithm, RingAlgorithm())
	}
	return v
}

func TestRingVectors(t *testing.T) {
	v := readVectors(t)
	checked := 0
	for _, c := range v.Cases {
		r, err := vectorRing(c.Members)
		if err != nil {
			t.Fatalf("case %s: %v", c.Name, err)
		}
		if got := fmt.Sprintf("%016x", r.Checksum()); got != c.Checksum {
			t.Errorf("case %s: checksum %s, want %s", c.Name, got, c.Checksum)
		}
		for _, k := range c.Keys {
			got, err := r.Locate(k.Key)
			if err != nil || got != k.Owner {
				t.Errorf("case %s key %q: got %q (%v), want %q", c.Name, k.Key, got, err, k.Owner)
			}
			top, err := r.LocateN(k.Key, c.N)
			if err != nil || strings.Join(top, "\x00") != strings.Join(k.Top, "\x00") {
				t.Errorf("case %s key %q: LocateN got %q (%v), want %q", c.Name, k.Key, top, err, k.Top)
			}
			checked++
		}
		r.Close()
	}
	kinds := map[string]error{"invalid_argument": ErrInvalidArgument, "not_found": ErrNotFound}
	for _, e := range v.Errors {
		r, err := vectorRing(e.Members)
		if err == nil {
			_, err = r.LocateN(e.Key, e.N)
			r.Close()
		}
		if want, ok := kinds[e.Error]; e.Error == "ok" && err != nil || e.Error != "ok" && (!ok || !errors.Is(err, want)) {
			t.Errorf("error case %q: got %v, want %s", e.Name, err, e.Error)
		}
	}
	t.Logf("%d keys and %d error cases checked against %s", checked, len(v.Errors), vectorsFile())
}

// ringChecksum is the checksum of a new ring of ids and weights.
func ringChecksum(t *testing.T, ids []string, weights []uint32) uint64 {
	t.Helper()
	r, err := NewRing(ids, weights)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return r.Checksum()
}

func TestRingChecksum(t *testing.T) {
	two := ringChecksum(t, []string{"a", "b"}, nil)
	if two == 0 || ringChecksum(t, []string{"b", "a"}, []uint32{1, 1}) != two {
		t.Fatalf("the order or explicit weight 1 changed the checksum %016x", two)
	}
	for name, other := range map[string]uint64{
		"a join":          ringChecksum(t, []string{"a", "b", "c"}, nil),
		"a leave":         ringChecksum(t, []string{"a"}, nil),
		"a weight change": ringChecksum(t, []string{"a", "b"}, []uint32{1, 2}),
	} {
		if other == two {
			t.Errorf("%s kept the checksum %016x", name, two)
		}
	}
	r, _ := NewRing([]string{"a"}, nil)
	r.Close()
	if r.Checksum() != 0 {
		t.Fatal("a closed ring has checksum 0")
	}
}
