// Package registry is the Go client of the registry service registry: find
// the instance of a service group that owns a key, over RPC or from a
// local ring that follows the group, with the very same hashing as every
// registry server and every other front door (Rust, C, Python).
//
// It wraps libregistry (the C ABI) through cgo and finds it with
// pkg-config (registry.pc). Install the library first: in a checkout of
// the repository, ./scripts/dist && ./scripts/install PREFIX, then set
// PKG_CONFIG_PATH=PREFIX/lib/pkgconfig unless pkg-config searches PREFIX
// already (see README.md). Import it as
//
//	import registry "github.com/registry-dev/registry/ffi/go"
//
// Every handle (Client, GroupView, Ring) is safe for
// concurrent use; Close releases it (a finalizer does so for a handle that
// was never closed, as a safety net only).
//
// # Contexts
//
// Every call that waits on the network (NewClient, Client.Match, MatchN,
// Members, Groups, Group, Register) takes a context.Context first. When
// the context is cancelled or its deadline passes, the call returns at
// once and its work inside the library stops (the RPC's stream is reset).
// The error then wraps the context's, so errors.Is(err, context.Canceled)
// and errors.Is(err, context.DeadlineExceeded) work, and is of kind
// ErrCancelled or ErrTimeout. A context that is never done
// (context.Background) costs nothing. Local calls (GroupView.Match, the
// Ring, Registration.SetWeight and Stop, ...) do not wait on the network
// and take none.
package registry

/*
#include "gohelpers.h"
*/
import "C"

