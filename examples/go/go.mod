module example.invalid/registry-example

go 1.19

require example.invalid/registry v0.0.0

replace example.invalid/registry => ../../ffi/go
