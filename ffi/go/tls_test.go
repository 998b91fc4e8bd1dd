package registry

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tlsServer returns the gRPC address of a registry-server that serves TLS
// and requires client certificates, and the directory of its test
// certificates (server/examples/tls-test-certs), or skips the test.
func tlsServer(t *testing.T) (string, string) {
	addr, dir := os.Getenv("REGISTRY_TLS_ADDR"), os.Getenv("REGISTRY_TLS_DIR")
	if addr == "" || dir == "" {
		t.Skip("SKIP: set REGISTRY_TLS_ADDR and REGISTRY_TLS_DIR to test against a TLS registry-server")
	}
	return addr, dir
}

func TestTLS(t *testing.T) {
	addr, dir := tlsServer(t)
	file := func(name string) string { return filepath.Join(dir, name) }
	match := func(opts ClientOptions) (Service, error) {
		opts.Attempts = 1
		opts.NoRegistryDiscovery = true
		c, err := NewClient(context.Background(), []string{addr}, &opts)
		if err != nil {
			return Service{}, err
		}
		defer c.Close()
		return c.Match(context.Background(), "registry-group", "k")
	}

	good := ClientOptions{TLSCAFile: file("ca.pem"), TLSCertFile: file("client.pem"), TLSKeyFile: file("client-key.pem"), TLSDomain: "localhost"}
	svc, err := match(good)
	if err != nil {
		t.Fatalf("match over TLS with a client certificate: %v", err)
	}
	if svc.Group != "registry-group" {
		t.Errorf("match answered %+v", svc)
	}

	refused := map[string]ClientOptions{
		"plain text":          {},
		"no certificate":      {TLSCAFile: file("ca.pem")},
		"foreign certificate": {TLSCAFile: file("ca.pem"), TLSCertFile: file("other-client.pem"), TLSKeyFile: file("other-client-key.pem")},
		"untrusted server":    {TLSCAFile: file("other-ca.pem"), TLSCertFile: file("client.pem"), TLSKeyFile: file("client-key.pem")},
	}
	for name, opts := range refused {
		if _, err := match(opts); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: want ErrUnavailable, got %v", name, err)
		}
	}

	_, err = match(ClientOptions{TLSCAFile: file("no-such-ca.pem")})
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "no-such-ca.pem") {
		t.Errorf("a missing CA file: want ErrInvalidArgument naming it, got %v", err)
	}
	_, err = match(ClientOptions{TLSCAFile: file("ca.pem"), TLSKeyFile: file("client-key.pem")})
	if !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("a key without a certificate: want ErrInvalidArgument, got %v", err)
	}

	// The same certificates given in memory.
	pem := func(name string) []byte {
		b, err := os.ReadFile(file(name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	inMemory := ClientOptions{TLSCA: pem("ca.pem"), TLSCert: pem("client.pem"), TLSKey: pem("client-key.pem"), TLSDomain: "localhost"}
	if svc, err := match(inMemory); err != nil || svc.Group != "registry-group" {
		t.Errorf("match over TLS with PEM in memory: %+v, %v", svc, err)
	}
	inMemory.TLSCA = pem("other-ca.pem")
	if _, err := match(inMemory); !errors.Is(err, ErrUnavailable) {
		t.Errorf("an untrusted server (CA in memory): want ErrUnavailable, got %v", err)
	}
	both := ClientOptions{TLSCA: pem("ca.pem"), TLSCAFile: file("ca.pem")}
	if _, err := match(both); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "both set") {
		t.Errorf("a CA file and PEM together: want ErrInvalidArgument, got %v", err)
	}
}
