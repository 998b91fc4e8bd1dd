package registry

/*
#include "gohelpers.h"
*/
import "C"

import (
	"context"
	"runtime"
	"sort"
	"sync"
	"unsafe"
)

// RegistrationConfig describes a service instance to register. ID, Group
// and Addr are required; the zero value of every other field is a default.
type RegistrationConfig struct {
	// ID is the instance's unique id.
	ID string
	// Group is the service group it belongs to.
	Group string
	// Addr is the address clients use to reach it, e.g. "10.0.0.5:8080".
	Addr string
	// Registries are the gossip "host:port" addresses of the registries to
	// join through; it keeps retrying while none answers.
	Registries []string
	// Weight is its share of keys, 1..1000 (0 means 1).
	Weight uint32
	// Tags are free-form metadata (small: the total is limited).
	Tags map[string]string
	// Bind is the local UDP gossip address ("" means 127.0.0.1:0, a free
	// loopback port; use "0.0.0.0:PORT" across hosts).
	Bind string
	// Advertise is the gossip address others reach it at, if not Bind.
	Advertise string
	// EncryptKey: gossip keys as 64 hex digits, comma-separated (the first
	// encrypts); must match the registries'. "" for no encryption.
	EncryptKey string
}

// Registration is a registered service instance, live until Stop or Close.
// Safe for concurrent use.
type Registration struct {
	mu sync.RWMutex
	p  *C.registry_registration
}

// cArena holds C memory for one call and frees it all at once.
type cArena []unsafe.Pointer

func (a *cArena) str(s string) *C.char {
	p := C.CString(s)
	*a = append(*a, unsafe.Pointer(p))
	return p
}

func (a *cArena) optStr(s string) *C.char {
	if s == "" {
		return nil
	}
	return a.str(s)
}

// array copies ss into a C array of C strings (C memory: cgo forbids Go
// memory holding pointers from being passed to C).
func (a *cArena) array(ss []string) **C.char {
	if len(ss) == 0 {
		return nil
	}
	arr := (*[1 << 28]*C.char)(C.malloc(C.size_t(len(ss)) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))[:len(ss):len(ss)]
	*a = append(*a, unsafe.Pointer(&arr[0]))
	for i, s := range ss {
		arr[i] = a.str(s)
	}
	return &arr[0]
}

// tags copies a tag map into parallel C arrays, sorted by key.
func (a *cArena) tags(tags map[string]string) (keys, values **C.char, n C.size_t) {
	ks := make([]string, 0, len(tags))
	for k := range tags {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	vs := make([]string, len(ks))
	for i, k := range ks {
		vs[i] = tags[k]
	}
	return a.array(ks), a.array(vs), C.size_t(len(ks))
}

func (a *cArena) free() {
	for _, p := range *a {
		C.free(p)
	}
}

// Register validates the configuration (ErrInvalidArgument or
// ErrLimitExceeded naming the field), binds the gossip socket, joins the
// registries and waits (at most 2 s) to learn whether the id is free:
// ErrAlreadyExists, naming the holder's address, when a live member holds
// it. When no registry answers in that time it returns and joining goes on
// in the background until a registry answers. ctx bounds the wait: when it
// ends first, Register returns its error and leaves nothing running
// (registries that heard the instance drop it as they drop a crashed one).
func Register(ctx context.Context, cfg RegistrationConfig) (*Registration, error) {
	var a cArena
	defer a.free()
	var c C.registry_registration_config
	c.id, c.group, c.addr = a.str(cfg.ID), a.str(cfg.Group), a.str(cfg.Addr)
	c.registries, c.registry_count = a.array(cfg.Registries), C.size_t(len(cfg.Registries))
	c.weight = C.uint32_t(cfg.Weight)
	c.tag_keys, c.tag_values, c.tag_count = a.tags(cfg.Tags)
	c.bind, c.advertise, c.encrypt_key = a.optStr(cfg.Bind), a.optStr(cfg.Advertise), a.optStr(cfg.EncryptKey)
	var p *C.registry_registration
	err := withContext(ctx, "register", func(tok *C.registry_cancel) error {
		var msg *C.char
		return failed("register", check(C.gr_registration_start(&c, &p, tok, &msg), msg))
	})
	if err != nil {
		return nil, err
	}
	r := &Registration{p: p}
	runtime.SetFinalizer(r, (*Registration).Close)
	return r, nil
}

// call runs f on the live handle; ErrInvalidArgument once closed. op
// names the operation in its error.
func (r *Registration) call(op string, f func(p *C.registry_registration, msg **C.char) C.registry_status) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.p == nil {
		return closed("registration")
	}
	var msg *C.char
	if err := check(f(r.p, &msg), msg); err != nil {
		return failed(op, err)
	}
	return nil
}

// SetWeight changes the weight (1..1000); registries see an update.
// ErrUnavailable once stopped.
func (r *Registration) SetWeight(weight uint32) error {
	return r.call("set weight", func(p *C.registry_registration, msg **C.char) C.registry_status {
		return C.gr_registration_set_weight(p, C.uint32_t(weight), msg)
	})
}

// SetDraining starts (true) or stops (false) draining. While draining the
// service stays listed but owns no keys: Match sends its keys to the
// members that will own them once it leaves, so it can hand their state
// over and then Stop moves no key. Draining false gives back exactly the
// keys it had. ErrUnavailable once stopped.
func (r *Registration) SetDraining(draining bool) error {
	return r.call("set draining", func(p *C.registry_registration, msg **C.char) C.registry_status {
		return C.gr_registration_set_draining(p, C.bool(draining), msg)
	})
}

// SetAddr changes the address clients use to reach the service.
func (r *Registration) SetAddr(addr string) error {
	return r.call("set addr", func(p *C.registry_registration, msg **C.char) C.registry_status {
		s := C.CString(addr)
		defer C.free(unsafe.Pointer(s))
		return C.gr_registration_set_addr(p, s, msg)
	})
}

// SetTags replaces every tag (nil or empty removes them all).
func (r *Registration) SetTags(tags map[string]string) error {
	return r.call("set tags", func(p *C.registry_registration, msg **C.char) C.registry_status {
		var a cArena
		defer a.free()
		k, v, n := a.tags(tags)
		return C.gr_registration_set_tags(p, k, v, n, msg)
	})
}

// Service returns the metadata currently registered.
func (r *Registration) Service() (Service, error) {
	var svc *C.registry_service
	err := r.call("service", func(p *C.registry_registration, msg **C.char) C.registry_status {
		return C.gr_registration_service(p, &svc, msg)
	})
	if err != nil {
		return Service{}, err
	}
	return unpackOne(svc), nil
}

// IsJoined reports whether a registry (or another member) knows this
// instance yet; false once stopped.
func (r *Registration) IsJoined() bool {
	var joined C.bool
	err := r.call("is joined", func(p *C.registry_registration, msg **C.char) C.registry_status {
		return C.gr_registration_is_joined(p, &joined, msg)
	})
	return err == nil && bool(joined)
}

// Stop leaves the cluster gracefully: registries drop the service at once.
// Stopping again gives ErrUnavailable. Close still releases the handle.
func (r *Registration) Stop() error {
	return r.call("stop", func(p *C.registry_registration, msg **C.char) C.registry_status {
		return C.gr_registration_stop(p, msg)
	})
}

// Close releases the registration, leaving gracefully first if it was not
// stopped. Closing twice is harmless.
func (r *Registration) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p != nil {
		C.registry_registration_free(r.p)
		r.p = nil
		runtime.SetFinalizer(r, nil)
	}
	return nil
}
