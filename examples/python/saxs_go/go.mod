module github.com/psyne-dev/psyne/examples/python/saxs_go

go 1.24

require github.com/psyne-dev/psyne/bindings/go v0.0.0

replace github.com/psyne-dev/psyne/bindings/go => ../../../bindings/go
