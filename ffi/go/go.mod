module example.invalid/registry

go 1.19
