module github.com/psyne-dev/psyne/bindings/go

go 1.24
