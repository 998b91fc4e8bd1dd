package registry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// server returns the gRPC and gossip addresses of a running
// registry-server, or skips the test.
func server(t *testing.T) (string, string) {
	addr, gossip := os.Getenv("REGISTRY_ADDR"), os.Getenv("REGISTRY_GOSSIP_ADDR")
	if addr == "" || gossip == "" {
		t.Skip("SKIP: set REGISTRY_ADDR and REGISTRY_GOSSIP_ADDR to test against a registry-server")
	}
	return addr, gossip
}

// eventually polls cond for up to 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestRegistrationBadInput(t *testing.T) {
	_, err := Register(context.Background(), RegistrationConfig{Group: "g", Addr: "a:1"})
	wantErr(t, "no id", err, ErrInvalidArgument, "id is empty")
	_, err = Register(context.Background(), RegistrationConfig{ID: "x", Group: "g\xff", Addr: "a:1"})
	wantErr(t, "bad UTF-8", err, ErrInvalidArgument, "config.group is not valid UTF-8")
	_, err = Register(context.Background(), RegistrationConfig{ID: "x", Group: "g", Addr: "a:1", Weight: 1001})
	wantErr(t, "weight", err, ErrInvalidArgument, "weight 1001 is out of range")
	_, err = Register(context.Background(), RegistrationConfig{ID: "x", Group: "g", Addr: "a"})
	wantErr(t, "addr without port", err, ErrInvalidArgument, `addr "a" is not host:port: no port`)
	_, err = Register(context.Background(), RegistrationConfig{ID: "x", Group: "g", Addr: "a:1\nfake 10.6.6.6:1"})
	wantErr(t, "addr with a newline", err, ErrInvalidArgument, "addr contains a control character")
	_, err = Register(context.Background(), RegistrationConfig{ID: "x", Group: "g", Addr: "a:1", Tags: map[string]string{"zone": "a\x1b[2J"}})
	wantErr(t, "tag with an escape", err, ErrInvalidArgument, `tag "zone" contains a control character`)
	_, err = Register(context.Background(), RegistrationConfig{ID: "x", Group: "g", Addr: "a:1", Bind: "nowhere"})
	wantErr(t, "bind", err, ErrInvalidArgument, "config.bind")
	_, err = Register(context.Background(), RegistrationConfig{ID: "x", Group: "g", Addr: "a:1", EncryptKey: "zz"})
	wantErr(t, "key", err, ErrInvalidArgument, "config.encrypt_key")

	// Nothing answers at 127.0.0.1:1, yet it starts (and keeps retrying).
	r, err := Register(context.Background(), RegistrationConfig{ID: "x", Group: "g", Addr: "a:1", Registries: []string{"127.0.0.1:1"},
		Tags: map[string]string{"zone": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := r.Service()
	if err != nil || svc.ID != "x" || svc.Weight != 1 || svc.Tags["zone"] != "a" {
		t.Fatalf("Service() = %+v, %v", svc, err)
	}
	wantErr(t, "weight 0", r.SetWeight(0), ErrInvalidArgument, "weight 0 is out of range")
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "double stop", r.Stop(), ErrUnavailable, "the registration is stopped")
	wantErr(t, "update after stop", r.SetWeight(2), ErrUnavailable, "the registration is stopped")
	r.Close()
	r.Close()
	wantErr(t, "closed", r.Stop(), ErrInvalidArgument, "registration is closed")
}

// TestDuplicateIDIsRefused: a second live registration of an id, in
// another group, fails with ErrAlreadyExists naming the holder's address,
// and the holder keeps its place.
func TestDuplicateIDIsRefused(t *testing.T) {
	addr, gossip := server(t)
	c, err := NewClient(context.Background(), []string{addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const group, holder = "ffi-go-dup", "127.0.0.1:8201"
	first, err := Register(context.Background(), RegistrationConfig{ID: "go-dup", Group: group, Addr: holder, Registries: []string{gossip}})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	eventually(t, "the holder listed", func() bool {
		m, err := c.Members(context.Background(), group)
		return err == nil && len(m.Services) == 1
	})
	second, err := Register(context.Background(), RegistrationConfig{ID: "go-dup", Group: group + "-2", Addr: "127.0.0.1:8202",
		Registries: []string{gossip}})
	if err == nil {
		second.Close()
	}
	wantErr(t, "a second live go-dup", err, ErrAlreadyExists, "already registered by a live member at "+holder)
	m, err := c.Members(context.Background(), group)
	if err != nil || len(m.Services) != 1 || m.Services[0].Addr != holder {
		t.Fatalf("the holder lost its place: %+v, %v", m, err)
	}
}

func TestServer(t *testing.T) {
	addr, gossip := server(t)
	c, err := NewClient(context.Background(), []string{addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const group = "ffi-go"

	_, err = c.Match(context.Background(), "ffi-go-no-such-group", "k")
	wantErr(t, "unknown group", err, ErrNotFound, "ffi-go-no-such-group")

	view, err := c.Group(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	ids := []string{"go-1", "go-2", "go-3"}
	weights := []uint32{1, 2, 3}
	regs := make([]*Registration, len(ids))
	for i, id := range ids {
		regs[i], err = Register(context.Background(), RegistrationConfig{ID: id, Group: group, Addr: fmt.Sprintf("127.0.0.1:%d", 8101+i),
			Registries: []string{gossip}, Weight: weights[i], Tags: map[string]string{"zone": fmt.Sprintf("z%d", i+1)}})
		if err != nil {
			t.Fatal(err)
		}
		defer regs[i].Close()
	}
	eventually(t, "3 members in the view", func() bool {
		m, err := view.Members()
		return err == nil && len(m.Services) == 3
	})
	if !view.IsConnected() || view.Version() == 0 {
		t.Fatalf("view connected=%v version=%d", view.IsConnected(), view.Version())
	}
	if !regs[0].IsJoined() {
		t.Fatal("registration is not joined")
	}

	m, err := c.Members(context.Background(), group)
	if err != nil || len(m.Services) != 3 || m.Version == 0 {
		t.Fatalf("Members = %+v, %v", m, err)
	}
	for i, s := range m.Services {
		if s.ID != ids[i] || s.Weight != weights[i] || s.Group != group || s.Tags["zone"] != fmt.Sprintf("z%d", i+1) {
			t.Fatalf("member %d = %+v", i, s)
		}
	}
	groups, err := c.Groups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	want := ringChecksum(t, ids, weights)
	for _, g := range groups {
		found = found || (g.Name == group && g.Members == 3 && g.Version > 0 && g.Checksum == want)
	}
	if !found {
		t.Fatalf("Groups() = %+v lacks %s with checksum %016x", groups, group, want)
	}

	ring, err := NewRing(ids, weights)
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	if view.Checksum() != ring.Checksum() || ring.Checksum() != want {
		t.Fatalf("view checksum %016x, standalone ring %016x", view.Checksum(), ring.Checksum())
	}
	if m, err := c.Members(context.Background(), group); err != nil || m.Checksum != want {
		t.Fatalf("Members = %+v, %v: checksum is not %016x", m, err, want)
	}
	if m, err := view.Members(); err != nil || m.Checksum != want {
		t.Fatalf("view Members = %+v, %v: checksum is not %016x", m, err, want)
	}
	for i := 0; i < 2000; i++ {
		key := fmt.Sprintf("user-%d", i)
		local, err := view.Match(key)
		if err != nil {
			t.Fatal(err)
		}
		if owner, _ := ring.Locate(key); owner != local.ID {
			t.Fatalf("key %q: view %s, standalone ring %s", key, local.ID, owner)
		}
		if i < 300 {
			remote, err := c.Match(context.Background(), group, key)
			if err != nil || remote.ID != local.ID {
				t.Fatalf("key %q: view %s, registry %s (%v)", key, local.ID, remote.ID, err)
			}
			a, _ := view.MatchN(key, 3)
			b, _ := c.MatchN(context.Background(), group, key, 3)
			if len(a) != 3 || len(b) != 3 || a[0].ID != b[0].ID || a[1].ID != b[1].ID || a[2].ID != b[2].ID {
				t.Fatalf("key %q: MatchN view %v registry %v", key, a, b)
			}
		}
	}

	before := view.Version()
	if err := regs[0].SetWeight(5); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new weight in the view", func() bool {
		m, err := view.Members()
		return err == nil && len(m.Services) == 3 && m.Services[0].Weight == 5
	})
	if view.Version() <= before {
		t.Fatalf("version did not grow: %d → %d", before, view.Version())
	}
	heavier := ringChecksum(t, ids, []uint32{5, 2, 3})
	if view.Checksum() != heavier || heavier == want {
		t.Fatalf("after the weight change the view's checksum is %016x, want %016x", view.Checksum(), heavier)
	}
	if err := regs[1].SetAddr("127.0.0.1:9102"); err != nil {
		t.Fatal(err)
	}
	if err := regs[1].SetTags(map[string]string{"tier": "gold"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new addr and tags in the view", func() bool {
		m, err := view.Members()
		return err == nil && len(m.Services) == 3 && m.Services[1].Addr == "127.0.0.1:9102" &&
			m.Services[1].Tags["tier"] == "gold" && len(m.Services[1].Tags) == 1
	})
	for i := 0; ; i++ { // Match answers from the updated snapshot too
		s, err := view.Match(fmt.Sprintf("user-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if s.ID == "go-2" {
			if s.Addr != "127.0.0.1:9102" || s.Tags["tier"] != "gold" {
				t.Fatalf("Match after the update: %+v", s)
			}
			s.Tags["tier"] = "changed" // the caller's own copy
			if again, _ := view.Match(fmt.Sprintf("user-%d", i)); again.Tags["tier"] != "gold" {
				t.Fatal("a caller's change to Tags leaked into the view")
			}
			break
		}
	}
	if err := regs[2].Stop(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stopped member gone", func() bool {
		m, err := view.Members()
		return err == nil && len(m.Services) == 2
	})
	wantErr(t, "double stop", regs[2].Stop(), ErrUnavailable, "the registration is stopped")
	regs[0].Close()
	regs[1].Close()
	eventually(t, "an empty group", func() bool {
		m, err := view.Members()
		return err == nil && len(m.Services) == 0
	})
	_, err = view.Match("k")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Match on an empty group: %v", err)
	}
}

// TestRingVectorsView: the shared vectors through a local view; each small
// case's members register in their own group.
func TestRingVectorsView(t *testing.T) {
	addr, gossip := server(t)
	v := readVectors(t)
	c, err := NewClient(context.Background(), []string{addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checked, used := 0, 0
	for ci, cs := range v.Cases {
		if len(cs.Members) == 0 || len(cs.Members) > 16 {
			continue // keep the cluster small
		}
		group := fmt.Sprintf("ffi-go-vectors-%d", ci)
		view, err := c.Group(context.Background(), group)
		if err != nil {
			t.Fatal(err)
		}
		var regs []*Registration
		for _, m := range cs.Members {
			r, err := Register(context.Background(), RegistrationConfig{ID: m.ID, Group: group, Addr: "127.0.0.1:1",
				Registries: []string{gossip}, Weight: m.Weight})
			if err != nil {
				t.Fatal(err)
			}
			regs = append(regs, r)
		}
		eventually(t, group+" complete in the view", func() bool {
			m, err := view.Members()
			return err == nil && len(m.Services) == len(cs.Members)
		})
		if got := fmt.Sprintf("%016x", view.Checksum()); got != cs.Checksum {
			t.Errorf("case %d: view checksum %s, want %s", ci, got, cs.Checksum)
		}
		for _, k := range cs.Keys {
			got, err := view.Match(k.Key)
			if err != nil || got.ID != k.Owner {
				t.Errorf("case %d key %q: view gives %q (%v), want %q", ci, k.Key, got.ID, err, k.Owner)
			}
			top, err := view.MatchN(k.Key, cs.N)
			ids := make([]string, len(top))
			for i, s := range top {
				ids[i] = s.ID
			}
			if err != nil || strings.Join(ids, "\x00") != strings.Join(k.Top, "\x00") {
				t.Errorf("case %d key %q: view MatchN gives %q (%v), want %q", ci, k.Key, ids, err, k.Top)
			}
			checked++
		}
		for _, r := range regs {
			r.Close()
		}
		view.Close()
		used++
	}
	if used == 0 {
		t.Fatal("no vectors case small enough to register")
	}
	t.Logf("%d keys of %d case(s) checked through a local view", checked, used)
}

// TestDrainingMemberOwnsNoKeys: a draining member stays listed (Draining
// set) and owns no keys, on the registry and in a view; only its keys move;
// serving again restores exactly the owners it had.
func TestDrainingMemberOwnsNoKeys(t *testing.T) {
	addr, gossip := server(t)
	c, err := NewClient(context.Background(), []string{addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const group = "ffi-go-drain"
	view, err := c.Group(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	regs := make([]*Registration, 3)
	for i := range regs {
		regs[i], err = Register(context.Background(), RegistrationConfig{ID: fmt.Sprintf("gd-%d", i+1), Group: group,
			Addr: fmt.Sprintf("127.0.0.1:%d", 8301+i), Registries: []string{gossip}})
		if err != nil {
			t.Fatal(err)
		}
		defer regs[i].Close()
	}
	drainingIs := func(want bool) func() bool {
		return func() bool {
			m, err := view.Members()
			return err == nil && len(m.Services) == 3 && m.Services[1].ID == "gd-2" && m.Services[1].Draining == want
		}
	}
	owners := func() []string {
		out := make([]string, 400)
		for i := range out {
			key := fmt.Sprintf("user-%d", i)
			local, err := view.Match(key)
			if err != nil {
				t.Fatal(err)
			}
			remote, err := c.Match(context.Background(), group, key)
			if err != nil || remote.ID != local.ID {
				t.Fatalf("key %q: view %s, registry %s (%v)", key, local.ID, remote.ID, err)
			}
			out[i] = local.ID
		}
		return out
	}
	viewRing := func() *Ring {
		r, err := view.Ring()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	eventually(t, "3 serving members", drainingIs(false))
	ringBefore := viewRing()
	before, serving := owners(), view.Checksum()
	for i, owner := range before {
		to, forward, err := view.Route(fmt.Sprintf("user-%d", i), "gd-2")
		if err != nil || forward != (owner != "gd-2") || to.ID != owner {
			t.Fatalf("Route(user-%d, gd-2) = %s, %v, %v; owner %s", i, to.ID, forward, err, owner)
		}
	}

	if err := regs[1].SetDraining(true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "gd-2 draining in the view", drainingIs(true))
	m, err := c.Members(context.Background(), group)
	if err != nil || len(m.Services) != 3 || !m.Services[1].Draining || m.Services[0].Draining {
		t.Fatalf("registry Members = %+v, %v", m, err)
	}
	ringAfter := viewRing()
	after, moved := owners(), 0
	for i := range after {
		switch {
		case after[i] == "gd-2":
			t.Fatalf("key user-%d is owned by the draining member", i)
		case before[i] == "gd-2":
			moved++
		case before[i] != after[i]:
			t.Fatalf("key user-%d moved %s → %s though its owner serves", i, before[i], after[i])
		}
	}
	if moved == 0 || view.Checksum() == serving {
		t.Fatalf("moved %d keys; checksum %016x (serving %016x)", moved, view.Checksum(), serving)
	}
	for i, owner := range after { // handle-or-forward: the draining member forwards every key
		to, forward, err := view.Route(fmt.Sprintf("user-%d", i), "gd-2")
		if err != nil || !forward || to.ID != owner {
			t.Fatalf("Route(user-%d, gd-2) while draining = %s, %v, %v; want forward to %s", i, to.ID, forward, err, owner)
		}
	}
	n, err := view.MatchN("user-1", 3)
	if err != nil || len(n) != 2 || n[0].ID == "gd-2" || n[1].ID == "gd-2" {
		t.Fatalf("MatchN while draining = %+v, %v", n, err)
	}
	checkViewRingMoves(t, ringBefore, ringAfter, serving, view.Checksum(), before, after)

	if err := regs[1].SetDraining(false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "gd-2 serving again", drainingIs(false))
	back := owners()
	for i := range back {
		if back[i] != before[i] {
			t.Fatalf("key user-%d: %s before draining, %s after serving again", i, before[i], back[i])
		}
	}
	if view.Checksum() != serving {
		t.Fatalf("checksum %016x after serving again, want %016x", view.Checksum(), serving)
	}
	none, err := ringBefore.MovesTo(viewRing()) // serving again gives back exactly its keys
	if err != nil || len(none.Ranges) != 0 {
		t.Fatalf("moves from before the drain to after serving again: %v ranges, %v", len(none.Ranges), err)
	}
	none.Close()
}

// checkViewRingMoves: the view's rings taken before and after gd-2 drained
// are snapshots (checksums and owners of their time), and what moved
// between them is the drain, for the keys the view and the registry
// answered (was, now) and for 3,000 keys more from the rings.
func checkViewRingMoves(t *testing.T, before, after *Ring, serving, draining uint64, was, now []string) {
	t.Helper()
	if before.Checksum() != serving || after.Checksum() != draining || before.Len() != 3 || after.Len() != 3 {
		t.Fatalf("view rings: checksums %016x, %016x (want %016x, %016x), %d and %d members",
			before.Checksum(), after.Checksum(), serving, draining, before.Len(), after.Len())
	}
	ringWas, ringNow := ringOwners(t, before, 3000), ringOwners(t, after, 3000)
	for i := range was {
		if ringWas[i] != was[i] || ringNow[i] != now[i] {
			t.Fatalf("user-%d: the view rings give %s then %s, the view %s then %s", i, ringWas[i], ringNow[i], was[i], now[i])
		}
	}
	m, err := before.MovesTo(after)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	checkDrainMoves(t, m, "gd-2", was, now)
	checkDrainMoves(t, m, "gd-2", ringWas, ringNow)
}

// Changes delivers one ViewChange per change, with the versions, checksums
// and moves around it, none while nothing changes, and is closed by Close.
func TestViewChanges(t *testing.T) {
	addr, gossip := server(t)
	c, err := NewClient(context.Background(), []string{addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const group = "ffi-go-changes"
	r1, err := Register(context.Background(), RegistrationConfig{ID: "ch-1", Group: group, Addr: "127.0.0.1:8311", Registries: []string{gossip}})
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	view, err := c.Group(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	eventually(t, "ch-1 in the view", func() bool {
		m, err := view.Members()
		return err == nil && len(m.Services) == 1
	})
	before, beforeSum := view.Version(), view.Checksum()
	changes, err := view.Changes()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-changes:
		t.Fatalf("a change with nothing changed: %+v", ev)
	case <-time.After(300 * time.Millisecond):
	}
	r2, err := Register(context.Background(), RegistrationConfig{ID: "ch-2", Group: group, Addr: "127.0.0.1:8312", Registries: []string{gossip}})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	var ev ViewChange
	select {
	case ev = <-changes:
	case <-time.After(10 * time.Second):
		t.Fatal("no change within 10 s of a join")
	}
	if ev.OldVersion != before || ev.NewVersion <= before || ev.OldChecksum != beforeSum ||
		ev.NewChecksum != view.Checksum() || ev.NewChecksum == ev.OldChecksum {
		t.Fatalf("change %+v; view before: version %d checksum %x", ev, before, beforeSum)
	}
	if ev.Moves == nil || len(ev.Moves.GainedBy("ch-2")) == 0 || len(ev.Moves.LostBy("ch-2")) != 0 {
		t.Fatalf("moves of the join: %+v", ev.Moves)
	}
	select {
	case again := <-changes:
		t.Fatalf("a second change for one join: %+v", again)
	case <-time.After(500 * time.Millisecond):
	}
	view.Close()
	select {
	case _, open := <-changes:
		if open {
			t.Fatal("a change after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the channel is still open 5 s after Close")
	}
}