import (
	"context"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Version is the version of the linked libregistry.
func Version() string { return C.GoString(C.registry_version()) }

// Service is one instance of a service group.
type Service struct {
	// ID is the instance's unique id.
	ID string
	// Group is the group it belongs to.
	Group string
	// Addr is the address clients use to reach it.
	Addr string
	// Weight is its relative share of keys (1..1000).
	Weight uint32
	// Tags is its free-form metadata (nil when it has none).
	Tags map[string]string
	// Draining is true while it drains: listed, but owning no keys.
	Draining bool
}

// Members is the answer to a Members call.
type Members struct {
	// Services are the members sorted by id (empty when none).
	Services []Service
	// Version is the group's ring version.
	Version uint64
	// Checksum is the ring's checksum (see Ring.Checksum): equal on two
	// registries, or a registry and a view, means equal answers.
	Checksum uint64
}

// GroupInfo summarises one group.
type GroupInfo struct {
	// Name is the group name.
	Name string
	// Members is the number of members.
	Members uint32
	// Version is the group's ring version.
	Version uint64
	// Checksum is the group ring's checksum on the registry that answered:
	// equal on registries that hold the same members and weights.
	Checksum uint64
}

// ClientOptions are a Client's settings; the zero value means defaults.
type ClientOptions struct {
	// ConnectTimeout to open a connection to one registry (default 1 s).
	ConnectTimeout time.Duration
	// RequestTimeout for one call to one registry (default 2 s).
	RequestTimeout time.Duration
	// Attempts per call across registries (default two passes, at least 3).
	Attempts int
	// MaxBackoff between passes over the registry list (default 1 s).
	MaxBackoff time.Duration
	// NoRegistryDiscovery: use only the given registries, not those listed
	// in the reserved registry group.
	NoRegistryDiscovery bool
	// TLSCAFile is a PEM file of the CA certificates that registry
	// certificates must chain to; set, the client speaks TLS to every
	// registry (started with --tls-cert). Empty: plain text.
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are the PEM client certificate and key,
	// for registries that require one (--tls-client-ca).
	TLSCertFile string
	// TLSKeyFile is the PEM private key of TLSCertFile.
	TLSKeyFile string
	// TLSDomain is the name registry certificates must carry (default: the
	// host of each registry address).
	TLSDomain string
	// TLSCA, TLSCert and TLSKey are the same PEM blocks given in memory
	// (e.g. from a secret store) instead of files; set at most one of
	// each pair (TLSCA or TLSCAFile, ...).
	TLSCA []byte
	// TLSCert is the PEM client certificate (instead of TLSCertFile).
	TLSCert []byte
	// TLSKey is the PEM private key of the client certificate (instead
	// of TLSKeyFile).
	TLSKey []byte
	// MaxStaleness: a view's Match, MatchN and MatchIndex fail with
	// ErrUnavailable once its snapshot has gone unconfirmed (no Watch
	// stream open) for longer than this (see GroupView.Staleness). Zero:
	// views answer from their last snapshot however old.
	MaxStaleness time.Duration
}

func millis(d time.Duration) C.uint32_t {
	ms := d.Milliseconds()
	if d > 0 && ms == 0 {
		ms = 1
	}
	if ms > 0xFFFFFFFF {
		ms = 0xFFFFFFFF
	}
	if ms < 0 {
		ms = 0
	}
	return C.uint32_t(ms)
}

// Client asks registries over RPC, failing over between them.
type Client struct {
	mu sync.RWMutex
	p  *C.registry_client
}

// NewClient creates a client for registries ("host:port"); opts may be
// nil. Connections open lazily, so it fails only on an empty list, a
// malformed address (one without a port, too), or unreadable or invalid
// TLS files or PEM (ErrInvalidArgument). A call that no registry answers
// fails with ErrUnavailable naming every address tried and its cause.
// With registry discovery on it asks a registry for the others, which ctx
// bounds (see "Contexts" in the package documentation).
func NewClient(ctx context.Context, registries []string, opts *ClientOptions) (*Client, error) {
	var o C.registry_client_options
	if opts != nil {
		o.connect_timeout_ms = millis(opts.ConnectTimeout)
		o.request_timeout_ms = millis(opts.RequestTimeout)
		if opts.Attempts > 0 {
			o.attempts = C.uint32_t(opts.Attempts)
		}
		o.max_backoff_ms = millis(opts.MaxBackoff)
		o.no_registry_discovery = C.bool(opts.NoRegistryDiscovery)
		o.max_staleness_ms = millis(opts.MaxStaleness)
		var tls cStrings
		defer func() { tls.free() }()
		for _, f := range []struct {
			value string
			field **C.char
		}{
			{opts.TLSCAFile, &o.tls_ca_file},
			{opts.TLSCertFile, &o.tls_cert_file},
			{opts.TLSKeyFile, &o.tls_key_file},
			{opts.TLSDomain, &o.tls_domain},
			{string(opts.TLSCA), &o.tls_ca_pem},
			{string(opts.TLSCert), &o.tls_cert_pem},
			{string(opts.TLSKey), &o.tls_key_pem},
		} {
			if f.value != "" {
				*f.field = C.CString(f.value)
				tls = append(tls, *f.field)
			}
		}
	}
	addrs := newCStrings(registries)
	defer addrs.free()
	var p *C.registry_client
	err := withContext(ctx, "new client", func(tok *C.registry_cancel) error {
		var msg *C.char
		return failed("new client", check(C.gr_client_new(addrs.ptr(), C.size_t(len(addrs)), &o, &p, tok, &msg), msg))
	})
	if err != nil {
		return nil, err
	}
	c := &Client{p: p}
	runtime.SetFinalizer(c, (*Client).Close)
	return c, nil
}

// Close releases the client; GroupViews created from it keep working.
// Closing twice is harmless.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p != nil {
		C.registry_client_free(c.p)
		c.p = nil
		runtime.SetFinalizer(c, nil)
	}
	return nil
}

// Match asks a registry which member of group owns key; ctx bounds the
// call.
func (c *Client) Match(ctx context.Context, group, key string) (Service, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.p == nil {
		return Service{}, closed("client")
	}
	g, k := C.CString(group), C.CString(key)
	defer C.free(unsafe.Pointer(g))
	defer C.free(unsafe.Pointer(k))
	var svc *C.registry_service
	err := withContext(ctx, "match", func(tok *C.registry_cancel) error {
		var msg *C.char
		return failed("match", check(C.gr_client_match(c.p, g, k, &svc, tok, &msg), msg))
	})
	if err != nil {
		return Service{}, err
	}
	return unpackOne(svc), nil
}

