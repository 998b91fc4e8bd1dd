module github.com/registry-dev/registry/examples/go

go 1.19

require github.com/registry-dev/registry/ffi/go v0.0.0

// In this repository the example builds against the package next to it;
// a program of yours needs only the require line (go get).
replace github.com/registry-dev/registry/ffi/go => ../../ffi/go
