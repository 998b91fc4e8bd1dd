module github.com/registry-dev/registry/ffi/go

go 1.19
