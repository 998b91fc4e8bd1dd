package registry

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestMovesBadInput(t *testing.T) {
	_, err := NewRingWithStates([]string{"a", "b"}, nil, []bool{true})
	wantErr(t, "short draining", err, ErrInvalidArgument, "draining and ids differ in length")
	_, err = NewRingWithStates([]string{"a", "\xff"}, nil, []bool{false, true})
	wantErr(t, "bad UTF-8 id", err, ErrInvalidArgument, "ids[1] is not valid UTF-8")
	_, err = NewRingWithStates([]string{"a", "b"}, []uint32{1, 0}, []bool{false, true})
	wantErr(t, "weight 0", err, ErrInvalidArgument, "weights[1]: weight 0 is out of range")

	old, err := NewRing([]string{"a", "b", "c"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	_, err = old.MovesTo(nil)
	wantErr(t, "nil ring", err, ErrInvalidArgument, "newer ring is nil")
	drained, err := NewRingWithStates([]string{"a", "b", "c"}, nil, []bool{false, true, false})
	if err != nil {
		t.Fatal(err)
	}
	m, err := old.MovesTo(drained)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = m.OfKey("")
	wantErr(t, "empty key", err, ErrInvalidArgument, "moves of key: invalid argument: key is empty")
	_, _, err = m.OfKey("\xc3\x28")
	wantErr(t, "bad UTF-8 key", err, ErrInvalidArgument, "key is not valid UTF-8")
	if m.LostBy("") != nil || m.GainedBy("") != nil || len(m.LostBy("b")) != len(m.Ranges) {
		t.Fatalf("LostBy/GainedBy: %d ranges, %d lost by b", len(m.Ranges), len(m.LostBy("b")))
	}
	n := len(m.Ranges)
	m.Close()
	m.Close() // twice is harmless
	_, _, err = m.OfKey("k")
	wantErr(t, "closed moves", err, ErrInvalidArgument, "moves is closed")
	if len(m.Ranges) != n || n == 0 {
		t.Fatalf("Ranges after Close: %d, before %d", len(m.Ranges), n)
	}
	drained.Close()
	_, err = old.MovesTo(drained)
	wantErr(t, "closed ring", err, ErrInvalidArgument, "ring is closed")
}

// ringOwners is the owner in r of "user-0".."user-(n-1)".
func ringOwners(t *testing.T, r *Ring, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		id, err := r.Locate(fmt.Sprintf("user-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = id
	}
	return out
}

// checkDrainMoves: every range moved from drained to another member, the
// ranges are sorted and disjoint, LostBy(drained) covers every moved
// position, and "user-<i>" moved iff its owner changed, from was[i] to
// now[i].
func checkDrainMoves(t *testing.T, m *Moves, drained string, was, now []string) {
	t.Helper()
	if len(m.Ranges) == 0 {
		t.Fatal("nothing moved")
	}
	var lost uint64
	for i, r := range m.Ranges {
		if r.From != drained || r.To == "" || r.To == drained || r.First > r.Last || i > 0 && m.Ranges[i-1].Last >= r.First {
			t.Fatalf("range %d: %+v, after %d ranges", i, r, i)
		}
	}
	for _, r := range m.LostBy(drained) {
		lost += r.Positions()
	}
	if lost != m.Positions() || len(m.GainedBy(drained)) != 0 {
		t.Fatalf("lost by %s: %d positions of %d moved; gained %d ranges", drained, lost, m.Positions(), len(m.GainedBy(drained)))
	}
	moved := 0
	for i := range was {
		key := fmt.Sprintf("user-%d", i)
		r, ok, err := m.OfKey(key)
		if err != nil || ok != (was[i] != now[i]) || ok && (r.From != was[i] || r.To != now[i]) {
			t.Fatalf("OfKey(%q) = %+v, %v, %v; owner %s then %s", key, r, ok, err, was[i], now[i])
		}
		if ok {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no key moved")
	}
}

// TestMovesOfADrain: on standalone rings, a draining member is listed and
// owns no key; only its keys move; Ranges outlive the rings.
func TestMovesOfADrain(t *testing.T) {
	ids := []string{"a", "b", "c"}
	old, err := NewRing(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	drained, err := NewRingWithStates(ids, nil, []bool{false, true, false})
	if err != nil {
		t.Fatal(err)
	}
	serving, err := NewRingWithStates(ids, []uint32{1, 1, 1}, []bool{false, false, false})
	if err != nil {
		t.Fatal(err)
	}
	if drained.Len() != 3 || serving.Checksum() != old.Checksum() || drained.Checksum() == old.Checksum() {
		t.Fatalf("len %d; checksums %x %x %x", drained.Len(), old.Checksum(), serving.Checksum(), drained.Checksum())
	}
	const keys = 3000
	was, now := ringOwners(t, old, keys), ringOwners(t, drained, keys)
	m, err := old.MovesTo(drained)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	same, err := serving.MovesTo(old)
	if err != nil || len(same.Ranges) != 0 || same.Fraction() != 0 {
		t.Fatalf("serving → old: %+v, %v", same, err)
	}
	same.Close()
	self, err := old.MovesTo(old)
	if err != nil || len(self.Ranges) != 0 {
		t.Fatalf("old → old: %v", err)
	}
	self.Close()
	old.Close()
	drained.Close()
	serving.Close()
	checkDrainMoves(t, m, "b", was, now)
	if f := m.Fraction(); f < 0.2 || f > 0.5 {
		t.Fatalf("a third of the keys should move, moved %.3f", f)
	}

	all, err := NewRingWithStates(ids, nil, []bool{true, true, true})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	_, err = all.Locate("k")
	wantErr(t, "all draining", err, ErrNotFound, "")
	empty, err := NewRing(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	none, err := empty.MovesTo(all)
	if err != nil || len(none.Ranges) != 0 {
		t.Fatalf("no member to all draining: %+v, %v", none, err)
	}
	none.Close()
	ac, err := NewRingWithStates(ids, nil, []bool{false, true, false})
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	up, err := empty.MovesTo(ac)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	if up.Positions() != 1<<32 || up.Ranges[0].From != "" || up.Ranges[0].First != 0 || len(up.GainedBy("b")) != 0 {
		t.Fatalf("no member to a, c: %d positions, first %+v", up.Positions(), up.Ranges[0])
	}
}

// movesVectors is tests/vectors/moves.json (format: tests/vectors/README.md).
type movesVectors struct {
	Algorithm string `json:"algorithm"`
	Cases     []struct {
		Name      string        `json:"name"`
		Old       []stateMember `json:"old"`
		New       []stateMember `json:"new"`
		Ranges    int           `json:"ranges"`
		Positions uint64        `json:"positions"`
		Pairs     []struct {
			From      *string `json:"from"`
			To        *string `json:"to"`
			Ranges    int     `json:"ranges"`
			Positions uint64  `json:"positions"`
		} `json:"pairs"`
		Head []vectorRange `json:"head"`
		Tail []vectorRange `json:"tail"`
		Keys []struct {
			Key      string  `json:"key"`
			Position uint32  `json:"position"`
			Moved    bool    `json:"moved"`
			From     *string `json:"from"`
			To       *string `json:"to"`
		} `json:"keys"`
	} `json:"cases"`
}

// stateMember is one {id, weight, draining} of a moves vectors ring.
type stateMember struct {
	ID       string `json:"id"`
	Weight   uint32 `json:"weight"`
	Draining bool   `json:"draining"`
}

// vectorRange is one {first, last, from, to} of the moves vectors.
type vectorRange struct {
	First uint32  `json:"first"`
	Last  uint32  `json:"last"`
	From  *string `json:"from"`
	To    *string `json:"to"`
}

// owner is a vectors owner as Moves gives it: "" for null.
func owner(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// moved is the range as Moves gives it.
func (v vectorRange) moved() MovedRange {
	return MovedRange{First: v.First, Last: v.Last, From: owner(v.From), To: owner(v.To)}
}

// stateRing builds the ring of a moves vectors member set.
func stateRing(members []stateMember) (*Ring, error) {
	ids := make([]string, len(members))
	weights := make([]uint32, len(members))
	draining := make([]bool, len(members))
	for i, m := range members {
		ids[i], weights[i], draining[i] = m.ID, m.Weight, m.Draining
	}
	return NewRingWithStates(ids, weights, draining)
}

func TestMovesVectors(t *testing.T) {
	path := filepath.Join(filepath.Dir(vectorsFile()), "moves.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("SKIP: no moves vectors file: %v (it is read next to REGISTRY_VECTORS)", err)
	}
	var v movesVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("moves vectors file: %v", err)
	}
	if len(v.Cases) == 0 || v.Algorithm != RingAlgorithm() {
		t.Fatalf("%d cases for ring %q; the library has %q", len(v.Cases), v.Algorithm, RingAlgorithm())
	}
	keys := 0
	for _, c := range v.Cases {
		old, err := stateRing(c.Old)
		if err != nil {
			t.Fatalf("case %s: %v", c.Name, err)
		}
		newer, err := stateRing(c.New)
		if err != nil {
			t.Fatalf("case %s: %v", c.Name, err)
		}
		m, err := old.MovesTo(newer)
		old.Close()
		newer.Close()
		if err != nil {
			t.Fatalf("case %s: %v", c.Name, err)
		}
		got := m.Ranges
		if len(got) != c.Ranges || m.Positions() != c.Positions {
			t.Errorf("case %s: %d ranges of %d positions, want %d of %d", c.Name, len(got), m.Positions(), c.Ranges, c.Positions)
		}
		if want := float64(c.Positions) / (1 << 32); math.Abs(m.Fraction()-want) > 1e-12 {
			t.Errorf("case %s: fraction %v, want %v", c.Name, m.Fraction(), want)
		}
		paired := 0
		for _, p := range c.Pairs {
			n, positions := 0, uint64(0)
			for _, r := range got {
				if r.From == owner(p.From) && r.To == owner(p.To) {
					n++
					positions += r.Positions()
				}
			}
			if n != p.Ranges || positions != p.Positions {
				t.Errorf("case %s pair %q → %q: %d ranges of %d positions, want %d of %d",
					c.Name, owner(p.From), owner(p.To), n, positions, p.Ranges, p.Positions)
			}
			if p.From != nil && p.To != nil && len(m.LostBy(*p.From)) < n {
				t.Errorf("case %s: LostBy(%s) misses ranges to %s", c.Name, *p.From, *p.To)
			}
			paired += n
		}
		if paired != len(got) {
			t.Errorf("case %s: %d ranges outside the listed pairs", c.Name, len(got)-paired)
		}
		if len(got) >= len(c.Head) && len(got) >= len(c.Tail) {
			for i, w := range c.Head {
				if got[i] != w.moved() {
					t.Errorf("case %s head %d: %+v, want %+v", c.Name, i, got[i], w.moved())
				}
			}
			for i, w := range c.Tail {
				if r := got[len(got)-len(c.Tail)+i]; r != w.moved() {
					t.Errorf("case %s tail %d: %+v, want %+v", c.Name, i, r, w.moved())
				}
			}
		}
		for _, k := range c.Keys {
			r, moved, err := m.OfKey(k.Key)
			want := MovedRange{From: owner(k.From), To: owner(k.To)}
			if err != nil || moved != k.Moved || moved && (r.From != want.From || r.To != want.To ||
				k.Position < r.First || k.Position > r.Last) || !moved && r != (MovedRange{}) {
				t.Errorf("case %s key %q: %+v, %v, %v; want moved %v %q → %q at %d",
					c.Name, k.Key, r, moved, err, k.Moved, want.From, want.To, k.Position)
			}
			keys++
		}
		m.Close()
	}
	t.Logf("%d cases and %d keys checked against %s", len(v.Cases), keys, path)
}