// MatchN asks a registry for up to n distinct members of group for key,
// in preference order (the first is Match's answer); ctx bounds the call.
func (c *Client) MatchN(ctx context.Context, group, key string, n int) ([]Service, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.p == nil {
		return nil, closed("client")
	}
	if n < 0 {
		n = 0
	}
	g, k := C.CString(group), C.CString(key)
	defer C.free(unsafe.Pointer(g))
	defer C.free(unsafe.Pointer(k))
	var l *C.registry_service_list
	err := withContext(ctx, "match n", func(tok *C.registry_cancel) error {
		var msg *C.char
		return failed("match n", check(C.gr_client_match_n(c.p, g, k, C.size_t(n), &l, tok, &msg), msg))
	})
	if err != nil {
		return nil, err
	}
	return unpackList(l), nil
}

// Members asks a registry for every member of group and its version; ctx
// bounds the call.
func (c *Client) Members(ctx context.Context, group string) (Members, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.p == nil {
		return Members{}, closed("client")
	}
	g := C.CString(group)
	defer C.free(unsafe.Pointer(g))
	var l *C.registry_service_list
	var version, sum C.uint64_t
	err := withContext(ctx, "members", func(tok *C.registry_cancel) error {
		var msg *C.char
		return failed("members", check(C.gr_client_members(c.p, g, &l, &version, &sum, tok, &msg), msg))
	})
	if err != nil {
		return Members{}, err
	}
	return Members{Services: unpackList(l), Version: uint64(version), Checksum: uint64(sum)}, nil
}

// Groups asks a registry for every group that has members; ctx bounds the
// call.
func (c *Client) Groups(ctx context.Context) ([]GroupInfo, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.p == nil {
		return nil, closed("client")
	}
	var l *C.registry_group_list
	err := withContext(ctx, "groups", func(tok *C.registry_cancel) error {
		var msg *C.char
		return failed("groups", check(C.gr_client_groups(c.p, &l, tok, &msg), msg))
	})
	if err != nil {
		return nil, err
	}
	defer C.registry_group_list_free(l)
	var msg *C.char
	out := make([]GroupInfo, int(C.registry_group_list_len(l)))
	for i := range out {
		var name *C.char
		var members C.uint32_t
		var version C.uint64_t
		var sum C.uint64_t
		if err := check(C.gr_group_list_get(l, C.size_t(i), &name, &members, &version, &msg), msg); err != nil {
			return nil, failed("groups", err)
		}
		if err := check(C.gr_group_list_checksum(l, C.size_t(i), &sum, &msg), msg); err != nil {
			return nil, failed("groups", err)
		}
		out[i] = GroupInfo{Name: C.GoString(name), Members: uint32(members), Version: uint64(version), Checksum: uint64(sum)}
	}
	return out, nil
}

// Group returns a local view of group: it follows the group through a
// registry's Watch stream and answers Match with no round trip. It waits
// for the first snapshot (ErrUnavailable when no registry sends one in
// time, or ctx's error when it ends first). The view then follows the
// group until Close, whatever becomes of ctx.
func (c *Client) Group(ctx context.Context, name string) (*GroupView, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.p == nil {
		return nil, closed("client")
	}
	g := C.CString(name)
	defer C.free(unsafe.Pointer(g))
	var p *C.registry_view
	err := withContext(ctx, "group", func(tok *C.registry_cancel) error {
		var msg *C.char
		return failed("group", check(C.gr_view_new(c.p, g, &p, tok, &msg), msg))
	})
	if err != nil {
		return nil, err
	}
	v := &GroupView{p: p}
	runtime.SetFinalizer(v, (*GroupView).Close)
	return v, nil
}

// unpackOne copies a C service into Go and frees it.
func unpackOne(svc *C.registry_service) Service {
	defer C.registry_service_free(svc)
	buf := make([]byte, 256)
	need := int(C.gr_pack(svc, (*C.uchar)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), 0))
	if need > len(buf) {
		buf = make([]byte, need)
		C.gr_pack(svc, (*C.uchar)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), 0)
	}
	d := decoder{buf: buf[:need], all: bytesToString(buf[:need])}
	return d.service()
}
