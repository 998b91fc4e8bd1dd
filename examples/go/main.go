// Command registry-example registers service instances (optional, with -j
// and -s), then discovers the instances of the group and routes keys to
// them from Go: it prints the group's members, follows the
// group with a local view, assigns user ids with no round trip, and checks
// a few answers against the registry's own Match. Without a reachable
// registry it still shows the standalone ring, then says so and exits 2.
//
//	go run . -r 127.0.0.1:9800 -g web -n 1000 -j 127.0.0.1:7370 -s web-1=127.0.0.1:8081
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	registry "github.com/registry-dev/registry/ffi/go"
)

// addrs collects repeated -r flags.
type addrs []string

func (a *addrs) String() string     { return strings.Join(*a, ",") }
func (a *addrs) Set(v string) error { *a = append(*a, v); return nil }

func main() {
	var registries addrs
	flag.Var(&registries, "r", "registry address host:port (repeatable; default 127.0.0.1:9800)")
	group := flag.String("g", "web", "service group")
	keys := flag.Int("n", 1000, "user ids to assign")
	gossip := flag.String("j", "", "registry gossip address to register through")
	var services addrs
	flag.Var(&services, "s", "register a service instance id=addr (repeatable; needs -j)")
	flag.Parse()
	if len(registries) == 0 {
		registries = addrs{"127.0.0.1:9800"}
	}
	fmt.Println("libregistry", registry.Version())
	ringDemo()
	os.Exit(run(registries, *group, *keys, *gossip, services))
}

// ringDemo shows the standalone ring: the same hashing as every registry.
func ringDemo() {
	ring, err := registry.NewRing([]string{"cache-a", "cache-b", "cache-c"}, []uint32{1, 1, 2})
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewRing:", err)
		return
	}
	defer ring.Close()
	fmt.Printf("standalone ring of %d members:\n", ring.Len())
	for i := 0; i < 5; i++ {
		key := fmt.Sprintf("user-%d", i)
		pref, err := ring.LocateN(key, 2)
		if err != nil {
			fmt.Fprintln(os.Stderr, "LocateN:", err)
			return
		}
		fmt.Printf("  %s -> %s (fallback %s)\n", key, pref[0], pref[1])
	}
}

func run(registries []string, group string, keys int, gossip string, services []string) int {
	// Every call that waits on the network takes a context: this one bounds
	// the whole run (cancel it, or let it expire, and the call in flight
	// returns at once with an error wrapping ctx.Err()).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if len(services) > 0 && gossip == "" {
		fmt.Fprintln(os.Stderr, "-s needs -j gossip-address")
		return 1
	}
	for _, spec := range services {
		id, addr, ok := strings.Cut(spec, "=")
		if !ok || id == "" {
			fmt.Fprintln(os.Stderr, "-s wants id=addr, got", spec)
			return 1
		}
		reg, err := registry.Register(ctx, registry.RegistrationConfig{
			ID: id, Group: group, Addr: addr, Registries: []string{gossip},
			Tags: map[string]string{"started-by": "registry-example-go"},
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("registered %s at %s in group %s\n", id, addr, group)
		defer func() {
			if err := reg.Stop(); err == nil {
				fmt.Println("stopped", id)
			}
			reg.Close()
		}()
	}

	client, err := registry.NewClient(ctx, registries, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer client.Close()

	// Wait (at most 10 s) until the registry lists every registered service.
	members, err := client.Members(ctx, group)
	for tries := 0; err == nil && len(members.Services) < len(services) && tries < 100; tries++ {
		time.Sleep(100 * time.Millisecond)
		members, err = client.Members(ctx, group)
	}
	if errors.Is(err, registry.ErrUnavailable) || errors.Is(err, registry.ErrTimeout) {
		fmt.Fprintln(os.Stderr, err) // names the addresses tried and what to do
		return 2
	} else if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("group %s, version %d, %d member(s):\n", group, members.Version, len(members.Services))
	for _, s := range members.Services {
		fmt.Printf("  %s  addr=%s  weight=%d  tags=%v\n", s.ID, s.Addr, s.Weight, s.Tags)
	}
	if len(members.Services) == 0 {
		return 0
	}

	view, err := client.Group(ctx, group)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer view.Close()
	perMember := map[string]int{}
	mismatches := 0
	for i := 0; i < keys; i++ {
		key := fmt.Sprintf("user-%d", i)
		local, err := view.Match(key)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
		perMember[local.ID]++
		if i < 20 { // the registry's own answer must be the same
			remote, err := client.Match(ctx, group, key)
			if err == nil && remote.ID != local.ID {
				mismatches++
			}
		}
	}
	fmt.Printf("%d user ids assigned locally:\n", keys)
	for _, s := range members.Services {
		fmt.Printf("  %-20s %d\n", s.ID, perMember[s.ID])
	}
	fmt.Printf("local view and registry Match agree on the first 20 keys: %v\n", mismatches == 0)
	if mismatches > 0 {
		return 3
	}
	return 0
}
